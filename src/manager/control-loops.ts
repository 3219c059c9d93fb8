import type { Logger } from '../util/log.js';
import type { Store } from './store/store.js';
import type { StoreLoop } from './loop.js';
import { registerLeaderLoop, type LeaderLoopContext } from './leader/loops.js';
import { Allocator } from './allocator/allocator.js';
import { Scheduler } from './scheduler/scheduler.js';
import { ReplicatedOrchestrator } from './orchestrator/replicated.js';
import { GlobalOrchestrator } from './orchestrator/global.js';
import { TaskReaper } from './orchestrator/reaper.js';
import { JobsOrchestrator } from './orchestrator/jobs.js';

/**
 * The control loops of services and tasks, run by the leader only: allocator (NEW →
 * PENDING), scheduler (PENDING → ASSIGNED), the replicated and global orchestrators (with
 * restarts and rolling updates) and the task reaper. Importing this module registers them.
 */
function storeLoop(make: (store: Store, log: Logger) => StoreLoop) {
  return (ctx: LeaderLoopContext): void => {
    if (ctx.signal.aborted) return;
    const loop = make(ctx.store, ctx.log);
    loop.run();
    ctx.signal.addEventListener('abort', () => void loop.stop(), { once: true });
  };
}

registerLeaderLoop('allocator', storeLoop((s, l) => new Allocator(s, l)));
registerLeaderLoop('scheduler', storeLoop((s, l) => new Scheduler(s, l)));
registerLeaderLoop('replicated-orchestrator', storeLoop((s, l) => new ReplicatedOrchestrator(s, l)));
registerLeaderLoop('global-orchestrator', storeLoop((s, l) => new GlobalOrchestrator(s, l)));
registerLeaderLoop('jobs-orchestrator', storeLoop((s, l) => new JobsOrchestrator(s, l)));
registerLeaderLoop('task-reaper', storeLoop((s, l) => new TaskReaper(s, l)));
import './networks/overlay-keys.js';
