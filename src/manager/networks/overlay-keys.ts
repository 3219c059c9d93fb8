import type { Cluster, Node } from '../../cluster/types.js';
import type { LeaderLoopContext } from '../leader/loops.js';
import type { Store, StoreEvent } from '../store/store.js';
import { retryOnConflict } from '../store/retry.js';
import { SerialQueue } from '../../util/serial-queue.js';

/**
 * Key rotation of encrypted overlays. Each node makes its own WireGuard key pair and publishes
 * the public half (manager/dispatcher/tunnel-report.ts); the leader only says when every node
 * must make a new one, by raising Cluster.OverlayKeys.Epoch: on a schedule (Docker rotates its
 * IPsec keys every 12 h) and whenever a node is removed, so nothing a removed node learned
 * stays useful. Peers drop a removed node's key at once (it leaves the network view).
 */

export const DEFAULT_ROTATION_MS = 12 * 3600_000;

/** SHOAL_OVERLAY_KEY_ROTATION_MS overrides the period (tests rotate in seconds). */
export function rotationPeriodMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.SHOAL_OVERLAY_KEY_ROTATION_MS);
  return Number.isFinite(v) && v >= 1000 ? v : DEFAULT_ROTATION_MS;
}

/** When the next scheduled rotation is due, from the cluster's last one. */
export function nextRotationAt(c: Cluster, periodMs: number): number {
  const last = Date.parse(c.OverlayKeys?.RotatedAt ?? '');
  return Number.isFinite(last) ? last + periodMs : 0;
}

async function bump(store: Store, why: string, ctx: LeaderLoopContext): Promise<void> {
  await retryOnConflict(
    async () => {
      if (ctx.signal.aborted) return;
      const c = store.list('cluster')[0];
      if (!c) return;
      const epoch = (c.OverlayKeys?.Epoch ?? 0) + 1;
      c.OverlayKeys = { Epoch: epoch, RotatedAt: new Date().toISOString() };
      await store.commit([{ kind: 'cluster', op: 'update', object: c }], { fenced: true });
      ctx.log.info({ epoch, why }, 'overlay tunnel keys rotate');
    },
    { exhausted: () => undefined }, // the next rotation tries again
  );
}

export function overlayKeyRotation(ctx: LeaderLoopContext, periodMs = rotationPeriodMs()): void {
  const { store, signal } = ctx;
  let timer: NodeJS.Timeout | undefined;
  const rotations = new SerialQueue();
  const queue = (why: string) => {
    void rotations
      .run(() =>
        bump(store, why, ctx)
          .catch((err) => {
            if (!signal.aborted) ctx.log.warn({ err }, 'overlay key rotation failed');
          })
          .then(schedule),
      )
      .catch((err: unknown) => ctx.log.warn({ err }, 'overlay key rotation not scheduled'));
  };
  const schedule = () => {
    clearTimeout(timer);
    if (signal.aborted) return;
    const c = store.view('cluster')[0];
    if (!c) {
      timer = setTimeout(schedule, 1000);
      return;
    }
    const wait = nextRotationAt(c, periodMs) - Date.now();
    // Capped: a period of days outlives any timer's precision, and a new leader must re-check.
    timer = setTimeout(
      () => (nextRotationAt(store.view('cluster')[0] ?? c, periodMs) <= Date.now() ? queue('schedule') : schedule()),
      Math.max(0, Math.min(wait, 3600_000)),
    );
  };
  const unwatch = store.watch((evs: StoreEvent[]) => {
    const removed = evs.filter((e) => e.kind === 'nodes' && e.action === 'delete').map((e) => (e.object as Node).ID);
    if (removed.length) queue(`node ${removed.join(',')} removed`);
  });
  signal.addEventListener(
    'abort',
    () => {
      unwatch();
      clearTimeout(timer);
    },
    { once: true },
  );
  schedule();
}
