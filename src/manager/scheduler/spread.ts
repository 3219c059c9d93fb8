import type { Node, Service, Task } from '../../cluster/types.js';
import { MAX_FAILURES, type NodeInfo } from './node-info.js';
import type { Pipeline } from './filters.js';

/**
 * Spread: where a batch of tasks of one service goes among the nodes that passed the
 * filters (swarmkit scheduler.go scheduleNTasksOnSubtree / nodeset tree). Placement
 * preferences split the nodes into a tree by label value, one level per preference; at each
 * level tasks go so that every branch ends up with about as many tasks of the service; in
 * a leaf each task goes to the node with the fewest tasks of this service, then fewest tasks
 * overall, and nodes where the service failed often go last.
 */

export interface SpreadContext {
  service: Service | undefined;
  pipeline: Pipeline;
  now: number;
}

/** The value a spread descriptor reads from a node ("" when the node lacks the label). */
export function spreadValue(descriptor: string, n: Node): string {
  const d = descriptor.toLowerCase();
  if (d.startsWith('node.labels.')) return n.Spec.Labels?.[descriptor.slice('node.labels.'.length)] ?? '';
  if (d.startsWith('engine.labels.'))
    return n.Description?.Engine?.Labels?.[descriptor.slice('engine.labels.'.length)] ?? '';
  return '';
}

/** Places tasks on nodes; returns the tasks that found no room. Placed tasks are added to their NodeInfo with NodeID set. */
export function spreadTasks(
  tasks: Task[],
  nodes: NodeInfo[],
  preferences: string[],
  ctx: SpreadContext,
  placed: (t: Task, n: NodeInfo) => void,
): Task[] {
  return place(tasks, nodes, preferences, 0, ctx, placed);
}

function place(
  tasks: Task[],
  nodes: NodeInfo[],
  prefs: string[],
  level: number,
  ctx: SpreadContext,
  placed: (t: Task, n: NodeInfo) => void,
): Task[] {
  if (!tasks.length) return [];
  if (level >= prefs.length) return fillLeaf(tasks, nodes, ctx, placed);
  const serviceId = tasks[0].ServiceID;
  const groups = new Map<string, NodeInfo[]>();
  for (const n of nodes) {
    const v = spreadValue(prefs[level], n.node);
    let g = groups.get(v);
    if (!g) groups.set(v, (g = []));
    g.push(n);
  }
  const branches = [...groups.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([, ns]) => ({ nodes: ns, count: ns.reduce((s, n) => s + n.serviceCount(serviceId), 0), full: false }));
  let remaining = tasks;
  while (remaining.length) {
    const open = branches.filter((b) => !b.full);
    if (!open.length) break;
    // Water-fill: each task to the open branch with the fewest tasks of this service so far.
    const share = new Map<(typeof open)[number], Task[]>();
    const projected = new Map(open.map((b) => [b, b.count]));
    for (const t of remaining) {
      let best = open[0];
      for (const b of open) if (projected.get(b)! < projected.get(best)!) best = b;
      projected.set(best, projected.get(best)! + 1);
      let s = share.get(best);
      if (!s) share.set(best, (s = []));
      s.push(t);
    }
    const leftovers: Task[] = [];
    for (const [b, ts] of share) {
      const left = place(ts, b.nodes, prefs, level + 1, ctx, placed);
      b.count += ts.length - left.length;
      if (left.length) {
        b.full = true;
        leftovers.push(...left);
      }
    }
    remaining = leftovers;
  }
  return remaining;
}

function fillLeaf(
  tasks: Task[],
  nodes: NodeInfo[],
  ctx: SpreadContext,
  placed: (t: Task, n: NodeInfo) => void,
): Task[] {
  const serviceId = tasks[0].ServiceID;
  const key = (n: NodeInfo): [number, number, number] => [
    n.recentFailures(serviceId, ctx.now) >= MAX_FAILURES ? 1 : 0,
    n.serviceCount(serviceId),
    n.tasks.size,
  ];
  const heap = new NodeHeap(key);
  for (const n of nodes) heap.push(n);
  let i = 0;
  for (; i < tasks.length; i++) {
    const n = heap.pop();
    if (!n) break;
    const t = { ...tasks[i], NodeID: n.id };
    n.addTask(t, ctx.service);
    placed(t, n);
    // Still room for the next task of this batch (resources, max replicas, host ports)?
    if (ctx.pipeline.process(n)) heap.push(n);
  }
  return tasks.slice(i);
}

/** A binary min-heap of nodes by a tuple key, node ID breaking ties (deterministic placement). */
class NodeHeap {
  private readonly items: { n: NodeInfo; k: [number, number, number] }[] = [];
  constructor(private readonly key: (n: NodeInfo) => [number, number, number]) {}

  push(n: NodeInfo): void {
    this.items.push({ n, k: this.key(n) });
    let i = this.items.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [this.items[i], this.items[p]] = [this.items[p], this.items[i]];
      i = p;
    }
  }

  pop(): NodeInfo | undefined {
    const top = this.items[0];
    if (!top) return undefined;
    const last = this.items.pop()!;
    if (this.items.length) {
      this.items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.items.length && this.less(l, m)) m = l;
        if (r < this.items.length && this.less(r, m)) m = r;
        if (m === i) break;
        [this.items[i], this.items[m]] = [this.items[m], this.items[i]];
        i = m;
      }
    }
    return top.n;
  }

  private less(a: number, b: number): boolean {
    const x = this.items[a];
    const y = this.items[b];
    for (let i = 0; i < 3; i++) if (x.k[i] !== y.k[i]) return x.k[i] < y.k[i];
    return x.n.id < y.n.id;
  }
}
