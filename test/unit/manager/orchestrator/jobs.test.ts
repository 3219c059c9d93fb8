import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service, Task, TaskState } from '../../../../src/cluster/types.js';
import { PassChanges } from '../../../../src/manager/orchestrator/changes.js';
import { reconcileGlobalJob, reconcileReplicatedJob } from '../../../../src/manager/orchestrator/jobs.js';
import { RestartSupervisor } from '../../../../src/manager/orchestrator/restart.js';
import { makeNode, makeService, makeTask } from '../../../helpers/swarm-fixtures.js';

const st = (State: TaskState) => ({ State, Message: '', Timestamp: new Date().toISOString() });
function job(maxConcurrent: number, total: number, iteration = 0, extra: Partial<Service['Spec']> = {}): Service {
  return {
    ...makeService('batch', {
      Mode: { ReplicatedJob: { MaxConcurrent: maxConcurrent, TotalCompletions: total } },
      ...extra,
    }),
    JobStatus: { JobIteration: { Index: iteration } },
  };
}
const jt = (s: Service, over: Partial<Task>) =>
  makeTask(s, { JobIteration: { Index: s.JobStatus!.JobIteration.Index }, DesiredState: 'complete', ...over });

test('replicated job: at most MaxConcurrent at once, TotalCompletions in all, slots from 0', () => {
  const s = job(2, 5);
  const p = new PassChanges();
  reconcileReplicatedJob(p, s, [], new Map(), new RestartSupervisor());
  assert.deepEqual(
    p.createdTasks().map((t) => [t.Slot, t.DesiredState, t.JobIteration!.Index]),
    [
      [0, 'complete', 0],
      [1, 'complete', 0],
    ],
  );
  // Three done, one running: one more may start (5 - 3 - 1 = 1).
  const tasks = [
    jt(s, { Slot: 0, Status: st('complete') }),
    jt(s, { Slot: 1, Status: st('complete') }),
    jt(s, { Slot: 2, Status: st('complete') }),
    jt(s, { Slot: 3, Status: st('running') }),
  ];
  const p2 = new PassChanges();
  reconcileReplicatedJob(p2, s, tasks, new Map(), new RestartSupervisor());
  assert.deepEqual(
    p2.createdTasks().map((t) => t.Slot),
    [4],
  );
  // All five done: nothing.
  const p3 = new PassChanges();
  reconcileReplicatedJob(
    p3,
    s,
    [0, 1, 2, 3, 4].map((i) => jt(s, { Slot: i, Status: st('complete') })),
    new Map(),
    new RestartSupervisor(),
  );
  assert.equal(p3.size, 0);
});

test('replicated job: a failed task is restarted in its slot; with restart condition none it is given up', () => {
  const s = job(1, 1, 0, { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Delay: 0 } } });
  const failed = jt(s, { Slot: 0, Status: st('failed') });
  const p = new PassChanges();
  reconcileReplicatedJob(p, s, [failed], new Map(), new RestartSupervisor());
  assert.equal(p.current(failed).DesiredState, 'shutdown');
  assert.deepEqual(
    p.createdTasks().map((t) => [t.Slot, t.DesiredState]),
    // Delay 0, the failed one ended: nothing to wait for, so the new iteration runs at once.
    [[0, 'complete']],
  );
  const none = job(1, 1, 0, {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Condition: 'none' } },
  });
  const f2 = jt(none, { Slot: 0, Status: st('failed') });
  const p2 = new PassChanges();
  reconcileReplicatedJob(p2, none, [f2], new Map(), new RestartSupervisor());
  assert.equal(p2.createdTasks().length, 0);
  const p3 = new PassChanges();
  reconcileReplicatedJob(p3, none, [p2.current(f2)], new Map(), new RestartSupervisor());
  assert.equal(p3.createdTasks().length, 0, 'stays given up');
});

test('a new iteration removes tasks of the old one that still run, and starts over', () => {
  const s = job(1, 1, 1);
  const old = makeTask(s, { JobIteration: { Index: 0 }, DesiredState: 'complete', Slot: 0, Status: st('running') });
  const p = new PassChanges();
  reconcileReplicatedJob(p, s, [old], new Map(), new RestartSupervisor());
  assert.equal(p.current(old).DesiredState, 'remove');
  assert.deepEqual(
    p.createdTasks().map((t) => t.JobIteration!.Index),
    [1],
  );
});

test('global job: one task per eligible node per iteration', () => {
  const s: Service = { ...makeService('g', { Mode: { GlobalJob: {} } }), JobStatus: { JobIteration: { Index: 0 } } };
  const nodes = [makeNode('n1'), makeNode('n2'), makeNode('n3', { availability: 'drain' })];
  const done = jt(s, { NodeID: 'n1', Status: st('complete') });
  const p = new PassChanges();
  reconcileGlobalJob(p, s, [done], nodes, new RestartSupervisor());
  assert.deepEqual(
    p.createdTasks().map((t) => [t.NodeID, t.DesiredState]),
    [['n2', 'complete']],
  );
});
