import type { Node, Service, Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { StoreLoop } from '../loop.js';
import { isDesiredRunnable, rank, status } from '../../cluster/task-state.js';
import { Pipeline } from './filters.js';
import { buildNodeInfos, FAILURE_WINDOW_MS, occupiesNode, type NodeInfo } from './node-info.js';
import { spreadTasks } from './spread.js';
import { managerMetrics } from '../metrics.js';

/** PENDING tasks decided (and written) at a time within a pass. */
const MAX_TASKS_PER_PASS = 10_000;

/** Failures of a service's tasks per node: node ID → service ID → timestamps (ms). */
export type FailureLog = Map<string, Map<string, number[]>>;

/**
 * One scheduling pass over the whole cluster state: every PENDING task desired to run gets a
 * node (ASSIGNED) or stays PENDING with Docker's "no suitable node (…)". Tasks are decided
 * in batches of one service and spec version, so a batch spreads as a whole. Pure: returns
 * the tasks to write.
 */
export function schedule(
  nodes: Node[],
  tasks: Task[],
  services: Map<string, Service>,
  failures: FailureLog = new Map(),
  now = Date.now(),
): Task[] {
  return schedulePending(buildNodeInfos(nodes, tasks, services), tasks, services, failures, now);
}

/**
 * The same pass on NodeInfos kept between passes: `tasks` need only hold the PENDING ones.
 * Placed tasks are added to their NodeInfo.
 */
export function schedulePending(
  infos: Map<string, NodeInfo>,
  tasks: Task[],
  services: Map<string, Service>,
  failures: FailureLog = new Map(),
  now = Date.now(),
): Task[] {
  for (const info of infos.values()) info.failures.clear();
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
    const prefs = (group[0].Spec.Placement?.Preferences ?? [])
      .map((p) => p.Spread?.SpreadDescriptor)
      .filter((d): d is string => !!d);
    const unplaced = spreadTasks(group, eligible, prefs, { service, pipeline, now }, (t) => {
      out.push({
        ...t,
        Status: status('assigned', 'scheduler assigned task to node'),
        UpdatedAt: new Date(now).toISOString(),
      });
    });
    if (unplaced.length) {
      pipeline.setTask(group[0], service);
      for (const n of allInfos) pipeline.process(n);
      const why = pipeline.explain();
      out.push(...unplaced.map((t) => noSuitableNode(t, why)).filter((t): t is Task => !!t));
    }
  }
  return out;
}

function schedulePreassigned(t: Task, service: Service, infos: Map<string, NodeInfo>, pipeline: Pipeline): Task[] {
  pipeline.setTask(t, service);
  const info = infos.get(t.NodeID!);
  if (info && pipeline.process(info)) {
    info.addTask(t, service);
    return [
      {
        ...t,
        Status: status('assigned', 'scheduler confirmed task can run on preassigned node'),
        UpdatedAt: new Date().toISOString(),
      },
    ];
  }
  const u = noSuitableNode(t, info ? pipeline.explain() : '');
  return u ? [u] : [];
}

/** The task stays PENDING with the reason; undefined when that is already what it says. */
function noSuitableNode(t: Task, explanation: string): Task | undefined {
  const err = explanation ? `no suitable node (${explanation})` : 'no suitable node';
  if (t.Status.Err === err) return undefined;
  return {
    ...t,
    Status: { ...t.Status, Timestamp: new Date().toISOString(), Err: err },
    UpdatedAt: new Date().toISOString(),
  };
}

/**
 * The scheduler loop: watches for pending tasks and for anything that frees or adds room
 * (nodes, tasks ending), and runs a pass debounced 50 ms, at most 1 s after the first event
 * (swarmkit scheduler.go), writing all decisions in fenced batches. Like swarmkit's nodeSet,
 * what each node holds is kept between passes and updated from task events, and a pass
 * looks only at the PENDING tasks (the store's state index): a pass costs what is pending,
 * not every task of the cluster.
 */
export class Scheduler extends StoreLoop {
  private readonly failures: FailureLog = new Map();
  /** Node ID → what it holds; undefined: rebuild from the store on the next pass. */
  private infos?: Map<string, NodeInfo>;
  /** Task ID → the node whose NodeInfo counts it. */
  private readonly placed = new Map<string, string>();
  /** Full rebuilds of the NodeInfos so far (tests check that passes are incremental). */
  rebuilds = 0;

