import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, Service, Task, TaskState } from '../../../../src/cluster/types.js';
import { PassChanges } from '../../../../src/manager/orchestrator/changes.js';
import { reconcileReplicated, ReplicatedOrchestrator } from '../../../../src/manager/orchestrator/replicated.js';
import { reconcileGlobal, GlobalOrchestrator } from '../../../../src/manager/orchestrator/global.js';
import { RestartSupervisor } from '../../../../src/manager/orchestrator/restart.js';
import { tasksToReap, TaskReaper } from '../../../../src/manager/orchestrator/reaper.js';
import { withDesired, withStatus } from '../../../../src/cluster/task-state.js';
import { rollingUpdate, UpdateTracker } from '../../../../src/manager/orchestrator/update.js';
import { createLogger } from '../../../../src/util/log.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode, makeService, makeTask, until } from '../../../helpers/swarm-fixtures.js';

const log = createLogger('test', 'silent');
const st = (State: TaskState, Message = '') => ({ State, Message, Timestamp: new Date().toISOString() });
const nodeMap = (...n: Node[]) => new Map(n.map((x) => [x.ID, x]));
function replicated(replicas: number, extra: Partial<Service['Spec']> = {}) {
  return makeService('web', { Mode: { Replicated: { Replicas: replicas } }, ...extra });
}
function run(s: Service, tasks: Task[], nodes: Map<string, Node> = new Map(), r = new RestartSupervisor()) {
  const pass = new PassChanges();
  reconcileReplicated(pass, s, tasks, nodes, r);
  return { pass, created: pass.createdTasks(), changes: pass.toChanges() };
}

/** One rolling update of `service`, pass by pass, with the same tracker and restart supervisor throughout. */
function updateRun(service: Service) {
  const tracker = new UpdateTracker();
  const restarts = new RestartSupervisor();
  return (slots: Task[][], allTasks: Task[], now = Date.now()) => {
    const pass = new PassChanges();
    const wake = rollingUpdate(pass, service, slots, restarts, new Map(), now, tracker, allTasks);
    return { pass, wake };
  };
}

/** The service object a pass writes. */
const writtenService = (changes: ReturnType<PassChanges['toChanges']>) =>
  (changes.find((c) => c.kind === 'services') as { object: Service }).object;

test('task state machine: observed state only moves forward; desired only rises', () => {
  const s = makeService('web');
  const t = makeTask(s, { Status: st('running') });
  assert.equal(withStatus(t, st('starting')), undefined);
  assert.equal(withStatus(t, st('failed'))!.Status.State, 'failed');
  assert.equal(withDesired(t, 'ready'), undefined);
  assert.equal(withDesired(t, 'shutdown')!.DesiredState, 'shutdown');
  assert.equal(withDesired({ ...t, DesiredState: 'remove' }, 'shutdown'), undefined);
});

test('scale up fills the lowest free slots: NEW tasks for the allocator, PENDING when it has nothing to give', () => {
  const networked = replicated(4, {
    TaskTemplate: { ContainerSpec: { Image: 'nginx' }, Networks: [{ Target: 'net1' }] },
  });
  const published = replicated(4, { EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } });
  for (const s of [networked, published]) {
    const existing = [makeTask(s, { Slot: 2, Status: st('running') })];
    const { created } = run(s, existing);
    assert.deepEqual(created.map((t) => t.Slot).sort(), [1, 3, 4]);
    for (const t of created) {
      assert.equal(t.Status.State, 'new');
      assert.equal(t.Status.Message, 'created');
      assert.equal(t.DesiredState, 'running');
      assert.equal(t.ServiceID, s.ID);
      assert.deepEqual(t.SpecVersion, s.SpecVersion);
    }
  }
  // No network, no port: the allocator would move it on at once, so it starts where that leaves it.
  const plain = replicated(2);
  for (const t of run(plain, []).created) {
    assert.equal(t.Status.State, 'pending');
    assert.equal(t.Status.Message, 'pending task scheduling');
  }
});

