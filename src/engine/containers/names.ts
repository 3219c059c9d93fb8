import { randomInt } from 'node:crypto';
import { badRequest } from '../../util/errors.js';

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

/** A random `adjective_scientist` name, as Docker gives unnamed containers. */
export function randomName(): string {
  return `${LEFT[randomInt(LEFT.length)]}_${RIGHT[randomInt(RIGHT.length)]}`;
}

/** Docker's rule for container names; returns the name with its leading slash. */
export function validName(name: string): string {
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(bare))
    throw badRequest(`Invalid container name (${bare}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return '/' + bare;
}
