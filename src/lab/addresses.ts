import { hostAt, indexOf, parseSubnet, subnetSize } from '../net/ipv4.js';

/** Host index of the hub bridge: the first address of the lab subnet. */
export const HUB_INDEX = 1;

/** The hub bridge's address, where the lab registry also listens. */
export function hubAddress(subnet: string): string {
  return hostAt(parseSubnet(subnet), HUB_INDEX);
}

/** `a.b.c.d/len` of an address inside the lab subnet, as `ip addr add` wants it. */
export function withPrefixLen(subnet: string, address: string): string {
  return `${address}/${parseSubnet(subnet).prefixLen}`;
}

export class LabFullError extends Error {}

/**
 * The lowest host index no machine holds: machines get the addresses after the hub's, and a
 * removed machine's address is handed out again (names, not addresses, identify machines).
 */
export function allocateMachineIndex(subnet: string, used: Iterable<number>): number {
  const s = parseSubnet(subnet);
  const taken = new Set(used);
  const broadcast = subnetSize(s) - 1;
  for (let i = HUB_INDEX + 1; i < broadcast; i++) if (!taken.has(i)) return i;
  throw new LabFullError(`the lab subnet ${subnet} has no free address left`);
}

export function machineAddress(subnet: string, index: number): string {
  return hostAt(parseSubnet(subnet), index);
}

export function machineIndex(subnet: string, address: string): number {
  return indexOf(parseSubnet(subnet), address);
}
