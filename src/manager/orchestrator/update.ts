import type { Node, Service, Task } from '../../cluster/types.js';
import type { PassChanges } from './changes.js';
import type { RestartSupervisor } from './restart.js';
import { isGlobal, isTaskDirty, newTask, rank, withDesired } from './task.js';

/**
 * Rolling update (a simplified swarmkit updater): slots whose task runs an older spec are
 * replaced `Parallelism` at a time (0 = all at once), stop-first: the old task is set
 * SHUTDOWN and its replacement waits in READY until it stopped. UpdateStatus goes
 * UPDATING while slots are dirty and COMPLETED when none is left.
 */
export function rollingUpdate(pass: PassChanges, service: Service, slots: Task[][], restarts: RestartSupervisor, nodes: Map<string, Node> = new Map(), now = Date.now()): void {
  const dirty: Task[][] = [];
  const updating = service.UpdateStatus?.State === 'updating' || service.UpdateStatus?.State === 'rollback_started';
  let inFlight = 0;
  for (const slot of slots) {
    const current = slot.map((t) => pass.current(t)).filter((t) => rank(t.DesiredState) <= rank('running'));
    if (!current.length) continue;
    const fresh = current.filter((t) => !isTaskDirty(service, t, t.NodeID ? nodes.get(t.NodeID) : undefined));
    if (!fresh.length) dirty.push(current);
    else if (updating && fresh.some((t) => rank(t.Status.State) < rank('running'))) inFlight++;
  }
  const parallelism = service.Spec.UpdateConfig?.Parallelism ?? 1;
  const budget = parallelism === 0 ? Infinity : Math.max(0, parallelism - inFlight);
  for (const slot of dirty.slice(0, budget === Infinity ? dirty.length : budget)) {
    const old = slot[0];
    for (const t of slot) {
      const down = withDesired(t, 'shutdown');
      if (down) pass.update(down);
    }
    const replacement = isGlobal(service) ? newTask(service, undefined, old.NodeID) : newTask(service, old.Slot);
    replacement.DesiredState = 'ready';
    pass.create(replacement);
    restarts.delayStart(replacement.ID, old.ID, 0, now);
  }
  const state = service.UpdateStatus?.State;
  const rollingBack = state === 'rollback_started';
  if (dirty.length && !rollingBack && state !== 'updating' && state !== 'paused' && state !== 'rollback_paused') {
    pass.updateService({ ...service, UpdateStatus: { State: 'updating', StartedAt: new Date(now).toISOString(), Message: 'update in progress' } });
  } else if (!dirty.length && !inFlight && (state === 'updating' || rollingBack)) {
    pass.updateService({
      ...service,
      UpdateStatus: { ...service.UpdateStatus!, State: rollingBack ? 'rollback_completed' : 'completed', CompletedAt: new Date(now).toISOString(), Message: rollingBack ? 'rollback completed' : 'update completed' },
    });
  }
}
