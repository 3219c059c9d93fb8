import * as grpc from '@grpc/grpc-js';
import type { Node } from '../../cluster/types.js';
import type { PeerIdentity } from '../../cluster/rpc.js';
import type { Store } from '../store/store.js';
import { retryOnConflict } from '../store/retry.js';

export type Identify = (call: grpc.ServerUnaryCall<unknown, unknown>) => PeerIdentity | undefined;

export const unauthenticated = (): grpc.ServiceError =>
  Object.assign(new Error('no valid swarm certificate'), {
    code: grpc.status.UNAUTHENTICATED,
    details: 'no valid swarm certificate',
    metadata: new grpc.Metadata(),
  });

/** The node the caller's certificate names, when it is in the store: nobody reports for another. */
export function reportingNode(store: Store, identify: Identify, call: grpc.ServerUnaryCall<unknown, unknown>) {
  const id = identify(call);
  return id && store.get('nodes', id.nodeId) ? id.nodeId : undefined;
}

/**
 * Writes what a node reported about itself onto its node object. `apply` changes the object and
 * says whether anything changed (no write, no new Version, when nothing did); a write that
 * lost to another is made again on the newer object. Resolves whether it wrote.
 */
export async function updateOwnNode(store: Store, nodeId: string, apply: (n: Node) => boolean): Promise<boolean> {
  return retryOnConflict(
    async () => {
      const n = store.get('nodes', nodeId);
      if (!n) throw new Error('node removed');
      if (!apply(n)) return false;
      await store.commit([{ kind: 'nodes', op: 'update', object: n }]);
      return true;
    },
    {
      exhausted: () => {
        throw new Error('node kept changing');
      },
    },
  );
}

/** Answers a report's call: UNAVAILABLE when the write failed (the node reports again). */
export function answerReport(write: Promise<unknown>, cb: grpc.sendUnaryData<Record<string, never>>): void {
  write.then(
    () => cb(null, {}),
    (e: Error) => cb(Object.assign(e, { code: grpc.status.UNAVAILABLE })),
  );
}
