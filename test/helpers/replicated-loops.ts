import type { Logger } from '../../src/util/log.js';
import type { Store } from '../../src/manager/store/store.js';
import { Allocator } from '../../src/manager/allocator/allocator.js';
import { Scheduler } from '../../src/manager/scheduler/scheduler.js';
import { ReplicatedOrchestrator } from '../../src/manager/orchestrator/replicated.js';
import { TaskReaper } from '../../src/manager/orchestrator/reaper.js';

/**
 * The leader loops that take a replicated service's tasks from the store to assigned nodes:
 * allocator, scheduler, replicated orchestrator, task reaper (not yet running: call run()).
 */
export function replicatedServiceLoops(store: Store, log: Logger) {
  return {
    allocator: new Allocator(store, log),
    scheduler: new Scheduler(store, log),
    orchestrator: new ReplicatedOrchestrator(store, log),
    reaper: new TaskReaper(store, log),
  };
}
