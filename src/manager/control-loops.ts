import type { Logger } from '../util/log.js';
import type { Store } from './store/store.js';
import type { StoreLoop } from './loop.js';
import type { LeaderLoop, LeaderLoopContext } from './leader/loops.js';
import { Allocator } from './allocator/allocator.js';
import { Scheduler } from './scheduler/scheduler.js';
import { ReplicatedOrchestrator } from './orchestrator/replicated.js';
import { GlobalOrchestrator } from './orchestrator/global.js';
import { TaskReaper } from './orchestrator/reaper.js';
import { JobsOrchestrator } from './orchestrator/jobs.js';
import { overlayKeyRotation } from './networks/overlay-keys.js';

/**
 * The control loops of services and tasks, run by the leader only: allocator (NEW →
 * PENDING), scheduler (PENDING → ASSIGNED), the replicated and global orchestrators (with
 * restarts and rolling updates), the task reaper and overlay key rotation. The manager builds
 * them with `controlLoops()` when it starts and runs them for each term of leadership.
 */
function storeLoop(make: (store: Store, log: Logger) => StoreLoop) {
  return (ctx: LeaderLoopContext): void => {
    if (ctx.signal.aborted) return;
    const loop = make(ctx.store, ctx.log);
    loop.run();
    ctx.signal.addEventListener(
      'abort',
      () => void loop.stop().catch((err: unknown) => ctx.log.warn({ err }, 'control loop did not stop cleanly')),
      { once: true },
    );
  };
}

/** The leader loops every manager runs while it leads, by name. */
export function controlLoops(): Map<string, LeaderLoop> {
  return new Map<string, LeaderLoop>([
    ['allocator', storeLoop((s, l) => new Allocator(s, l))],
    ['scheduler', storeLoop((s, l) => new Scheduler(s, l))],
    ['replicated-orchestrator', storeLoop((s, l) => new ReplicatedOrchestrator(s, l))],
    ['global-orchestrator', storeLoop((s, l) => new GlobalOrchestrator(s, l))],
    ['jobs-orchestrator', storeLoop((s, l) => new JobsOrchestrator(s, l))],
    ['task-reaper', storeLoop((s, l) => new TaskReaper(s, l))],
    ['overlay-key-rotation', (ctx) => overlayKeyRotation(ctx)],
  ]);
}
