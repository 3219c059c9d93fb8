import type { Node, Service, Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { StoreLoop } from '../loop.js';
import { nodeMatches } from '../scheduler/constraint.js';
import { perNodeConstraints } from './per-node-placement.js';
import { PassChanges } from './changes.js';
import { RestartSupervisor } from './restart.js';
import { invalidNode, isJob, newTask } from './task.js';
import { rank, withDesired } from '../../cluster/task-state.js';

/**
 * Jobs (swarmkit orchestrator/jobs): tasks that run to completion (DesiredState COMPLETE).
 * A replicated job runs TotalCompletions tasks, at most MaxConcurrent at a time; a global job
 * one task per eligible node. Every update of the service starts a new iteration: tasks of
 * older iterations still running are removed. Failed tasks are restarted on failure
 * ("any" means "on-failure" for jobs).
 */
export class JobsOrchestrator extends StoreLoop {
  readonly restarts = new RestartSupervisor();

  constructor(store: Store, log: Logger) {
    super(store, log.child({ loop: 'jobs-orchestrator' }), 10, 200);
  }

  protected observe(events: StoreEvent[]): boolean {
    return events.some((e) => e.kind === 'services' || e.kind === 'tasks' || e.kind === 'nodes');
  }

  protected async tick(): Promise<void> {
    const now = Date.now();
    const services = this.store.view('services').filter(isJob);
    if (!services.length) return;
    const nodes = this.store.view('nodes');
    const nodeMap = new Map(nodes.map((n) => [n.ID, n]));
    const byId = {
      get: (id: string) => this.store.viewOne('tasks', id),
      has: (id: string) => !!this.store.viewOne('tasks', id),
    };
    const pass = new PassChanges();
    let next: number | undefined;
    for (const s of services) {
      const ts = this.store.tasksBy('service', s.ID);
      if (s.Spec.Mode?.ReplicatedJob) reconcileReplicatedJob(pass, s, ts, nodeMap, this.restarts, now);
      else reconcileGlobalJob(pass, s, ts, nodes, this.restarts, now);
      const due = this.restarts.startDue(pass, ts, byId, nodeMap, now);
      if (due !== undefined) next = next === undefined ? due : Math.min(next, due);
    }
    if (pass.size) await this.commitAll(pass.toChanges());
    if (next !== undefined) this.kickAt(next);
  }
}

/** Removes tasks of older iterations that still run; returns the current iteration's tasks. */
function currentIteration(pass: PassChanges, service: Service, tasks: Task[]): Task[] {
  const iteration = service.JobStatus?.JobIteration.Index ?? 0;
  const current: Task[] = [];
  for (const t of tasks) {
    if ((t.JobIteration?.Index ?? -1) === iteration) current.push(pass.current(t));
    else if (rank(t.Status.State) <= rank('running') && t.DesiredState !== 'remove') {
      const r = withDesired(pass.current(t), 'remove');
      if (r) pass.update(r);
    }
  }
  return current;
}

/** Live: desired to complete and not completed (failed ones count until replaced). */
const live = (t: Task) => t.Status.State !== 'complete' && rank(t.DesiredState) <= rank('complete');

export function reconcileReplicatedJob(
  pass: PassChanges,
  service: Service,
  tasks: Task[],
  nodes: Map<string, Node>,
  restarts: RestartSupervisor,
  now = Date.now(),
): void {
  const job = service.Spec.Mode!.ReplicatedJob!;
  const maxConcurrent = job.MaxConcurrent ?? 1;
  const total = job.TotalCompletions ?? maxConcurrent;
  const current = currentIteration(pass, service, tasks);
  // Failed, or stranded on a node that is gone: restart (the supervisor decides about a replacement).
  for (const t of current) {
    if (!live(t)) continue;
    const node = t.NodeID ? nodes.get(t.NodeID) : undefined;
    if (rank(t.Status.State) > rank('complete') || (t.NodeID && invalidNode(node)))
      restarts.restart(pass, service, t, node, now);
  }
  const all = [...current.map((t) => pass.current(t)), ...pass.createdFor(service.ID)];
  const bySlot = new Map<number, Task>();
  for (const t of all) {
    const prev = bySlot.get(t.Slot ?? 0);
    if (!prev || prev.CreatedAt <= t.CreatedAt) bySlot.set(t.Slot ?? 0, t);
  }
  let complete = 0;
  let running = 0;
  let gaveUp = 0;
  for (const t of bySlot.values()) {
    if (t.Status.State === 'complete') complete++;
    else if (live(t)) running++;
    else if (!restarts.shouldRestart(t, service, now)) gaveUp++;
  }
  const slots = new Set(bySlot.keys());
  const create = Math.max(0, Math.min(maxConcurrent - running, total - complete - running - gaveUp));
  let slot = 0;
  for (let i = 0; i < create; i++) {
    while (slots.has(slot)) slot++;
    slots.add(slot);
    pass.create(newTask(service, slot));
  }
}

export function reconcileGlobalJob(
  pass: PassChanges,
  service: Service,
  tasks: Task[],
  nodes: Node[],
  restarts: RestartSupervisor,
  now = Date.now(),
): void {
  const constraints = perNodeConstraints(service);
  const current = currentIteration(pass, service, tasks);
  for (const node of nodes) {
    if (node.Status.State === 'down' || node.Spec.Availability !== 'active' || !nodeMatches(constraints, node))
      continue;
    const mine = current.filter((t) => t.NodeID === node.ID);
    for (const t of mine)
      if (live(t) && rank(t.Status.State) > rank('complete')) restarts.restart(pass, service, t, node, now);
    const after = [
      ...mine.map((t) => pass.current(t)),
      ...pass.createdFor(service.ID).filter((t) => t.NodeID === node.ID),
    ];
    const newest = after.reduce<Task | undefined>((a, b) => (!a || a.CreatedAt <= b.CreatedAt ? b : a), undefined);
    const settled =
      newest && (newest.Status.State === 'complete' || live(newest) || !restarts.shouldRestart(newest, service, now));
    if (!settled) pass.create(newTask(service, undefined, node.ID));
  }
}
