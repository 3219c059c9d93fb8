/**
 * Control-plane convergence: `replicas` tasks of one service onto `nodes` nodes through the
 * real leader loops (allocator, scheduler, orchestrator, reaper) and one real worker per node
 * with a simulated executor, on the in-memory store; agents' status reports are batched every
 * 100 ms as the dispatcher does. Reports the time until every task is RUNNING, then the time
 * to scale down to half.
 * Run: `npx tsc -p . && node dist/bench/control-plane-memory.js [replicas] [nodes]`. (The same with a real
 * manager, etcd and mTLS sessions: bench/control-plane.ts.)
 */
import type { Task, TaskStatus } from '../src/cluster/types.js';
import type { AgentLink } from '../src/agent/link.js';
import { Worker } from '../src/agent/worker/worker.js';
import { SimulatedExecutor } from '../src/agent/executor/simulated.js';
import { taskStateRank } from '../src/cluster/types.js';
import { createLogger } from '../src/util/log.js';
import { MemoryStore } from '../test/helpers/memory-store.js';
import { replicatedServiceLoops } from '../test/helpers/replicated-loops.js';
import { makeNode, makeService, until } from '../test/helpers/swarm-fixtures.js';

const REPLICAS = Number(process.argv[2] ?? 10_000);
const NODES = Number(process.argv[3] ?? 1_000);
const log = createLogger('bench', 'silent');
const store = new MemoryStore();

// The dispatcher's part, reduced: assignments per node on task changes, statuses batched every 100 ms.
const queue = new Map<string, TaskStatus>();
setInterval(() => {
  if (!queue.size) return;
  const changes = [];
  for (const [id, s] of queue) {
    const t = store.get('tasks', id);
    if (t && taskStateRank(s.State) >= taskStateRank(t.Status.State))
      changes.push({ kind: 'tasks' as const, op: 'update' as const, object: { ...t, Status: s } });
  }
  queue.clear();
  void store.commit(changes).catch(() => undefined);
}, 100).unref();
const links = new Map<string, (tasks: Task[]) => void>();
let pushTimer: NodeJS.Timeout | undefined;
store.watch(() => {
  pushTimer ??= setTimeout(() => {
    pushTimer = undefined;
    const byNode = new Map<string, Task[]>();
    for (const t of store.list('tasks')) {
      if (!t.NodeID || taskStateRank(t.Status.State) < taskStateRank('assigned')) continue;
      if (
        taskStateRank(t.DesiredState) > taskStateRank('running') &&
        taskStateRank(t.Status.State) > taskStateRank('running')
      )
        continue;
      let l = byNode.get(t.NodeID);
      if (!l) byNode.set(t.NodeID, (l = []));
      l.push(t);
    }
    for (const [id, fn] of links) fn(byNode.get(id) ?? []);
  }, 100);
});

await store.commit(
  Array.from({ length: NODES }, (_, i) => ({
    kind: 'nodes' as const,
    op: 'create' as const,
    object: makeNode(`node${i}`),
  })),
);
for (let i = 0; i < NODES; i++) {
  const link: AgentLink = {
    onAssignments: (fn) => links.set(`node${i}`, fn),
    reportStatus: async (u) => {
      for (const x of u) queue.set(x.taskId, x.status);
    },
  };
  new Worker(link, new SimulatedExecutor(), () => `node${i}`, log).start();
}
const loops = Object.values(replicatedServiceLoops(store, log));
for (const l of loops) l.run();

const running = () =>
  store.list('tasks').filter((t) => t.Status.State === 'running' && t.DesiredState === 'running').length;
const s = makeService('bench', { Mode: { Replicated: { Replicas: REPLICAS } } });
let t0 = Date.now();
await store.commit([{ kind: 'services', op: 'create', object: s }]);
await until(`${REPLICAS} running`, () => running() === REPLICAS, 600_000);
const up = Date.now() - t0;
const cur = store.get('services', s.ID)!;
t0 = Date.now();
await store.commit([
  {
    kind: 'services',
    op: 'update',
    object: { ...cur, Spec: { ...cur.Spec, Mode: { Replicated: { Replicas: REPLICAS / 2 } } } },
  },
]);
await until('half removed', () => store.list('tasks').length === REPLICAS / 2, 600_000);
const down = Date.now() - t0;
console.log(
  `control plane: ${REPLICAS} replicas on ${NODES} simulated nodes: all RUNNING in ${(up / 1000).toFixed(1)} s; scale to ${REPLICAS / 2} (tasks shut down and reaped) in ${(down / 1000).toFixed(1)} s`,
);
for (const l of loops) await l.stop();
process.exit(0);
