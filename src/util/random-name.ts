import { randomInt } from 'node:crypto';

/** Docker's name generator in small: an adjective and a scientist. */
const LEFT = [
  'admiring',
  'brave',
  'clever',
  'eager',
  'focused',
  'gallant',
  'happy',
  'jolly',
  'keen',
  'lucid',
  'modest',
  'nifty',
  'quirky',
  'serene',
  'trusting',
  'vibrant',
  'wizardly',
  'zealous',
];
const RIGHT = [
  'archimedes',
  'babbage',
  'curie',
  'darwin',
  'euclid',
  'feynman',
  'galileo',
  'hopper',
  'kepler',
  'lovelace',
  'meitner',
  'noether',
  'pascal',
  'ritchie',
  'shannon',
  'turing',
  'wozniak',
  'yonath',
];

/** A random `adjective_scientist` name, as Docker gives unnamed containers and services. */
export function randomName(): string {
  return `${LEFT[randomInt(LEFT.length)]}_${RIGHT[randomInt(RIGHT.length)]}`;
}