  constructor(store: Store, log: Logger) {
    super(store, log.child({ loop: 'scheduler' }), 50, 1000);
  }

  protected observe(events: StoreEvent[]): boolean {
    let need = false;
    let services: Map<string, Service> | undefined;
    const serviceMap = () => (services ??= this.serviceMap());
    for (const e of events) {
      if (e.kind === 'nodes' || e.kind === 'services') {
        // Node resources, labels and availability, or a service's ports: rebuild (rare).
        this.infos = undefined;
        need = true;
      } else if (e.kind === 'tasks') {
        const t = e.object as Task;
        this.track(e.action === 'delete' ? undefined : t, t.ID, serviceMap);
        if (
          e.action === 'delete' ||
          t.Status.State === 'pending' ||
          rank(t.Status.State) > rank('running') ||
          !isDesiredRunnable(t)
        )
          need = true;
        if ((t.Status.State === 'failed' || t.Status.State === 'rejected') && t.NodeID && e.action === 'update')
          this.recordFailure(t);
      }
    }
    return need;
  }

  /** Keeps the NodeInfos in step with one task's new version (undefined: deleted). */
  private track(t: Task | undefined, id: string, services: () => Map<string, Service>): void {
    if (!this.infos) return;
    const was = this.placed.get(id);
    const now = t && occupiesNode(t) ? t.NodeID! : undefined;
    if (was !== undefined && was !== now) {
      this.infos.get(was)?.removeTask(id, services());
      this.placed.delete(id);
    }
    if (now !== undefined && t) {
      const info = this.infos.get(now);
      if (info) {
        info.addTask(t, services().get(t.ServiceID));
        this.placed.set(id, now);
      }
    }
  }

  private serviceMap(): Map<string, Service> {
    return new Map(this.store.view('services').map((s) => [s.ID, s]));
  }

  private recordFailure(t: Task): void {
    let byService = this.failures.get(t.NodeID!);
    if (!byService) this.failures.set(t.NodeID!, (byService = new Map()));
    const ts = (byService.get(t.ServiceID) ?? []).filter((x) => x > Date.now() - FAILURE_WINDOW_MS);
    ts.push(Date.now());
    byService.set(t.ServiceID, ts);
  }

  private rebuild(services: Map<string, Service>): Map<string, NodeInfo> {
    this.rebuilds++;
    const infos = buildNodeInfos(this.store.view('nodes'), this.store.view('tasks'), services);
    this.placed.clear();
    for (const info of infos.values()) for (const id of info.tasks.keys()) this.placed.set(id, info.id);
    return infos;
  }

  protected async tick(): Promise<void> {
    const end = managerMetrics.schedulerPass.startTimer();
    try {
      await this.schedulePass();
    } finally {
      end();
    }
  }

  private async schedulePass(): Promise<void> {
    const services = this.serviceMap();
    const pending = this.store.tasksBy('state', 'pending');
    // In chunks, each written before the next is decided: a pass over 100,000 tasks at once
    // held the event loop for seconds (the leader lease is renewed on it). Tasks that find
    // no node are left for the next pass, not retried here.
    for (let i = 0; i < pending.length && !this.stopped; i += MAX_TASKS_PER_PASS) {
      const infos = (this.infos ??= this.rebuild(services));
      const decisions = schedulePending(infos, pending.slice(i, i + MAX_TASKS_PER_PASS), services, this.failures);
      if (!decisions.length) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      // Placed tasks now count on their nodes; the store's events confirm them. A write that
      // fails leaves placements that did not happen: start again from the store.
      for (const t of decisions) if (t.NodeID && occupiesNode(t)) this.placed.set(t.ID, t.NodeID);
      // Grouped by node: the store splits a big batch into transactions, and each one's events
      // reach the agents as one assignments message per node. Spread order put one task per
      // node in each, so a node got (and answered) a message per task.
      decisions.sort((a, b) =>
        (a.NodeID ?? '') < (b.NodeID ?? '') ? -1 : (a.NodeID ?? '') > (b.NodeID ?? '') ? 1 : 0,
      );
      try {
        await this.commitAll(decisions.map((t) => ({ kind: 'tasks' as const, op: 'update' as const, object: t })));
      } catch (e) {
        this.infos = undefined;
        throw e;
      }
      this.log.debug({ tasks: decisions.length }, 'scheduling decisions written');
    }
  }
}