test('scale down removes slots on the busiest node, non-running first', () => {
  const s = replicated(3);
  const tasks = [
    makeTask(s, { Slot: 1, NodeID: 'n1', Status: st('running') }),
    makeTask(s, { Slot: 2, NodeID: 'n1', Status: st('running') }),
    makeTask(s, { Slot: 3, NodeID: 'n1', Status: st('starting') }),
    makeTask(s, { Slot: 4, NodeID: 'n2', Status: st('running') }),
    makeTask(s, { Slot: 5, NodeID: 'n3', Status: st('running') }),
  ];
  const { changes, created } = run(s, tasks, nodeMap(makeNode('n1'), makeNode('n2'), makeNode('n3')));
  assert.equal(created.length, 0);
  const removed = changes.flatMap((c) => (c.op === 'update' ? [c.object as Task] : []));
  assert.deepEqual(removed.map((t) => t.Slot).sort(), [2, 3]);
  for (const t of removed) assert.equal(t.DesiredState, 'remove');
});

test('an ended task is shut down and replaced in its slot after the restart delay', () => {
  const s = replicated(1, { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Delay: 0 } } });
  const failed = makeTask(s, { Slot: 1, NodeID: 'n1', Status: st('failed') });
  const r = new RestartSupervisor();
  const { pass, created } = run(s, [failed], nodeMap(makeNode('n1')), r);
  assert.equal(pass.current(failed).DesiredState, 'shutdown');
  assert.equal(created.length, 1);
  assert.equal(created[0].Slot, 1);
  // Delay 0 and the old task already ended: nothing to wait for, it is created RUNNING.
  assert.equal(created[0].DesiredState, 'running');
});

test('tasks of a Down node: with delay 0 the replacements are created RUNNING, else READY until the delay', () => {
  for (const [delay, desired] of [
    [0, 'running'],
    [5e9, 'ready'],
  ] as const) {
    const s = replicated(2, {
      TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Delay: delay } },
    });
    const tasks = [1, 2].map((i) => makeTask(s, { Slot: i, NodeID: 'lost', Status: st('running') }));
    const lost = { ...makeNode('lost'), Status: { State: 'down' as const } };
    const { pass, created } = run(s, tasks, nodeMap(lost, makeNode('n2')));
    for (const t of tasks) assert.equal(pass.current(t).DesiredState, 'shutdown');
    assert.deepEqual(created.map((t) => t.Slot).sort(), [1, 2]);
    for (const t of created) assert.equal(t.DesiredState, desired, `delay ${delay}`);
  }
});

test('restart delay holds the replacement in READY', () => {
  const s = replicated(1, { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Delay: 10e9 } } });
  const r = new RestartSupervisor();
  const failed = makeTask(s, { Slot: 1, Status: st('failed') });
  const { created } = run(s, [failed], new Map(), r);
  const p2 = new PassChanges();
  const byId = new Map(created.map((t) => [t.ID, t]));
  const next = r.startDue(p2, created, byId, new Map());
  assert.equal(p2.size, 0);
  assert.ok(next! > Date.now() + 9000);
  const p3 = new PassChanges();
  r.startDue(p3, created, byId, new Map(), Date.now() + 10_001);
  assert.equal(p3.current(created[0]).DesiredState, 'running');
});

test('restart conditions: none and on-failure', () => {
  const none = replicated(1, {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Condition: 'none' } },
  });
  const done = makeTask(none, { Slot: 1, Status: st('complete') });
  const a = run(none, [done]);
  assert.equal(a.created.length, 0);
  assert.equal(a.pass.current(done).DesiredState, 'shutdown');
  // The slot stays ended: the next pass does not refill it either.
  assert.equal(run(none, [a.pass.current(done)]).created.length, 0);

  const onFailure = replicated(1, {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Condition: 'on-failure' } },
  });
  assert.equal(run(onFailure, [makeTask(onFailure, { Slot: 1, Status: st('complete') })]).created.length, 0);
  assert.equal(
    run(onFailure, [makeTask(onFailure, { Slot: 1, Status: st('failed') })]).created.filter((t) => t.Slot === 1).length,
    1,
  );
});

