import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task, TaskState } from '../../../src/cluster/types.js';
import { TaskIndex, taskSlotKey } from '../../../src/manager/store/task-index.js';
import { allocate } from '../../../src/manager/allocator/allocator.js';
import { Scheduler } from '../../../src/manager/scheduler/scheduler.js';
import { ReplicatedOrchestrator } from '../../../src/manager/orchestrator/replicated.js';
import { TaskReaper } from '../../../src/manager/orchestrator/reaper.js';
import { createLogger } from '../../../src/util/log.js';
import { MemoryStore } from '../../helpers/memory-store.js';
import { makeNode, makeService, makeTask, until } from '../../helpers/swarm-fixtures.js';

const log = createLogger('test', 'silent');
const st = (State: TaskState) => ({ State, Message: '', Timestamp: new Date().toISOString() });

/** Moves tasks to `state` the way agents and loops do: one update each, through the store. */
async function moveTo(store: MemoryStore, ids: string[], state: TaskState, extra: Partial<Task> = {}) {
  await store.commit(
    ids.map((id) => {
      const t = store.get('tasks', id)!;
      return { kind: 'tasks' as const, op: 'update' as const, object: { ...t, ...extra, Status: st(state) } };
    }),
  );
}

test('task index: a task is found by service, node, state, desired state and slot, and moves with its updates', () => {
  const s = makeService('web');
  const ix = new TaskIndex();
  const t1 = makeTask(s, { Slot: 1, Status: st('pending') });
  const t2 = makeTask(s, { Slot: 2, Status: st('pending') });
  ix.put(undefined, t1);
  ix.put(undefined, t2);
  assert.deepEqual(
    ix
      .get('service', s.ID)
      .map((t) => t.ID)
      .sort(),
    [t1.ID, t2.ID].sort(),
  );
  assert.equal(ix.count('state', 'pending'), 2);
  assert.deepEqual(ix.get('node', 'n1'), []);
  const t1b = { ...t1, NodeID: 'n1', Status: st('assigned') };
  ix.put(t1, t1b);
  assert.deepEqual(
    ix.get('state', 'pending').map((t) => t.ID),
    [t2.ID],
  );
  assert.deepEqual(ix.get('state', 'assigned'), [t1b]);
  assert.deepEqual(ix.get('node', 'n1'), [t1b]);
  assert.deepEqual(ix.get('slot', `${s.ID}|s:1`), [t1b]);
  // Keys that did not change hold the new version in place of the old one.
  assert.ok(ix.get('service', s.ID).includes(t1b) && !ix.get('service', s.ID).includes(t1));
  assert.deepEqual(ix.get('node', 'n1'), [t1b]);
  assert.equal(taskSlotKey(makeTask(s, { NodeID: 'n7' })), `${s.ID}|n:n7`);
  ix.remove(t1b);
  assert.deepEqual(ix.get('node', 'n1'), []);
  assert.equal(ix.count('service', s.ID), 1);
  assert.equal(ix.count('state', 'pending'), 1);
});

test("store: tasksBy follows creates, updates and deletes, and returns the cache's frozen objects", async () => {
  const store = new MemoryStore();
  const s = makeService('web');
  const t = makeTask(s, { Slot: 1, Status: st('new') });
  await store.commit([{ kind: 'tasks', op: 'create', object: t }]);
  assert.deepEqual(
    store.tasksBy('state', 'new').map((x) => x.ID),
    [t.ID],
  );
  await moveTo(store, [t.ID], 'pending');
  assert.deepEqual(store.tasksBy('state', 'new'), []);
  const [p] = store.tasksBy('state', 'pending');
  assert.equal(p, store.viewOne('tasks', t.ID));
  assert.ok(Object.isFrozen(p));
  await store.commit([{ kind: 'tasks', op: 'delete', id: t.ID }]);
  assert.deepEqual(store.tasksBy('service', s.ID), []);
});

test('allocator: NEW tasks of a service without networks are allocated without walking every task', () => {
  const s = makeService('web');
  const fresh = makeTask(s, { Slot: 1, Status: st('new') });
  const r = allocate(
    undefined,
    [],
    [s],
    () => {
      throw new Error('walked every task');
    },
    [],
    [fresh],
  );
  assert.deepEqual(
    r.tasks.map((t) => [t.ID, t.Status.State]),
    [[fresh.ID, 'pending']],
  );
});

