import type { Network } from './types.js';

/**
 * Drivers whose swarm-scoped networks (`network create --scope swarm`) are node-local: the
 * managers only record them (swarmkit cnmallocator isNodeLocal: no subnet, no VNI, no
 * addresses), and every node that runs a task on one makes its own local network of that
 * name and ID. Of dockerd's local drivers, shoal's engine has the bridge.
 */
export const NODE_LOCAL_DRIVERS: ReadonlySet<string> = new Set(['bridge']);

/** The driver a swarm network was created with (overlay unless given). */
export function networkDriver(n: Network): string {
  return n.DriverState?.Name || n.Spec.DriverConfiguration?.Name || 'overlay';
}

export function isNodeLocal(n: Network): boolean {
  return NODE_LOCAL_DRIVERS.has(networkDriver(n));
}