test('max attempts, and a window that forgets old restarts', () => {
  const s = replicated(1, {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { MaxAttempts: 2, Window: 60e9 } },
  });
  const r = new RestartSupervisor();
  let t = makeTask(s, { Slot: 1, Status: st('failed') });
  const now = Date.now();
  let made = 0;
  for (let i = 0; i < 4; i++) {
    const pass = new PassChanges();
    const n = r.restart(pass, s, t, undefined, now + i);
    if (!n) break;
    made++;
    t = { ...n, Status: st('failed'), DesiredState: 'running' };
  }
  assert.equal(made, 2);
  assert.ok(!r.shouldRestart(t, s, now + 10));
  assert.ok(r.shouldRestart(t, s, now + 61_000), 'restarts older than the window no longer count');
});

test('tasks on a node that went DOWN or drained are replaced', () => {
  const s = replicated(2);
  const a = makeTask(s, { Slot: 1, NodeID: 'down', Status: st('running') });
  const b = makeTask(s, { Slot: 2, NodeID: 'drained', Status: st('running') });
  const nodes = nodeMap(makeNode('down', { state: 'down' }), makeNode('drained', { availability: 'drain' }));
  const { pass, created } = run(s, [a, b], nodes);
  assert.equal(pass.current(a).DesiredState, 'shutdown');
  assert.equal(pass.current(b).DesiredState, 'shutdown');
  assert.deepEqual(created.map((t) => t.Slot).sort(), [1, 2]);
  assert.ok(created.every((t) => !t.NodeID));
});

test('a spec change replaces slots one at a time (parallelism 1), stop-first', () => {
  const s0 = replicated(3);
  const tasks = [1, 2, 3].map((i) => makeTask(s0, { Slot: i, NodeID: 'n1', Status: st('running') }));
  const s1: Service = {
    ...s0,
    Spec: { ...s0.Spec, TaskTemplate: { ContainerSpec: { Image: 'nginx' } } },
    SpecVersion: { Index: 2 },
  };
  const { pass, created } = run(s1, tasks, nodeMap(makeNode('n1')));
  assert.ok(created.length > 0);
  assert.equal(created.length, 1);
  assert.equal(created[0].Spec.ContainerSpec!.Image, 'nginx');
  assert.equal(created[0].DesiredState, 'ready');
  assert.equal(tasks.filter((t) => pass.current(t).DesiredState === 'shutdown').length, 1);
  const svc = pass.toChanges().find((c) => c.kind === 'services' && c.op === 'update') as
    { object: Service } | undefined;
  assert.equal((svc!.object as Service).UpdateStatus!.State, 'updating');
});

test('parallelism 0 updates every slot at once; completion is recorded', () => {
  const s0 = replicated(3);
  const tasks = [1, 2, 3].map((i) => makeTask(s0, { Slot: i, Status: st('running') }));
  const s1: Service = {
    ...s0,
    Spec: { ...s0.Spec, UpdateConfig: { Parallelism: 0 }, TaskTemplate: { ContainerSpec: { Image: 'nginx' } } },
    SpecVersion: { Index: 2 },
  };
  assert.equal(run(s1, tasks).created.length, 3);
  const fresh = [1, 2, 3].map((i) => makeTask(s1, { Slot: i, Status: st('running') }));
  const { changes } = run({ ...s1, UpdateStatus: { State: 'updating' } }, fresh);
  assert.equal(writtenService(changes).UpdateStatus!.State, 'completed');
});

