import { randomBytes } from 'node:crypto';

/** A 64-hex-digit ID as Docker uses for containers, exec instances and networks. */
export function newHexId(): string {
  return randomBytes(32).toString('hex');
}

/** A 25-character base-36 ID as SwarmKit uses for nodes, services and tasks. */
export function newSwarmId(): string {
  let n = BigInt('0x' + randomBytes(16).toString('hex'));
  let s = '';
  for (let i = 0; i < 25; i++) {
    s = (n % 36n).toString(36) + s;
    n /= 36n;
  }
  return s;
}
