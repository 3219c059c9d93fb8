import type { Etcd3 } from 'etcd3';
import type { Node } from '../../cluster/types.js';
import type { LeaderLoopContext } from '../leader/loops.js';
import { VersionConflict } from '../store/store.js';

/**
 * Node liveness in etcd: the dispatcher holding a node's session keeps
 * `/shoal/liveness/<nodeID>` alive with a lease renewed by heartbeats (TTL = period x 3).
 * The leader marks a node DOWN when its key goes away and READY when it comes back.
 */
export const LIVENESS_PREFIX = '/shoal/liveness/';

export async function setNodeState(
  ctx: Pick<LeaderLoopContext, 'store'>,
  nodeId: string,
  state: Node['Status']['State'],
  message: string,
  fenced: boolean,
): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const n = ctx.store.get('nodes', nodeId);
    if (!n || n.Status.State === state) return;
    n.Status = { ...n.Status, State: state, Message: message };
    try {
      await ctx.store.commit([{ kind: 'nodes', op: 'update', object: n }], { fenced });
      return;
    } catch (e) {
      if (!(e instanceof VersionConflict)) throw e;
    }
  }
}

/** The leader loop: watches liveness keys and turns their coming and going into node states. */
export function livenessLoop(client: Etcd3, graceMs: () => number) {
  return async (ctx: LeaderLoopContext): Promise<void> => {
    const watcher = await client.watch().prefix(LIVENESS_PREFIX).create();
    const mark = (id: string, state: 'ready' | 'down', msg: string) =>
      setNodeState(ctx, id, state, msg, true).catch((err) =>
        ctx.log.warn({ err, node: id }, 'node state update failed'),
      );
    // mark() logs its own failures; the catch only makes that visible to the lint.
    watcher.on(
      'delete',
      (kv) =>
        void mark(kv.key.toString().slice(LIVENESS_PREFIX.length), 'down', 'heartbeat failure').catch(() => undefined),
    );
    watcher.on(
      'put',
      (kv) => void mark(kv.key.toString().slice(LIVENESS_PREFIX.length), 'ready', '').catch(() => undefined),
    );
    // A new leader does not know how long silent nodes have been silent: give them one grace period.
    const timer = setTimeout(async () => {
      try {
        const alive = new Set(
          (await client.getAll().prefix(LIVENESS_PREFIX).keys()).map((k) => k.slice(LIVENESS_PREFIX.length)),
        );
        for (const n of ctx.store.list('nodes')) {
          if (!alive.has(n.ID) && n.Status.State !== 'down') await mark(n.ID, 'down', 'heartbeat failure');
        }
      } catch (err) {
        ctx.log.warn({ err }, 'liveness sweep failed');
      }
    }, graceMs());
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    clearTimeout(timer);
    await watcher.cancel().catch(() => undefined);
  };
}
