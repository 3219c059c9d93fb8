import { isNetworkAttachment } from '../networks/attachments.js';
import type { Node, Service, Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { ServiceOrchestrator } from './service-orchestrator.js';
import { PassChanges } from './changes.js';
import { RestartSupervisor } from './restart.js';
import { rollingUpdate, UpdateTracker } from './update.js';
import { invalidNode, isReplicated, isTaskDirty, newTask, replicasOf } from './task.js';
import { isDesiredRunnable, isTerminal, rank, withDesired } from '../../cluster/task-state.js';
import { nodeMatches, parseConstraints, type Constraint } from '../scheduler/constraint.js';

/**
 * The replicated orchestrator: keeps `Replicas` slots of every replicated service alive.
 * A slot is alive while one of its tasks is desired to run, or while its newest task ended
 * and the restart policy says it stays ended (swarmkit UpdatableTasksInSlot). Scale up
 * fills the lowest free slot numbers; scale down removes slots on the nodes with the most
 * copies first, and non-running ones before running ones. Ended tasks and tasks on nodes
 * that went DOWN or were drained go to the restart supervisor; outdated ones to the updater.
 * Tasks of deleted services are set to REMOVE.
 */
/** Tasks one pass creates for a service at most. */
const MAX_NEW_TASKS_PER_PASS = 10_000;

export class ReplicatedOrchestrator extends ServiceOrchestrator {
  /** Services whose tasks or spec changed since the last pass: a pass reconciles only these. */
  private dirty = new Set<string>();
  /** Reconcile every service (first pass of a term, after a failed write). */
  private full = true;
  /** Service ID → when its restart delay or update delay ends. */
  private readonly wakes = new Map<string, number>();
  /** Passes over each service so far (tests check that passes are incremental). */
  readonly reconciled = new Map<string, number>();

  constructor(store: Store, log: Logger) {
    super(store, log, 'replicated-orchestrator');
  }

  protected observe(events: StoreEvent[]): boolean {
    let need = false;
    for (const e of events) {
      if (e.kind === 'services') {
        this.dirty.add(e.object.ID);
        need = true;
      } else if (e.kind === 'nodes') {
        // A node going DOWN, drained or relabelled concerns the services with tasks on it.
        for (const t of this.store.tasksBy('node', e.object.ID)) this.dirty.add(t.ServiceID);
        need = true;
      } else if (e.kind === 'tasks' && this.concerns(e)) {
        this.dirty.add((e.object as Task).ServiceID);
        need = true;
      }
    }
    return need;
  }

  /**
   * Whether a task event can change a decision. Most task events at scale are a task moving
   * forward on its way to RUNNING while wanted running (allocated, scheduled, agent progress)
   * on a node that is up, or this loop's own creations: no slot is gained or lost by them, so
   * they wait for the next real change instead of costing a pass over the whole service. A service in a
   * rolling update watches its tasks reach RUNNING (the update's monitor).
   */
  private concerns(e: StoreEvent): boolean {
    const t = e.object as Task;
    if (e.action === 'delete') return true;
    if (t.DesiredState !== 'running' || isTerminal(t)) return true;
    if (e.action === 'create') return t.Status.State !== 'new' && t.Status.State !== 'pending';
    // Placed on a node that went DOWN or was drained before the placement landed: the node's
    // own event came when the task was not on it yet (swarmkit checks the node on every task event).
    if (t.NodeID && invalidNode(this.store.viewOne('nodes', t.NodeID))) return true;
    const state = this.store.viewOne('services', t.ServiceID)?.UpdateStatus?.State;
    return state === 'updating' || state === 'rollback_started';
  }

  protected async tick(): Promise<void> {
    const now = Date.now();
    const full = this.full;
    const ids = full ? new Set(this.store.view('services').map((s) => s.ID)) : this.dirty;
    this.full = false;
    this.dirty = new Set();
    for (const [id, at] of this.wakes) {
      if (at > now) continue;
      ids.add(id);
      this.wakes.delete(id);
    }
    try {
      await this.reconcile(ids, full, now);
    } catch (e) {
      // The pass runs again (version race) or the term ends: nothing it looked at is settled.
      for (const id of ids) this.dirty.add(id);
      if (full) this.full = true;
      throw e;
    }
  }

  private async reconcile(ids: Set<string>, full: boolean, now: number): Promise<void> {
    const nodes = new Map(this.store.view('nodes').map((n) => [n.ID, n]));
    const pass = new PassChanges();
    for (const id of ids) {
      const s = this.store.viewOne('services', id);
      if (!s) {
        // Tasks whose service is gone are removed (the reaper deletes them once they stopped).
        this.removeOrphans(pass, this.store.tasksBy('service', id));
        continue;
      }
      if (!isReplicated(s)) continue;
      this.reconciled.set(id, (this.reconciled.get(id) ?? 0) + 1);
      const ts = this.store.tasksBy('service', id);
      const created = pass.createdCount;
      const wake = reconcileReplicated(pass, s, ts, nodes, this.restarts, now, this.updates, MAX_NEW_TASKS_PER_PASS);
      if (pass.createdCount - created >= MAX_NEW_TASKS_PER_PASS) {
        // More to create: the next pass goes on (after this one's writes), so no pass holds
        // the event loop for seconds (the leader lease is renewed on it) and the allocator
        // and scheduler start on the first tasks while the rest are being created.
        this.dirty.add(id);
        this.kick(0);
      }
      const due = this.restarts.startDue(pass, ts, this.taskById, nodes, now);
      let next: number | undefined;
      for (const w of [wake, due]) if (w !== undefined) next = next === undefined ? w : Math.min(next, w);
      if (next !== undefined) {
        this.wakes.set(id, Math.min(next, this.wakes.get(id) ?? Infinity));
        this.kickAt(next);
      }
    }
    if (full) {
      const serviceIds = new Set(this.store.view('services').map((s) => s.ID));
      this.removeOrphans(
        pass,
        this.store.view('tasks').filter((t) => !serviceIds.has(t.ServiceID)),
      );
    }
    if (pass.size) await this.commitAll(pass.toChanges());
  }

  private removeOrphans(pass: PassChanges, tasks: Task[]): void {
    for (const t of tasks) {
      if (t.DesiredState === 'remove' || isNetworkAttachment(t)) continue;
      this.restarts.clearService(t.ServiceID);
      this.updates.forget(t.ServiceID);
      const r = withDesired(t, 'remove');
      if (r) pass.update(r);
    }
  }
}

/** One replicated service's slots: restarts, scaling, rolling update. Pure apart from the supervisor's memory. */
export function reconcileReplicated(
  pass: PassChanges,
  service: Service,
  tasks: Task[],
  nodes: Map<string, Node>,
  restarts: RestartSupervisor,
  now = Date.now(),
  updates = new UpdateTracker(),
  /** Scale up by at most this many slots (the loop comes back for the rest). */
  maxCreates = Infinity,
): number | undefined {
  // Task level: ended while desired to run, stranded on a node that is gone, DOWN or drained,
  // or on a node that no longer meets the constraints (swarmkit's constraint enforcer).
  let constraints: Constraint[] | undefined;
  try {
    constraints = parseConstraints(service.Spec.TaskTemplate.Placement?.Constraints);
  } catch {
    constraints = undefined;
  }
  for (const t of tasks) {
    if (!isDesiredRunnable(t)) continue;
    const node = t.NodeID ? nodes.get(t.NodeID) : undefined;
    const unfit = !!node && !!constraints && !isTaskDirty(service, t, node) && !nodeMatches(constraints, node);
    if (isTerminal(t) || (t.NodeID && invalidNode(node)) || unfit) restarts.restart(pass, service, t, node, now);
  }
  // Service level: live slots.
  const bySlot = new Map<number, Task[]>();
  for (const t0 of tasks) {
    const t = pass.current(t0);
    let l = bySlot.get(t.Slot ?? 0);
    if (!l) bySlot.set(t.Slot ?? 0, (l = []));
    l.push(t);
  }
  for (const t of pass.createdFor(service.ID)) {
    let l = bySlot.get(t.Slot ?? 0);
    if (!l) bySlot.set(t.Slot ?? 0, (l = []));
    if (!l.some((x) => x.ID === t.ID)) l.push(t);
  }
  const live = new Map<number, Task[]>();
  for (const [slot, ts] of bySlot) {
    const runnable = ts.filter(isDesiredRunnable);
    if (runnable.length) {
      live.set(slot, runnable);
      continue;
    }
    const newest = ts.reduce((a, b) => (a.CreatedAt >= b.CreatedAt ? a : b));
    if (newest.DesiredState !== 'remove' && !restarts.shouldRestart(newest, service, now)) live.set(slot, [newest]);
  }
  const want = replicasOf(service);
  if (want > live.size) {
    let slot = 0;
    for (let i = live.size, made = 0; i < want && made < maxCreates; i++, made++) {
      do slot++;
      while (live.has(slot));
      const t = newTask(service, slot);
      pass.create(t);
      live.set(slot, [t]);
    }
  } else if (want < live.size) {
    const isRunning = (slot: Task[]) => slot.some((t) => t.Status.State === 'running');
    const ordered = [...live.values()].sort(
      (a, b) => Number(isRunning(b)) - Number(isRunning(a)) || (a[0].Slot ?? 0) - (b[0].Slot ?? 0),
    );
    const perNode = new Map<string, number>();
    const indexed = ordered.map((slot) => {
      if (slot.length === 1 && slot[0].NodeID) {
        const n = (perNode.get(slot[0].NodeID) ?? 0) + 1;
        perNode.set(slot[0].NodeID, n);
        return { slot, index: n };
      }
      return { slot, index: Infinity };
    });
    // Stable sort: equal copies-on-node keep running-first order.
    indexed.sort((a, b) => (a.index === b.index ? 0 : a.index < b.index ? -1 : 1));
    for (const { slot } of indexed.slice(want)) {
      live.delete(slot[0].Slot ?? 0);
      for (const t of slot) {
        const r = withDesired(pass.current(t), 'remove');
        if (r) pass.update(r);
      }
    }
  }
  return rollingUpdate(
    pass,
    service,
    [...live.values()].map((ts) => ts.filter((t) => rank(t.DesiredState) <= rank('running'))),
    restarts,
    nodes,
    now,
    updates,
    tasks,
  );
}
