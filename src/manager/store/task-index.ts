import type { Task } from '../../cluster/types.js';

/**
 * What tasks are indexed by: service, node, observed state, and slot (`<ServiceID>|s:<Slot>`
 * for replicated tasks, `<ServiceID>|n:<NodeID>` for global ones). Each index costs every
 * task event, so only what a loop looks up is indexed.
 */
export type TaskIndexName = 'service' | 'node' | 'state' | 'slot';

const NAMES: TaskIndexName[] = ['service', 'node', 'state', 'slot'];

/** The slot index's key of a task (the reaper's and orchestrators' unit of history). */
export function taskSlotKey(t: Task): string {
  return t.Slot !== undefined && t.Slot !== null ? `${t.ServiceID}|s:${t.Slot}` : `${t.ServiceID}|n:${t.NodeID ?? ''}`;
}

function keyOf(by: TaskIndexName, t: Task): string | undefined {
  switch (by) {
    case 'service':
      return t.ServiceID;
    case 'node':
      return t.NodeID || undefined;
    case 'state':
      return t.Status.State;
    case 'slot':
      return taskSlotKey(t);
  }
}

/**
 * Indexes of the store cache's tasks, kept on every cache change, so leader loops look up the
 * tasks they need (one service's, the PENDING ones) instead of scanning every task on each
 * pass, which made a pass cost grow with the number of tasks and the run with its square.
 */
export class TaskIndex {
  private readonly maps = new Map<TaskIndexName, Map<string, Map<string, Task>>>(NAMES.map((n) => [n, new Map()]));

  /** Records `next` in place of `prev` (the same task's previous version, if any). */
  put(prev: Task | undefined, next: Task): void {
    for (const by of NAMES) {
      const m = this.maps.get(by)!;
      const was = prev ? keyOf(by, prev) : undefined;
      const k = keyOf(by, next);
      // Most updates keep most keys (a status change keeps the service, node and slot):
      // replacing in place spares the big groups a delete and an insert each.
      if (was !== undefined && was !== k) this.drop(m, was, prev!.ID);
      if (k === undefined) continue;
      let g = m.get(k);
      if (!g) m.set(k, (g = new Map()));
      g.set(next.ID, next);
    }
  }

  remove(t: Task): void {
    for (const by of NAMES) {
      const k = keyOf(by, t);
      if (k !== undefined) this.drop(this.maps.get(by)!, k, t.ID);
    }
  }

  private drop(m: Map<string, Map<string, Task>>, k: string, id: string): void {
    const g = m.get(k);
    if (!g) return;
    g.delete(id);
    if (!g.size) m.delete(k);
  }

  /** The tasks whose `by` is `key`, in no particular order. */
  get(by: TaskIndexName, key: string): Task[] {
    const g = this.maps.get(by)!.get(key);
    return g ? [...g.values()] : [];
  }

  count(by: TaskIndexName, key: string): number {
    return this.maps.get(by)!.get(key)?.size ?? 0;
  }
}
