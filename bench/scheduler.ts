/**
 * Scheduler throughput: 100,000 pending tasks onto 1,000 nodes, in memory (the pure
 * `schedule` pass the leader's scheduler loop runs), with and without placement
 * constraints and spread preferences. Run: `npx tsc -p . && node dist/bench/scheduler.js [tasks] [nodes]`.
 */
import type { Service, Task } from '../src/cluster/types.js';
import { schedule } from '../src/manager/scheduler/scheduler.js';
import { makeNode, makeService, makeTask } from '../test/helpers/swarm-fixtures.js';

const TASKS = Number(process.argv[2] ?? 100_000);
const NODES = Number(process.argv[3] ?? 1_000);
const SERVICES = 100;

function scenario(name: string, spec: Partial<Service['Spec']>): void {
  const nodes = Array.from({ length: NODES }, (_, i) =>
    makeNode(`node${String(i).padStart(5, '0')}`, { labels: { zone: `z${i % 10}`, tier: i % 2 ? 'web' : 'db' } }),
  );
  const services = Array.from({ length: SERVICES }, (_, i) =>
    makeService(`svc${i}`, { Mode: { Replicated: { Replicas: TASKS / SERVICES } }, ...spec }),
  );
  const tasks: Task[] = [];
  for (const s of services)
    for (let slot = 1; slot <= TASKS / SERVICES; slot++) tasks.push(makeTask(s, { Slot: slot }));
  const t0 = process.hrtime.bigint();
  const out = schedule(nodes, tasks, new Map(services.map((s) => [s.ID, s])));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const assigned = out.filter((t) => t.Status.State === 'assigned');
  const perNode = new Map<string, number>();
  for (const t of assigned) perNode.set(t.NodeID!, (perNode.get(t.NodeID!) ?? 0) + 1);
  const counts = [...perNode.values()];
  console.log(
    `${name.padEnd(34)} ${assigned.length} tasks on ${perNode.size} nodes in ${ms.toFixed(0)} ms = ${Math.round(assigned.length / (ms / 1000))} tasks/s (per node min ${Math.min(...counts)} max ${Math.max(...counts)})`,
  );
}

console.log(`scheduler: ${TASKS} tasks of ${SERVICES} services onto ${NODES} nodes, one pass`);
scenario('plain spread', {});
scenario('constraint node.labels.tier==web', {
  TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.labels.tier==web'] } },
});
scenario('spread over node.labels.zone', {
  TaskTemplate: {
    ContainerSpec: { Image: 'busybox' },
    Placement: { Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }] },
  },
});
scenario('reservations 0.1 CPU', {
  TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Resources: { Reservations: { NanoCPUs: 1e8 } } },
});