test('scaling does not touch tasks (replicas are outside the task spec)', () => {
  const s = replicated(2);
  const tasks = [1, 2].map((i) => makeTask(s, { Slot: i, Status: st('running') }));
  const s2: Service = { ...s, Spec: { ...s.Spec, Mode: { Replicated: { Replicas: 3 } } }, SpecVersion: { Index: 2 } };
  const { changes, created } = run(s2, tasks);
  assert.equal(created.length, 1);
  assert.equal(changes.filter((c) => c.op === 'update').length, 0);
});

test('global: one task per eligible node, following drain, down and constraints', () => {
  const s = makeService('mon', {
    Mode: { Global: {} },
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.role==worker'] } },
  });
  const nodes = [
    makeNode('w1'),
    makeNode('w2', { availability: 'drain' }),
    makeNode('w3', { state: 'down' }),
    makeNode('m1', { role: 'manager' }),
    makeNode('w4', { availability: 'pause' }),
  ];
  const onDrained = makeTask(s, { NodeID: 'w2', Status: st('running') });
  const pass = new PassChanges();
  reconcileGlobal(pass, s, [onDrained], nodes, new RestartSupervisor());
  assert.deepEqual(
    pass.createdTasks().map((t) => t.NodeID),
    ['w1'],
  );
  assert.equal(pass.createdTasks()[0].Slot, undefined);
  assert.equal(pass.current(onDrained).DesiredState, 'shutdown');
  // Stable: a second pass with the task present creates nothing.
  const p2 = new PassChanges();
  reconcileGlobal(p2, s, [...pass.createdTasks(), pass.current(onDrained)], nodes, new RestartSupervisor());
  assert.equal(p2.size, 0);
});

test('global: tasks of nodes that left are shut down; failed ones restart on their node', () => {
  const s = makeService('mon', { Mode: { Global: {} } });
  const gone = makeTask(s, { NodeID: 'gone', Status: st('running') });
  const failed = makeTask(s, { NodeID: 'n1', Status: st('failed') });
  const pass = new PassChanges();
  reconcileGlobal(pass, s, [gone, failed], [makeNode('n1')], new RestartSupervisor());
  assert.equal(pass.current(gone).DesiredState, 'shutdown');
  assert.equal(pass.current(failed).DesiredState, 'shutdown');
  assert.deepEqual(
    pass.createdTasks().map((t) => [t.NodeID, t.DesiredState]),
    [['n1', 'ready']],
  );
});

test('reaper: history limit per slot, REMOVE tasks, deleted services', () => {
  const s = replicated(1);
  const old = Array.from({ length: 7 }, (_, i) =>
    makeTask(s, {
      Slot: 1,
      DesiredState: 'shutdown',
      Status: { State: 'failed', Message: '', Timestamp: new Date(1000 + i).toISOString() },
    }),
  );
  const live = makeTask(s, { Slot: 1, Status: st('running') });
  const removed = makeTask(s, { Slot: 2, DesiredState: 'remove', Status: st('shutdown') });
  const removing = makeTask(s, { Slot: 3, DesiredState: 'remove', Status: st('running') });
  const orphan = makeTask(makeService('gone'), { Status: st('complete') });
  const ids = new Set(tasksToReap([...old, live, removed, removing, orphan], new Map([[s.ID, s]]), 5));
  // 8 tasks in slot 1, keep 5: the three oldest go.
  assert.deepEqual(
    old.filter((t) => ids.has(t.ID)).map((t) => t.Status.Timestamp),
    old.slice(0, 3).map((t) => t.Status.Timestamp),
  );
  assert.ok(!ids.has(live.ID));
  assert.ok(ids.has(removed.ID));
  assert.ok(!ids.has(removing.ID), 'a REMOVE task still running stays until it stopped');
  assert.ok(ids.has(orphan.ID));
  assert.equal(tasksToReap([...old, live], new Map([[s.ID, s]]), -1).length, 0, 'negative keeps everything');
  assert.equal(tasksToReap([...old, live], new Map([[s.ID, s]]), 0).length, 7);
});

