import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service, Task } from '../../../../src/cluster/types.js';
import { schedule, Scheduler, type FailureLog } from '../../../../src/manager/scheduler/scheduler.js';
import { createLogger } from '../../../../src/util/log.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode, makeService, makeTask, until } from '../../../helpers/swarm-fixtures.js';

const log = createLogger('test', 'silent');
const svcMap = (...s: Service[]) => new Map(s.map((x) => [x.ID, x]));
const countBy = (ts: Task[]) =>
  ts
    .filter((t) => t.Status.State === 'assigned')
    .reduce((m, t) => m.set(t.NodeID!, (m.get(t.NodeID!) ?? 0) + 1), new Map<string, number>());

test("tasks spread evenly over ready nodes and get Docker's message", () => {
  const s = makeService('web');
  const nodes = [makeNode('n1'), makeNode('n2'), makeNode('n3')];
  const tasks = Array.from({ length: 7 }, (_, i) => makeTask(s, { Slot: i + 1 }));
  const out = schedule(nodes, tasks, svcMap(s));
  assert.equal(out.length, 7);
  for (const t of out) {
    assert.equal(t.Status.State, 'assigned');
    assert.equal(t.Status.Message, 'scheduler assigned task to node');
  }
  assert.deepEqual([...countBy(out).values()].sort(), [2, 2, 3]);
});

test('existing tasks of the service count: new ones go where there are fewer', () => {
  const s = makeService('web');
  const nodes = [makeNode('n1'), makeNode('n2')];
  const running = [1, 2].map((i) =>
    makeTask(s, { Slot: i, NodeID: 'n1', Status: { State: 'running', Message: 'started', Timestamp: '' } }),
  );
  const out = schedule(nodes, [...running, makeTask(s, { Slot: 3 })], svcMap(s));
  assert.equal(out.length, 1);
  assert.equal(out[0].NodeID, 'n2');
});

test('ties go to the node with fewer tasks overall', () => {
  const other = makeService('other');
  const s = makeService('web');
  const nodes = [makeNode('n1'), makeNode('n2')];
  const busy = makeTask(other, { NodeID: 'n1', Status: { State: 'running', Message: '', Timestamp: '' } });
  const out = schedule(nodes, [busy, makeTask(s, { Slot: 1 })], svcMap(s, other));
  assert.equal(out[0].NodeID, 'n2');
});

test('no suitable node: failures explained, most frequent first', () => {
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.labels.zone==east'] } },
  });
  const nodes = [
    makeNode('n1', { state: 'down' }),
    makeNode('n2'),
    makeNode('n3'),
    makeNode('n4', { availability: 'drain' }),
    makeNode('n5', { availability: 'pause' }),
  ];
  const [t] = schedule(nodes, [makeTask(s, { Slot: 1 })], svcMap(s));
  assert.equal(t.Status.State, 'pending');
  assert.equal(
    t.Status.Err,
    'no suitable node (3 nodes not available for new tasks; scheduling constraints not satisfied on 2 nodes)',
  );
  assert.equal(t.NodeID, undefined);
});

test('no nodes at all: plain "no suitable node"; an unchanged reason is not rewritten', () => {
  const s = makeService('web');
  const [t] = schedule([], [makeTask(s, { Slot: 1 })], svcMap(s));
  assert.equal(t.Status.Err, 'no suitable node');
  assert.deepEqual(schedule([], [t], svcMap(s)), []);
});

test('resource reservations fill nodes up, then tasks wait', () => {
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Resources: { Reservations: { NanoCPUs: 1e9 } } },
  });
  const nodes = [makeNode('n1', { cpu: 2e9 }), makeNode('n2', { cpu: 1e9 })];
  const out = schedule(
    nodes,
    Array.from({ length: 5 }, (_, i) => makeTask(s, { Slot: i + 1 })),
    svcMap(s),
  );
  assert.deepEqual(Object.fromEntries(countBy(out)), { n1: 2, n2: 1 });
  const pending = out.filter((t) => t.Status.State === 'pending');
  assert.equal(pending.length, 2);
  assert.equal(pending[0].Status.Err, 'no suitable node (insufficient resources on 2 nodes)');
});

