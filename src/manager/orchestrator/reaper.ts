import type { Service, Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { StoreLoop } from '../loop.js';
import { taskSlotKey } from '../store/task-index.js';
import { isNetworkAttachment } from '../../cluster/attachment-task.js';
import { historyLimit, isAgentProgress, slotKey } from './task.js';
import { rank } from '../../cluster/task-state.js';

/** A task reaching RUNNING while wanted running: nothing becomes reapable by it. */
function isRunningUpdate(e: StoreEvent): boolean {
  const t = e.object as Task;
  return (
    e.kind === 'tasks' &&
    e.action === 'update' &&
    t.Status.State === 'running' &&
    rank(t.DesiredState) <= rank('running')
  );
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

/**
 * The task reaper loop: batches deletions, at most every 250 ms. A pass looks only at the
 * slots (the store's slot index) where a task was added, ended or set to go since the last
 * one; every task only when the cluster's limit changed, a service was deleted, or at the
 * start of a term.
 */
export class TaskReaper extends StoreLoop {
  private dirty = new Set<string>();
  private full = true;
  /** Tasks looked at so far (tests check that passes are incremental). */
  examined = 0;

  constructor(store: Store, log: Logger) {
    super(store, log.child({ loop: 'task-reaper' }), 250, 250);
  }

  protected observe(events: StoreEvent[]): boolean {
    let need = false;
    for (const e of events) {
      if (e.kind === 'cluster' || (e.kind === 'services' && e.action === 'delete')) {
        this.full = true;
        need = true;
      } else if (e.kind === 'tasks' && e.action !== 'delete' && !isAgentProgress(e) && !isRunningUpdate(e)) {
        const t = e.object as Task;
        // A task moving forward towards RUNNING neither ends nor grows its slot's history.
        if (e.action === 'update' && rank(t.Status.State) <= rank('running') && rank(t.DesiredState) <= rank('running'))
          continue;
        this.dirty.add(taskSlotKey(t));
        need = true;
      }
    }
    return need;
  }

  protected async tick(): Promise<void> {
    const full = this.full;
    const slots = this.dirty;
    this.full = false;
    this.dirty = new Set();
    const cluster = this.store.view('cluster')[0];
    const services = new Map(this.store.view('services').map((s) => [s.ID, s]));
    const tasks = full ? this.store.view('tasks') : [...slots].flatMap((k) => this.store.tasksBy('slot', k));
    this.examined += tasks.length;
    const ids = tasksToReap(tasks, services, historyLimit(cluster));
    if (!ids.length) return;
    try {
      await this.commitAll(ids.map((id) => ({ kind: 'tasks' as const, op: 'delete' as const, id })));
    } catch (e) {
      if (full) this.full = true;
      for (const k of slots) this.dirty.add(k);
      throw e;
    }
  }
}
