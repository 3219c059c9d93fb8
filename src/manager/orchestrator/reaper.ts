import type { Service, Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { StoreLoop } from '../loop.js';
import { isNetworkAttachment } from '../networks/attachment-task.js';
import { historyLimit, isAgentProgress, rank, slotKey } from './task.js';

/** A task reaching RUNNING while wanted running: nothing becomes reapable by it. */
function isRunningUpdate(e: StoreEvent): boolean {
  const t = e.object as Task;
  return e.kind === 'tasks' && e.action === 'update' && t.Status.State === 'running' && rank(t.DesiredState) <= rank('running');
}

/**
 * Which tasks may go (swarmkit taskreaper): tasks desired REMOVE that never got a node or
 * finished; tasks of services that no longer exist once they stopped; and, per slot (per
 * node for global services), the oldest ended tasks beyond the history limit
 * (cluster TaskHistoryRetentionLimit, default 5; MaxAttempts+1 when the restart policy sets
 * one; negative keeps everything). Pure.
 */
export function tasksToReap(tasks: Task[], services: Map<string, Service>, limit: number): string[] {
  const out = new Set<string>();
  const groups = new Map<string, Task[]>();
  for (const t of tasks) {
    const service = services.get(t.ServiceID);
    const ended = rank(t.Status.State) >= rank('complete');
    const unassigned = rank(t.Status.State) < rank('assigned');
    if (t.DesiredState === 'remove' && (ended || unassigned)) {
      out.add(t.ID);
      continue;
    }
    if (!service) {
      // A network attachment has no service by nature; it waits NEW for its address.
      if (ended || t.Status.State === 'orphaned' || (unassigned && !isNetworkAttachment(t))) out.add(t.ID);
      continue;
    }
    const key = `${t.ServiceID}|${slotKey(service, t)}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(t);
  }
  for (const g of groups.values()) {
    const service = services.get(g[0].ServiceID)!;
    const max = service.Spec.TaskTemplate.RestartPolicy?.MaxAttempts;
    let keep = max && max > 0 ? max + 1 : limit;
    if (keep < 0 || g.length <= keep) continue;
    g.sort((a, b) => (a.Status.Timestamp < b.Status.Timestamp ? -1 : a.Status.Timestamp > b.Status.Timestamp ? 1 : 0));
    for (const t of g) {
      const ended = rank(t.Status.State) > rank('running');
      const neverRuns = rank(t.Status.State) < rank('assigned') && rank(t.DesiredState) > rank('running');
      if (ended || neverRuns) {
        out.add(t.ID);
        keep++;
        if (g.length <= keep) break;
      }
    }
  }
  return [...out];
}

/** The task reaper loop: batches deletions, at most every 250 ms. */
export class TaskReaper extends StoreLoop {
  constructor(store: Store, log: Logger) {
    super(store, log.child({ loop: 'task-reaper' }), 250, 250);
  }

  protected observe(events: StoreEvent[]): boolean {
    return events.some((e) => (e.kind === 'tasks' && e.action !== 'delete' && !isAgentProgress(e) && !isRunningUpdate(e)) || e.kind === 'cluster' || (e.kind === 'services' && e.action === 'delete'));
  }

  protected async tick(): Promise<void> {
    const cluster = this.store.view('cluster')[0];
    const services = new Map(this.store.view('services').map((s) => [s.ID, s]));
    const ids = tasksToReap(this.store.view('tasks'), services, historyLimit(cluster));
    if (!ids.length) return;
    await this.commitAll(ids.map((id) => ({ kind: 'tasks' as const, op: 'delete' as const, id })));
  }
}