test('memory reservations count too', () => {
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Resources: { Reservations: { MemoryBytes: 3 * 2 ** 30 } } },
  });
  const [t] = schedule([makeNode('n1', { mem: 2 ** 31 })], [makeTask(s, { Slot: 1 })], svcMap(s));
  assert.equal(t.Status.Err, 'no suitable node (insufficient resources on 1 node)');
});

test('max replicas per node', () => {
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { MaxReplicas: 1 } },
  });
  const nodes = [makeNode('n1'), makeNode('n2'), makeNode('n3')];
  const out = schedule(
    nodes,
    Array.from({ length: 5 }, (_, i) => makeTask(s, { Slot: i + 1 })),
    svcMap(s),
  );
  assert.deepEqual([...countBy(out).values()], [1, 1, 1]);
  const pending = out.filter((t) => t.Status.State === 'pending');
  assert.equal(pending.length, 2);
  assert.equal(pending[0].Status.Err, 'no suitable node (max replicas per node limit exceed)');
});

test('host-mode published ports: one task per node', () => {
  const s = makeService('web', {
    EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080, PublishMode: 'host', Protocol: 'tcp' }] },
  });
  const nodes = [makeNode('n1'), makeNode('n2')];
  const out = schedule(
    nodes,
    Array.from({ length: 3 }, (_, i) => makeTask(s, { Slot: i + 1 })),
    svcMap(s),
  );
  assert.deepEqual([...countBy(out).values()], [1, 1]);
  assert.equal(
    out.find((t) => t.Status.State === 'pending')!.Status.Err,
    'no suitable node (host-mode port already in use on 2 nodes)',
  );
});

test('platform filter, with x86_64/amd64 equivalence', () => {
  const s = makeService('web', {
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox' },
      Placement: { Platforms: [{ OS: 'linux', Architecture: 'amd64' }] },
    },
  });
  const nodes = [makeNode('arm', { arch: 'aarch64' }), makeNode('x86', { arch: 'x86_64' })];
  const out = schedule(
    nodes,
    [1, 2].map((i) => makeTask(s, { Slot: i })),
    svcMap(s),
  );
  assert.deepEqual(Object.fromEntries(countBy(out)), { x86: 2 });
  const s2 = makeService('w2', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Platforms: [{ OS: 'windows' }] } },
  });
  const [t] = schedule(nodes, [makeTask(s2, { Slot: 1 })], svcMap(s2));
  assert.equal(t.Status.Err, 'no suitable node (unsupported platform on 2 nodes)');
});

test('placement preferences spread over label values first', () => {
  const s = makeService('web', {
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox' },
      Placement: { Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }] },
    },
  });
  const nodes = [
    makeNode('a1', { labels: { zone: 'a' } }),
    makeNode('b1', { labels: { zone: 'b' } }),
    makeNode('b2', { labels: { zone: 'b' } }),
    makeNode('b3', { labels: { zone: 'b' } }),
    makeNode('x'),
  ];
  const out = schedule(
    nodes,
    Array.from({ length: 6 }, (_, i) => makeTask(s, { Slot: i + 1 })),
    svcMap(s),
  );
  const c = countBy(out);
  // Three groups (a, b, and nodes without the label): two tasks each.
  assert.equal(c.get('a1'), 2);
  assert.equal(c.get('x'), 2);
  assert.equal((c.get('b1') ?? 0) + (c.get('b2') ?? 0) + (c.get('b3') ?? 0), 2);
});

