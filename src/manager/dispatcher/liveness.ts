import type { Etcd3 } from 'etcd3';
import type { Node } from '../../cluster/types.js';
import type { LeaderLoopContext } from '../leader/loops.js';
import { retryOnConflict } from '../store/retry.js';
import { KeyedLock } from '../../util/serial-queue.js';

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
  await retryOnConflict(
    async () => {
      const n = ctx.store.get('nodes', nodeId);
      if (!n || n.Status.State === state) return;
      n.Status = { ...n.Status, State: state, Message: message };
      await ctx.store.commit([{ kind: 'nodes', op: 'update', object: n }], { fenced });
    },
    { exhausted: () => undefined },
  );
}

/** What the liveness loop reads of etcd (an Etcd3 client; a unit test gives a stand-in). */
export type LivenessKeys = Pick<Etcd3, 'watch' | 'getAll' | 'get'>;

/**
 * The leader loop: watches liveness keys and turns their coming and going into node states.
 * A node's marks run one at a time in the order their causes were seen, and the new leader's
 * sweep marks a node Down only if its key is still missing when its turn comes: a session that
 * registered between the sweep's read and its mark (a restarted leader's own node, say) would
 * otherwise be marked Down after its key's put, and stay Down with its key alive.
 */
export function livenessLoop(client: LivenessKeys, graceMs: () => number) {
  return async (ctx: LeaderLoopContext): Promise<void> => {
    const perNode = new KeyedLock();
    const watcher = await client.watch().prefix(LIVENESS_PREFIX).create();
    const mark = (id: string, state: 'ready' | 'down', msg: string, unless?: () => Promise<boolean>) =>
      perNode
        .run(id, async () => {
          if (unless && (await unless())) return;
          await setNodeState(ctx, id, state, msg, true);
        })
        .catch((err) => ctx.log.warn({ err, node: id }, 'node state update failed'));
    const idOf = (key: Buffer) => key.toString().slice(LIVENESS_PREFIX.length);
    // mark() logs its own failures; the catch only makes that visible to the lint.
    watcher.on('delete', (kv) => mark(idOf(kv.key), 'down', 'heartbeat failure').catch(() => undefined));
    watcher.on('put', (kv) => mark(idOf(kv.key), 'ready', '').catch(() => undefined));
    // A new leader does not know how long silent nodes have been silent: give them one grace period.
    const timer = setTimeout(async () => {
      try {
        const alive = new Set((await client.getAll().prefix(LIVENESS_PREFIX).keys()).map((k) => idOf(Buffer.from(k))));
        const hasKey = async (id: string) => (await client.get(LIVENESS_PREFIX + id).string()) !== null;
        for (const n of ctx.store.list('nodes')) {
          if (!alive.has(n.ID) && n.Status.State !== 'down')
            await mark(n.ID, 'down', 'heartbeat failure', () => hasKey(n.ID));
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
