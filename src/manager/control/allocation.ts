import type { Cluster, Network, Service } from '../../cluster/types.js';
import { allocate } from '../allocator/allocator.js';
import type { Store } from '../store/store.js';

/**
 * A service write is answered once the allocator has given the service what it needs (VIPs on
 * its networks, published ports), so the Version.Index a client reads after the answer is the
 * one it can update with: no allocator write is left to move it (issue 13, docker-py's
 * inspect-then-update after a network change). The allocator stays the only writer of
 * addresses and ports, so nothing here can hand out an address twice.
 */
export const ALLOCATION_WAIT_MS = 5_000;

/** True when an allocation pass would write nothing for this service (swarmkit IsServiceAllocated). */
export function serviceAllocated(cluster: Cluster | undefined, networks: Network[], service: Service): boolean {
  try {
    return allocate(cluster, networks, [service], []).services.length === 0;
  } catch {
    return true; // nothing the allocator can do now either (e.g. no free VXLAN ID): do not wait
  }
}

/**
 * Resolves once `serviceId` is allocated, gone, or `waitMs` passed (no leader, a full network):
 * the write itself has succeeded either way, so this never fails.
 */
export function awaitAllocation(store: Store, serviceId: string, waitMs = ALLOCATION_WAIT_MS): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let unwatch: (() => void) | undefined;
    let done = false;
    const finish = () => {
      done = true;
      if (timer) clearTimeout(timer);
      unwatch?.();
      resolve();
    };
    const check = () => {
      const s = store.viewOne('services', serviceId);
      if (!s || serviceAllocated(store.view('cluster')[0], store.view('networks'), s)) finish();
    };
    check();
    if (done || waitMs <= 0) return finish();
    unwatch = store.watch((events) => {
      if (
        events.some(
          (e) => e.kind === 'networks' || e.kind === 'cluster' || (e.kind === 'services' && e.object.ID === serviceId),
        )
      )
        check();
    });
    timer = setTimeout(finish, waitMs);
  });
}