test('replicated orchestrator + reaper loops: create, scale, delete through the store', async () => {
  const store = new MemoryStore();
  const orch = new ReplicatedOrchestrator(store, log);
  const reaper = new TaskReaper(store, log);
  orch.run();
  reaper.run();
  try {
    const s = replicated(3);
    await store.commit([{ kind: 'services', op: 'create', object: s }]);
    await until('3 tasks', () => store.list('tasks').length === 3);
    assert.deepEqual(
      store
        .list('tasks')
        .map((t) => t.Slot)
        .sort(),
      [1, 2, 3],
    );
    const cur = store.get('services', s.ID)!;
    await store.commit([
      {
        kind: 'services',
        op: 'update',
        object: { ...cur, Spec: { ...cur.Spec, Mode: { Replicated: { Replicas: 1 } } } },
      },
    ]);
    await until(
      '2 removed',
      () =>
        store.list('tasks').filter((t) => t.DesiredState === 'remove').length === 0 && store.list('tasks').length === 1,
    );
    // NEW tasks that never got a node are deleted right away; the one left is slot 1.
    assert.equal(store.list('tasks')[0].Slot, 1);
    await store.commit([{ kind: 'services', op: 'delete', id: s.ID }]);
    await until('tasks gone', () => store.list('tasks').length === 0);
  } finally {
    await orch.stop();
    await reaper.stop();
  }
});

test('global orchestrator loop follows a node joining', async () => {
  const store = new MemoryStore();
  const orch = new GlobalOrchestrator(store, log);
  orch.run();
  try {
    const s = makeService('mon', { Mode: { Global: {} } });
    await store.commit([
      { kind: 'services', op: 'create', object: s },
      { kind: 'nodes', op: 'create', object: makeNode('n1') },
    ]);
    await until('1 task', () => store.list('tasks').length === 1);
    await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('n2') }]);
    await until('2 tasks', () => store.list('tasks').length === 2);
    assert.deepEqual(
      store
        .list('tasks')
        .map((t) => t.NodeID)
        .sort(),
      ['n1', 'n2'],
    );
  } finally {
    await orch.stop();
  }
});

test('a constraint change leaves tasks whose node still meets it; others move', () => {
  const s0 = replicated(2);
  const onSsd = makeTask(s0, { Slot: 1, NodeID: 'ssd', Status: st('running') });
  const onHdd = makeTask(s0, { Slot: 2, NodeID: 'hdd', Status: st('running') });
  const s1: Service = {
    ...s0,
    Spec: {
      ...s0.Spec,
      UpdateConfig: { Parallelism: 0 },
      TaskTemplate: { ...s0.Spec.TaskTemplate, Placement: { Constraints: ['node.labels.disk==ssd'] } },
    },
    SpecVersion: { Index: 2 },
  };
  const nodes = nodeMap(makeNode('ssd', { labels: { disk: 'ssd' } }), makeNode('hdd', { labels: { disk: 'hdd' } }));
  const { pass, created } = run(s1, [onSsd, onHdd], nodes);
  assert.deepEqual(
    created.map((t) => t.Slot),
    [2],
  );
  assert.equal(pass.current(onSsd).DesiredState, 'running');
  assert.equal(pass.current(onHdd).DesiredState, 'shutdown');
});

function updating(s0: Service, image: string, cfg: Service['Spec']['UpdateConfig']): Service {
  return {
    ...s0,
    Spec: { ...s0.Spec, UpdateConfig: cfg, TaskTemplate: { ContainerSpec: { Image: image } } },
    PreviousSpec: s0.Spec,
    SpecVersion: { Index: 2 },
    UpdateStatus: { State: 'updating' },
  };
}

