import type { Node, Service, Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { ServiceOrchestrator } from './service-orchestrator.js';
import { nodeMatches } from '../scheduler/constraint.js';
import { perNodeConstraints } from './per-node-placement.js';
import { PassChanges } from './changes.js';
import type { RestartSupervisor } from './restart.js';
import { rollingUpdate, UpdateTracker } from './update.js';
import { newTask } from './task.js';
import { isDesiredRunnable, isTerminal, withDesired } from '../../cluster/task-state.js';

/**
 * The global orchestrator: one task of every global service on every node that may run it
 * (not DOWN, not drained, constraints met), created already bound to the node. It follows
 * nodes joining, leaving, draining and changing labels; pause keeps existing tasks but
 * adds none. Ended tasks are restarted on the same node by the restart supervisor.
 */
export class GlobalOrchestrator extends ServiceOrchestrator {
  constructor(store: Store, log: Logger) {
    super(store, log, 'global-orchestrator');
  }

  protected observe(events: StoreEvent[]): boolean {
    return events.some((e) => e.kind === 'services' || e.kind === 'tasks' || e.kind === 'nodes');
  }

  protected async tick(): Promise<void> {
    const now = Date.now();
    const services = this.store.view('services').filter((s) => !!s.Spec.Mode?.Global);
    if (!services.length) return;
    const nodes = this.store.view('nodes');
    const nodeMap = new Map(nodes.map((n) => [n.ID, n]));
    const pass = new PassChanges();
    let next: number | undefined;
    for (const s of services) {
      const ts = this.store.tasksBy('service', s.ID);
      const wake = reconcileGlobal(pass, s, ts, nodes, this.restarts, now, this.updates);
      const due = this.restarts.startDue(pass, ts, this.taskById, nodeMap, now);
      for (const w of [wake, due]) if (w !== undefined) next = next === undefined ? w : Math.min(next, w);
    }
    if (pass.size) await this.commitAll(pass.toChanges());
    if (next !== undefined) this.kickAt(next);
  }
}

export function reconcileGlobal(
  pass: PassChanges,
  service: Service,
  tasks: Task[],
  nodes: Node[],
  restarts: RestartSupervisor,
  now = Date.now(),
  updates = new UpdateTracker(),
): number | undefined {
  const constraints = perNodeConstraints(service);
  const byNode = new Map<string, Task[]>();
  for (const t of tasks) {
    const k = t.NodeID ?? '';
    let l = byNode.get(k);
    if (!l) byNode.set(k, (l = []));
    l.push(t);
  }
  const slots: Task[][] = [];
  const known = new Set<string>();
  for (const node of nodes) {
    known.add(node.ID);
    const ts = byNode.get(node.ID) ?? [];
    const eligible =
      node.Status.State !== 'down' && node.Spec.Availability !== 'drain' && nodeMatches(constraints, node);
    if (!eligible) {
      for (const t of ts) {
        const down = isDesiredRunnable(t) ? withDesired(pass.current(t), 'shutdown') : undefined;
        if (down) pass.update(down);
      }
      continue;
    }
    for (const t of ts) if (isDesiredRunnable(t) && isTerminal(t)) restarts.restart(pass, service, t, node, now);
    const current = [
      ...ts.map((t) => pass.current(t)),
      ...pass.createdFor(service.ID).filter((t) => t.NodeID === node.ID),
    ];
    const runnable = current.filter(isDesiredRunnable);
    let alive = runnable.length > 0;
    if (!alive && current.length) {
      const newest = current.reduce((a, b) => (a.CreatedAt >= b.CreatedAt ? a : b));
      alive = newest.DesiredState !== 'remove' && !restarts.shouldRestart(newest, service, now);
    }
    if (!alive && node.Spec.Availability === 'active') {
      const t = newTask(service, undefined, node.ID);
      pass.create(t);
      runnable.push(t);
    }
    if (runnable.length) slots.push(runnable);
  }
  // Tasks on nodes that left the swarm.
  for (const [nodeId, ts] of byNode) {
    if (known.has(nodeId)) continue;
    for (const t of ts) {
      const down = isDesiredRunnable(t) ? withDesired(pass.current(t), 'shutdown') : undefined;
      if (down) pass.update(down);
    }
  }
  return rollingUpdate(pass, service, slots, restarts, new Map(nodes.map((n) => [n.ID, n])), now, updates, tasks);
}
