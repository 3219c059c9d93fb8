import type { Network } from '../../cluster/types.js';
import {
  newSwarmNetwork,
  removeSwarmNetwork,
  requireSwarmNetwork,
  type NetworkCreateRequest,
} from '../networks/swarm-networks.js';
import type { Store } from '../store/store.js';

/**
 * Swarm-scoped networks (swarmkit controlapi/network.go): created with their checks (name,
 * driver, one ingress, subnets that do not overlap), removed only when nothing uses them. The
 * allocator gives them their subnet and VNI.
 */

export const DEFAULT_ADDR_POOL = ['10.0.0.0/8'];

export async function createNetwork(store: Store, req: NetworkCreateRequest): Promise<Network> {
  const cluster = store.list('cluster')[0];
  const n = newSwarmNetwork(req, store.list('networks'), cluster?.DefaultAddrPool ?? DEFAULT_ADDR_POOL);
  await store.commit([{ kind: 'networks', op: 'create', object: n }]);
  return n;
}

/** By ID, name or unique ID prefix; 404 when none. */
export function getNetwork(store: Store, ref: string): Network {
  return requireSwarmNetwork(store.list('networks'), ref);
}

export function listNetworks(store: Store): Network[] {
  return store.list('networks');
}

export async function removeNetwork(store: Store, ref: string): Promise<void> {
  await removeSwarmNetwork(store, getNetwork(store, ref));
}