test('scheduler: later passes place new PENDING tasks from the kept node state, counting what is already placed', async () => {
  const store = new MemoryStore();
  const sched = new Scheduler(store, log);
  const s = makeService('web');
  await store.commit([
    { kind: 'services', op: 'create', object: s },
    { kind: 'nodes', op: 'create', object: makeNode('n1') },
    { kind: 'nodes', op: 'create', object: makeNode('n2') },
  ]);
  sched.run();
  try {
    const wave = async (slots: number[]) => {
      const ts = slots.map((slot) => makeTask(s, { Slot: slot, Status: st('pending') }));
      await store.commit(ts.map((t) => ({ kind: 'tasks' as const, op: 'create' as const, object: t })));
      await until('assigned', () => ts.every((t) => store.get('tasks', t.ID)!.Status.State === 'assigned'));
      await sched.idle();
    };
    await wave([1, 2]);
    await wave([3, 4]);
    const perNode = (n: string) => store.tasksBy('node', n).length;
    assert.deepEqual([perNode('n1'), perNode('n2')], [2, 2]);
    // One task on n1 ends: the next one goes there, still without rebuilding from every task.
    const onN1 = store.tasksBy('node', 'n1')[0];
    await moveTo(store, [onN1.ID], 'failed');
    await wave([5]);
    assert.equal(store.tasksBy('node', 'n1').filter((t) => t.Status.State === 'assigned').length, 2);
    assert.equal(sched.rebuilds, 1);
  } finally {
    await sched.stop();
  }
});

test('replicated orchestrator: a pass reconciles only the services whose tasks changed; progress to RUNNING costs no pass', async () => {
  const store = new MemoryStore();
  const orch = new ReplicatedOrchestrator(store, log);
  const a = makeService('a', { Mode: { Replicated: { Replicas: 3 } } });
  const b = makeService('b', { Mode: { Replicated: { Replicas: 3 } } });
  orch.run();
  try {
    await store.commit([
      { kind: 'nodes', op: 'create', object: makeNode('n1') },
      { kind: 'services', op: 'create', object: a },
      { kind: 'services', op: 'create', object: b },
    ]);
    await until('6 tasks', () => store.list('tasks').length === 6);
    await orch.idle();
    const passes = () => [orch.reconciled.get(a.ID) ?? 0, orch.reconciled.get(b.ID) ?? 0];
    const [a0, b0] = passes();
    // Every task allocated, scheduled and running: no slot changes, no pass.
    const ids = store.list('tasks').map((t) => t.ID);
    for (const state of ['pending', 'assigned', 'running'] as const) {
      await moveTo(store, ids, state, state === 'pending' ? {} : { NodeID: 'n1' });
      await orch.idle();
    }
    assert.deepEqual(passes(), [a0, b0]);
    // One of b's tasks fails: b alone is reconciled, and the slot gets a replacement.
    const failing = store.tasksBy('service', b.ID)[0];
    await moveTo(store, [failing.ID], 'failed');
    await until('replacement', () => store.tasksBy('service', b.ID).length === 4);
    await orch.idle();
    assert.equal(passes()[0], a0);
    assert.ok(passes()[1] > b0);
    assert.equal(store.tasksBy('service', a.ID).length, 3);
  } finally {
    await orch.stop();
  }
});

test('task reaper: a pass looks at the slots that changed, not at every task', async () => {
  const store = new MemoryStore();
  const s = makeService('web', { Mode: { Replicated: { Replicas: 50 } } });
  const tasks = Array.from({ length: 50 }, (_, i) => makeTask(s, { Slot: i + 1, NodeID: 'n1', Status: st('running') }));
  await store.commit([
    { kind: 'services', op: 'create', object: s },
    ...tasks.map((t) => ({ kind: 'tasks' as const, op: 'create' as const, object: t })),
  ]);
  const reaper = new TaskReaper(store, log);
  reaper.run();
  try {
    await reaper.idle();
    const first = reaper.examined;
    assert.equal(first, 50);
    // Slot 7 gets 6 more ended tasks: the oldest beyond the limit of 5 go; only slot 7 is read.
    const old = Array.from({ length: 6 }, (_, i) =>
      makeTask(s, {
        Slot: 7,
        NodeID: 'n1',
        DesiredState: 'shutdown',
        Status: { ...st('failed'), Timestamp: new Date(1000 * i).toISOString() },
      }),
    );
    await store.commit(old.map((t) => ({ kind: 'tasks' as const, op: 'create' as const, object: t })));
    await until('slot 7 trimmed', () => store.tasksBy('slot', `${s.ID}|s:7`).length === 5);
    await reaper.idle();
    assert.equal(reaper.examined - first, 7);
    assert.equal(store.list('tasks').length, 54);
  } finally {
    await reaper.stop();
  }
});
