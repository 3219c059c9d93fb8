import type { Node, Service, Task } from '../../cluster/types.js';
import type { PassChanges } from './changes.js';
import { DEFAULT_RESTART_DELAY_NS, isGlobal, newTask } from './task.js';
import { isDesiredRunnable, isTerminal, rank, withDesired } from '../../cluster/task-state.js';

/** How long a replacement waits for the task it replaces to stop before starting anyway. */
export const OLD_TASK_TIMEOUT_MS = 60_000;

interface DelayedStart {
  /** Not before this time (restart delay). */
  at: number;
  /** Wait for this task to stop first, until `deadline`. */
  oldTaskId?: string;
  deadline: number;
}

interface RestartHistory {
  specVersion: number;
  total: number;
  /** When each restart happened (ms), kept only when a window is set. */
  times: number[];
}

/**
 * The restart supervisor (swarmkit orchestrator/restart): a task that ended while desired to
 * run is shut down (DesiredState SHUTDOWN) and, if the restart policy allows, replaced by a
 * new task in the same slot (or on the same node, for global services). The replacement is
 * created with DesiredState READY and raised to RUNNING once the restart delay passed and
 * the old task stopped (or a minute went by); with neither to wait for, it is created RUNNING.
 */
export class RestartSupervisor {
  private readonly history = new Map<string, RestartHistory>();
  private readonly delayed = new Map<string, DelayedStart>();

  private historyKey(service: Service, t: Task): string {
    return isGlobal(service) ? `${t.ServiceID}/n/${t.NodeID ?? ''}` : `${t.ServiceID}/s/${t.Slot ?? 0}`;
  }

  shouldRestart(t: Task, service: Service, now = Date.now()): boolean {
    const p = t.Spec.RestartPolicy ?? {};
    let condition = p.Condition ?? 'any';
    // Restarting a job task that completed makes no sense: jobs read "any" as "on-failure".
    if (t.JobIteration && condition === 'any') condition = 'on-failure';
    if (condition !== 'any' && (condition !== 'on-failure' || t.Status.State === 'complete')) return false;
    const max = p.MaxAttempts ?? 0;
    if (!max) return true;
    const h = this.history.get(this.historyKey(service, t));
    if (!h || h.specVersion !== (t.SpecVersion?.Index ?? 0)) return true;
    const windowMs = (p.Window ?? 0) / 1e6;
    if (!windowMs) return h.total < max;
    h.times = h.times.filter((x) => x > now - windowMs);
    return h.times.length < max;
  }

  /**
   * Shuts `t` down and maybe creates its replacement, both into `pass`. Returns the new task.
   * Call only for tasks still desired to run.
   */
  restart(pass: PassChanges, service: Service, t: Task, node: Node | undefined, now = Date.now()): Task | undefined {
    const cur = pass.current(t);
    if (!isDesiredRunnable(cur)) return undefined;
    const down = withDesired(cur, 'shutdown');
    if (!down) return undefined;
    pass.update(down);
    this.delayed.delete(t.ID);
    if (!this.shouldRestart(cur, service, now)) return undefined;
    const replacement = isGlobal(service) ? newTask(service, undefined, t.NodeID) : newTask(service, t.Slot);
    // The delay does not apply when the node was drained.
    const delayNs = node?.Spec.Availability === 'drain' ? 0 : (t.Spec.RestartPolicy?.Delay ?? DEFAULT_RESTART_DELAY_NS);
    const waitStop = !(node?.Status.State === 'down') && !isTerminal(cur);
    if (delayNs <= 0 && !waitStop) {
      // Nothing to wait for (no delay, the old task ended or its node is down): the replacement
      // is created runnable, in this same write, instead of READY raised by the next pass.
      replacement.DesiredState = replacement.JobIteration ? 'complete' : 'running';
    } else {
      replacement.DesiredState = 'ready';
      this.delayed.set(replacement.ID, {
        at: now + delayNs / 1e6,
        oldTaskId: waitStop ? t.ID : undefined,
        deadline: now + OLD_TASK_TIMEOUT_MS,
      });
    }
    pass.create(replacement);
    this.record(service, replacement, now);
    return replacement;
  }

  /** Registers a replacement made by the updater: start once `oldTaskId` stopped. */
  delayStart(newTaskId: string, oldTaskId: string | undefined, delayMs: number, now = Date.now()): void {
    this.delayed.set(newTaskId, { at: now + delayMs, oldTaskId, deadline: now + OLD_TASK_TIMEOUT_MS });
  }

  private record(service: Service, replacement: Task, now: number): void {
    const p = replacement.Spec.RestartPolicy;
    if (!p?.MaxAttempts) return;
    const key = this.historyKey(service, replacement);
    const version = replacement.SpecVersion?.Index ?? 0;
    let h = this.history.get(key);
    if (!h || h.specVersion !== version) this.history.set(key, (h = { specVersion: version, total: 0, times: [] }));
    h.total++;
    if (p.Window) h.times.push(now);
  }

  /**
   * Raises tasks waiting in READY to RUNNING when due. Tasks found in READY without a record
   * (a new leader took over) start now. Returns the next time something becomes due.
   */
  startDue(
    pass: PassChanges,
    tasks: Task[],
    byId: Pick<Map<string, Task>, 'get' | 'has'>,
    nodes: Map<string, Node>,
    now = Date.now(),
  ): number | undefined {
    // Forget replacements that were deleted meanwhile.
    for (const id of this.delayed.keys()) if (!byId.has(id) && !pass.hasCreated(id)) this.delayed.delete(id);
    let next: number | undefined;
    for (const t of tasks) {
      if (t.DesiredState !== 'ready') continue;
      const d = this.delayed.get(t.ID);
      let due = true;
      if (d) {
        if (now < d.at) due = false;
        else if (d.oldTaskId && now < d.deadline) {
          const old = byId.get(d.oldTaskId);
          const oldNode = old?.NodeID ? nodes.get(old.NodeID) : undefined;
          const stopped =
            !old ||
            rank(old.Status.State) > rank('running') ||
            !old.NodeID ||
            !oldNode ||
            oldNode.Status.State === 'down' ||
            rank(old.Status.State) < rank('assigned');
          if (!stopped) due = false;
        }
        if (!due) {
          const when = now < d.at ? d.at : d.deadline;
          next = next === undefined ? when : Math.min(next, when);
          continue;
        }
      }
      const up = withDesired(pass.current(t), t.JobIteration ? 'complete' : 'running');
      if (up) pass.update(up);
      this.delayed.delete(t.ID);
    }
    return next;
  }

  clearService(serviceId: string): void {
    for (const k of this.history.keys()) if (k.startsWith(`${serviceId}/`)) this.history.delete(k);
  }
}
