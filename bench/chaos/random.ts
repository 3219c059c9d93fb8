import { Prng } from '../../test/helpers/prng.js';

/** The chaos suite's draws: the same seed draws the same faults and targets. */
export function mulberry32(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}

export function pick<T>(rand: () => number, xs: T[]): T {
  if (!xs.length) throw new Error('nothing to pick from');
  return xs[Math.floor(rand() * xs.length)];
}
