import type { Node, Service, Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { StoreLoop } from '../loop.js';
import { isDesiredRunnable, rank, status } from '../orchestrator/task.js';
import { Pipeline } from './filters.js';
import { buildNodeInfos, FAILURE_WINDOW_MS, type NodeInfo } from './node-info.js';
import { spreadTasks } from './spread.js';

/** Failures of a service's tasks per node: node ID → service ID → timestamps (ms). */
export type FailureLog = Map<string, Map<string, number[]>>;

/**
 * One scheduling pass over the whole cluster state: every PENDING task desired to run gets a
 * node (ASSIGNED) or stays PENDING with Docker's "no suitable node (…)". Tasks are decided
 * in batches of one service and spec version, so a batch spreads as a whole. Pure: returns
 * the tasks to write.
 */
export function schedule(nodes: Node[], tasks: Task[], services: Map<string, Service>, failures: FailureLog = new Map(), now = Date.now()): Task[] {
  const infos = buildNodeInfos(nodes, tasks, services);
  for (const [nodeId, byService] of failures) {
    const info = infos.get(nodeId);
    if (info) for (const [sid, ts] of byService) info.failures.set(sid, [...ts]);
  }
  const out: Task[] = [];
  const pipeline = new Pipeline();
  const groups = new Map<string, Task[]>();
  for (const t of tasks) {
    if (t.Status.State !== 'pending' || !isDesiredRunnable(t)) continue;
    const service = services.get(t.ServiceID);
    if (!service) continue;
    if (t.NodeID) {
      out.push(...schedulePreassigned(t, service, infos, pipeline));
      continue;
    }
    const key = `${t.ServiceID}@${t.SpecVersion?.Index ?? 0}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(t);
  }
  const allInfos = [...infos.values()];
  for (const group of groups.values()) {
    group.sort((a, b) => (a.Slot ?? 0) - (b.Slot ?? 0) || (a.CreatedAt < b.CreatedAt ? -1 : 1));
    const service = services.get(group[0].ServiceID);
    pipeline.setTask(group[0], service);
    const eligible = allInfos.filter((n) => pipeline.process(n));
    const prefs = (group[0].Spec.Placement?.Preferences ?? []).map((p) => p.Spread?.SpreadDescriptor).filter((d): d is string => !!d);
    const unplaced = spreadTasks(group, eligible, prefs, { service, pipeline, now }, (t) => {
      out.push({ ...t, Status: status('assigned', 'scheduler assigned task to node'), UpdatedAt: new Date(now).toISOString() });
    });
    if (unplaced.length) {
      pipeline.setTask(group[0], service);
      for (const n of allInfos) pipeline.process(n);
      out.push(...unplaced.map((t) => noSuitableNode(t, pipeline.explain())).filter((t): t is Task => !!t));
    }
  }
  return out;
}

function schedulePreassigned(t: Task, service: Service, infos: Map<string, NodeInfo>, pipeline: Pipeline): Task[] {
  pipeline.setTask(t, service);
  const info = infos.get(t.NodeID!);
  if (info && pipeline.process(info)) {
    info.addTask(t, service);
    return [{ ...t, Status: status('assigned', 'scheduler confirmed task can run on preassigned node'), UpdatedAt: new Date().toISOString() }];
  }
  const u = noSuitableNode(t, info ? pipeline.explain() : '');
  return u ? [u] : [];
}

/** The task stays PENDING with the reason; undefined when that is already what it says. */
function noSuitableNode(t: Task, explanation: string): Task | undefined {
  const err = explanation ? `no suitable node (${explanation})` : 'no suitable node';
  if (t.Status.Err === err) return undefined;
  return { ...t, Status: { ...t.Status, Timestamp: new Date().toISOString(), Err: err }, UpdatedAt: new Date().toISOString() };
}

/**
 * The scheduler loop: watches for pending tasks and for anything that frees or adds room
 * (nodes, tasks ending), and runs a pass debounced 50 ms, at most 1 s after the first event
 * (swarmkit scheduler.go), writing all decisions in fenced batches.
 */
export class Scheduler extends StoreLoop {
  private readonly failures: FailureLog = new Map();

  constructor(store: Store, log: Logger) {
    super(store, log.child({ loop: 'scheduler' }), 50, 1000);
  }

  protected observe(events: StoreEvent[]): boolean {
    let need = false;
    for (const e of events) {
      if (e.kind === 'nodes') need = true;
      else if (e.kind === 'tasks') {
        const t = e.object as Task;
        if (e.action === 'delete' || t.Status.State === 'pending' || rank(t.Status.State) > rank('running') || !isDesiredRunnable(t)) need = true;
        if ((t.Status.State === 'failed' || t.Status.State === 'rejected') && t.NodeID && e.action === 'update') this.recordFailure(t);
      } else if (e.kind === 'services') need = true;
    }
    return need;
  }

  private recordFailure(t: Task): void {
    let byService = this.failures.get(t.NodeID!);
    if (!byService) this.failures.set(t.NodeID!, (byService = new Map()));
    const ts = (byService.get(t.ServiceID) ?? []).filter((x) => x > Date.now() - FAILURE_WINDOW_MS);
    ts.push(Date.now());
    byService.set(t.ServiceID, ts);
  }

  protected async tick(): Promise<void> {
    const services = new Map(this.store.view('services').map((s) => [s.ID, s]));
    const decisions = schedule(this.store.view('nodes'), this.store.view('tasks'), services, this.failures);
    if (!decisions.length) return;
    await this.commitAll(decisions.map((t) => ({ kind: 'tasks' as const, op: 'update' as const, object: t })));
    this.log.debug({ tasks: decisions.length }, 'scheduling decisions written');
  }
}