test("update failure: pause with Docker's message", () => {
  const s0 = replicated(2);
  const old = [1, 2].map((i) => makeTask(s0, { Slot: i, Status: st('running') }));
  const update = updateRun(updating(s0, 'bad', { Parallelism: 1 }));
  const { pass: p1 } = update(
    old.map((t) => [t]),
    old,
  );
  const [made] = p1.createdTasks();
  const failed = { ...made, Status: st('rejected') };
  const { pass: p2 } = update([[p1.current(old[0])], [old[1]]], [...old, failed]);
  const svc = writtenService(p2.toChanges());
  assert.equal(svc.UpdateStatus!.State, 'paused');
  assert.equal(svc.UpdateStatus!.Message, `update paused due to failure or early termination of task ${made.ID}`);
  assert.equal(p2.createdTasks().length, 0, 'no further slots once paused');
});

test('update failure with failure-action rollback restores the previous spec', () => {
  const s0 = replicated(1);
  const old = makeTask(s0, { Slot: 1, Status: st('running') });
  const update = updateRun(updating(s0, 'bad', { FailureAction: 'rollback' }));
  const { pass: p1 } = update([[old]], [old]);
  const made = p1.createdTasks()[0];
  const { pass: p2 } = update([[]], [p1.current(old), { ...made, Status: st('failed') }]);
  const svc = writtenService(p2.toChanges());
  assert.equal(svc.UpdateStatus!.State, 'rollback_started');
  assert.match(svc.UpdateStatus!.Message!, /^update rolled back due to failure or early termination of task /);
  assert.equal(svc.Spec.TaskTemplate.ContainerSpec!.Image, 'busybox');
});

test('start-first starts the new task before the old one stops', () => {
  const s0 = replicated(1);
  const old = makeTask(s0, { Slot: 1, Status: st('running') });
  const update = updateRun(updating(s0, 'nginx', { Order: 'start-first' }));
  const { pass: p1 } = update([[old]], [old]);
  const made = p1.createdTasks()[0];
  assert.equal(made.DesiredState, 'running');
  assert.equal(p1.current(old).DesiredState, 'running', 'old keeps running meanwhile');
  const up = { ...made, Status: st('running') };
  const { pass: p2 } = update([[old, up]], [old, up]);
  assert.equal(p2.current(old).DesiredState, 'shutdown');
});

test('update delay holds the next batch back', () => {
  const s0 = replicated(2);
  const old = [1, 2].map((i) => makeTask(s0, { Slot: i, Status: st('running') }));
  const update = updateRun(updating(s0, 'nginx', { Parallelism: 1, Delay: 10e9 }));
  const now = Date.now();
  const { pass: p1 } = update(
    old.map((t) => [t]),
    old,
    now,
  );
  const made = { ...p1.createdTasks()[0], Status: st('running'), DesiredState: 'running' as const };
  const { pass: p2, wake } = update([[made], [old[1]]], [made, old[1]], now + 100);
  assert.equal(p2.createdTasks().length, 0);
  assert.equal(wake, now + 100 + 10_000);
  const { pass: p3 } = update([[made], [old[1]]], [made, old[1]], now + 10_200);
  assert.equal(p3.createdTasks().length, 1);
});

test('a node that no longer meets the constraints loses its tasks to other nodes', () => {
  const s = replicated(1, {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.labels.disk==ssd'] } },
  });
  const t = makeTask(s, { Slot: 1, NodeID: 'n1', Status: st('running') });
  const ok = run(s, [t], nodeMap(makeNode('n1', { labels: { disk: 'ssd' } })));
  assert.equal(ok.pass.size, 0);
  const moved = run(s, [t], nodeMap(makeNode('n1', { labels: { disk: 'hdd' } })));
  assert.equal(moved.pass.current(t).DesiredState, 'shutdown');
  assert.deepEqual(
    moved.created.map((x) => [x.Slot, x.NodeID]),
    [[1, undefined]],
  );
});
