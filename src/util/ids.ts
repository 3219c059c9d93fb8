import { randomBytes, randomFillSync } from 'node:crypto';

/** A 64-hex-digit ID as Docker uses for containers, exec instances and networks. */
export function newHexId(): string {
  return randomBytes(32).toString('hex');
}

/** Random bytes taken 4 KiB at a time: a 100,000-replica service asks for as many IDs at once. */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/** A 25-character base-36 ID as SwarmKit uses for nodes, services and tasks (128 random bits). */
export function newSwarmId(): string {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + 16);
  poolAt += 16;
  return BigInt('0x' + hex)
    .toString(36)
    .padStart(25, '0');
}