test('a full branch hands its share to the others', () => {
  const s = makeService('web', {
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox' },
      Placement: { MaxReplicas: 1, Preferences: [{ Spread: { SpreadDescriptor: 'engine.labels.dc' } }] },
    },
  });
  const nodes = [
    makeNode('a1', { engineLabels: { dc: 'a' } }),
    makeNode('b1', { engineLabels: { dc: 'b' } }),
    makeNode('b2', { engineLabels: { dc: 'b' } }),
    makeNode('b3', { engineLabels: { dc: 'b' } }),
  ];
  const out = schedule(
    nodes,
    Array.from({ length: 4 }, (_, i) => makeTask(s, { Slot: i + 1 })),
    svcMap(s),
  );
  assert.equal(out.filter((t) => t.Status.State === 'assigned').length, 4);
});

test('nodes where the service keeps failing go last', () => {
  const s = makeService('web');
  const failures: FailureLog = new Map([['n1', new Map([[s.ID, [1, 2, 3, 4, 5].map(() => Date.now())]])]]);
  const out = schedule([makeNode('n1'), makeNode('n2')], [makeTask(s, { Slot: 1 })], svcMap(s), failures);
  assert.equal(out[0].NodeID, 'n2');
});

test('preassigned (global) tasks are only checked against their node', () => {
  const s = makeService('mon', { Mode: { Global: {} } });
  const ok = makeTask(s, { NodeID: 'n1' });
  const bad = makeTask(s, { NodeID: 'n2' });
  const out = schedule([makeNode('n1'), makeNode('n2', { state: 'down' })], [ok, bad], svcMap(s));
  const a = out.find((t) => t.ID === ok.ID)!;
  assert.equal(a.Status.State, 'assigned');
  assert.equal(a.Status.Message, 'scheduler confirmed task can run on preassigned node');
  const b = out.find((t) => t.ID === bad.ID)!;
  assert.equal(b.Status.State, 'pending');
  assert.equal(b.NodeID, 'n2');
  assert.equal(b.Status.Err, 'no suitable node (1 node not available for new tasks)');
});

test('tasks not desired to run, or of deleted services, are left alone', () => {
  const s = makeService('web');
  const gone = makeService('gone');
  const out = schedule([makeNode('n1')], [makeTask(s, { DesiredState: 'remove' }), makeTask(gone)], svcMap(s));
  assert.deepEqual(out, []);
});

test('scheduler loop: batched decisions, pending until a node fits', async () => {
  const store = new MemoryStore();
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.labels.role==db'] } },
  });
  await store.commit([
    { kind: 'services', op: 'create', object: s },
    { kind: 'nodes', op: 'create', object: makeNode('n1') },
  ]);
  await store.commit(
    Array.from({ length: 50 }, (_, i) => ({
      kind: 'tasks' as const,
      op: 'create' as const,
      object: makeTask(s, { Slot: i + 1 }),
    })),
  );
  const sched = new Scheduler(store, log);
  sched.run();
  try {
    await until('tasks to be explained', () =>
      store
        .list('tasks')
        .every((t) => t.Status.Err === 'no suitable node (scheduling constraints not satisfied on 1 node)'),
    );
    const before = store.commits;
    await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('n2', { labels: { role: 'db' } }) }]);
    await until('tasks to be assigned', () =>
      store.list('tasks').every((t) => t.Status.State === 'assigned' && t.NodeID === 'n2'),
    );
    await sched.idle();
    assert.ok(store.commits - before <= 3, `50 decisions in few commits (${store.commits - before})`);
  } finally {
    await sched.stop();
  }
});

test('a deposed leader writes nothing', async () => {
  const store = new MemoryStore();
  const s = makeService('web');
  await store.commit([
    { kind: 'services', op: 'create', object: s },
    { kind: 'nodes', op: 'create', object: makeNode('n1') },
    { kind: 'tasks', op: 'create', object: makeTask(s, { Slot: 1 }) },
  ]);
  store.leader = false;
  const sched = new Scheduler(store, log);
  sched.run();
  await new Promise((r) => setTimeout(r, 100));
  await sched.idle();
  await sched.stop();
  assert.equal(store.list('tasks')[0].Status.State, 'pending');
});
