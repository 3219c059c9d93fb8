import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task, TaskStatus } from '../../../../src/cluster/types.js';
import type { TaskContainer, TaskExecutor } from '../../../../src/agent/executor/executor.js';
import { taskContainerConfig } from '../../../../src/agent/executor/executor.js';
import { mergeHealthcheck } from '../../../../src/engine/containers/health.js';
import { applyChanges } from '../../../../src/engine/images/changes.js';
import { Worker } from '../../../../src/agent/worker/worker.js';
import { newTask } from '../../../../src/manager/orchestrator/task.js';
import { status } from '../../../../src/cluster/task-state.js';
import { createLogger } from '../../../../src/util/log.js';
import { makeService, until } from '../../../helpers/swarm-fixtures.js';
import { FakeLink } from '../../../helpers/fake-link.js';

const log = createLogger('test', 'silent');

/** Containers in memory whose health the test sets, as the engine's probes would. */
class HealthExecutor implements TaskExecutor {
  readonly containers = new Map<string, TaskContainer>();
  private readonly exits = new Map<string, Set<() => void>>();
  private readonly healths = new Map<string, Set<() => void>>();
  /** Health status a started container begins with (undefined: no health check). */
  initialHealth?: TaskContainer['health'];
  stops = 0;
  /** The container's process ends at once with this code (a crash on start). */
  exitOnStart?: number;
  private n = 0;

  list() {
    return [...this.containers.values()].map((c) => ({ ...c }));
  }
  find(taskId: string) {
    const c = [...this.containers.values()].find((x) => x.taskId === taskId);
    return c && { ...c };
  }
  async prepare(task: Task) {
    const c: TaskContainer = { containerId: `c${++this.n}`, taskId: task.ID, running: false };
    this.containers.set(c.containerId, c);
    return { ...c };
  }
  async start(id: string) {
    const c = this.containers.get(id)!;
    Object.assign(c, { running: true, pid: 100, health: this.initialHealth });
    if (this.exitOnStart !== undefined)
      Object.assign(c, { running: false, exitCode: this.exitOnStart, health: undefined });
    return { ...c };
  }
  async stop(id: string) {
    this.stops++;
    const c = this.containers.get(id);
    if (c?.running) this.exit(id, 143);
  }
  async remove(id: string) {
    this.containers.delete(id);
    this.fire(this.exits, id);
  }
  onExit(id: string, fn: () => void) {
    return this.on(this.exits, id, fn);
  }
  onHealth(id: string, fn: () => void) {
    return this.on(this.healths, id, fn);
  }
  setHealth(taskId: string, h: TaskContainer['health']) {
    const c = [...this.containers.values()].find((x) => x.taskId === taskId)!;
    c.health = h;
    this.fire(this.healths, c.containerId);
  }
  exit(id: string, code: number) {
    const c = this.containers.get(id)!;
    Object.assign(c, { running: false, exitCode: code, health: undefined });
    this.fire(this.exits, id);
  }
  private on(m: Map<string, Set<() => void>>, id: string, fn: () => void) {
    let s = m.get(id);
    if (!s) m.set(id, (s = new Set()));
    s.add(fn);
    return () => void s!.delete(fn);
  }
  private fire(m: Map<string, Set<() => void>>, id: string) {
    for (const fn of m.get(id) ?? []) fn();
  }
}

function setup(initialHealth: TaskContainer['health'], exitOnStart?: number) {
  const exec = new HealthExecutor();
  exec.initialHealth = initialHealth;
  exec.exitOnStart = exitOnStart;
  const link = new FakeLink();
  new Worker(link, exec, () => 'node1', log).start();
  const t: Task = {
    ...newTask(makeService('web'), 1),
    NodeID: 'node1',
    Status: status('assigned', 'scheduler assigned task to node'),
  };
  link.fn([t]);
  return { exec, link, t };
}

const settle = () => new Promise((r) => setTimeout(r, 30));

test('a task with a health check stays STARTING until healthy, then RUNNING', async () => {
  const { exec, link, t } = setup('starting');
  await until('starting', () => link.last(t.ID)?.State === 'starting');
  await settle();
  assert.equal(link.last(t.ID)!.State, 'starting');
  exec.setHealth(t.ID, 'healthy');
  await until('running', () => link.last(t.ID)?.State === 'running');
  // STARTING lasted (unhealthy until now) so it was reported; the states before it may have been passed at once.
  const states = link.states(t.ID);
  assert.deepEqual(states.slice(-2), ['starting', 'running']);
  assert.equal(link.last(t.ID)!.ContainerStatus!.ContainerID, 'c1');
});

test('without a health check the task runs at once', async () => {
  const { link, t } = setup(undefined);
  await until('running', () => link.last(t.ID)?.State === 'running');
});

test('without a health check a container that dies at once still went RUNNING first, as in moby: it FAILS, not REJECTED', async () => {
  const { link, t } = setup(undefined, 1);
  await until('failed', () => link.last(t.ID)?.State === 'failed');
  // RUNNING may be passed before the next report leaves (the reporter sends a task's latest state).
  assert.ok(!link.states(t.ID).includes('rejected'));
  assert.equal(link.last(t.ID)!.Err, 'task: non-zero exit (1)');
});

test('unhealthy while STARTING: the container is stopped and the task FAILS with the cause', async () => {
  const { exec, link, t } = setup('starting');
  await until('starting', () => link.last(t.ID)?.State === 'starting');
  exec.setHealth(t.ID, 'unhealthy');
  await until('failed', () => link.last(t.ID)?.State === 'failed');
  assert.equal(link.last(t.ID)!.Err, 'task: non-zero exit (143): dockerexec: unhealthy container');
  assert.equal(link.last(t.ID)!.ContainerStatus!.ExitCode, 143);
  assert.equal(exec.stops, 1);
  assert.ok(!link.states(t.ID).includes('running'), 'never reported running');
});

test('unhealthy while RUNNING: stopped, FAILED with the cause', async () => {
  const { exec, link, t } = setup('starting');
  await until('starting', () => link.last(t.ID)?.State === 'starting');
  exec.setHealth(t.ID, 'healthy');
  await until('running', () => link.last(t.ID)?.State === 'running');
  exec.setHealth(t.ID, 'unhealthy');
  await until('failed', () => link.last(t.ID)?.State === 'failed');
  assert.equal(link.last(t.ID)!.Err, 'task: non-zero exit (143): dockerexec: unhealthy container');
});

test('a container that exits before it is healthy fails the task with its exit code only', async () => {
  const { exec, link, t } = setup('starting');
  await until('starting', () => link.last(t.ID)?.State === 'starting');
  exec.exit(exec.find(t.ID)!.containerId, 2);
  await until('failed', () => link.last(t.ID)?.State === 'failed');
  assert.equal(link.last(t.ID)!.Err, 'task: non-zero exit (2)');
});

test('ContainerSpec.Healthcheck becomes the container Config.Healthcheck', () => {
  const t = newTask(makeService('web'), 1);
  const hc = { Test: ['CMD-SHELL', 'test -f /ok'], Interval: 1e9, Timeout: 2e9, Retries: 2, StartPeriod: 0 };
  t.Spec.ContainerSpec = { Image: 'busybox', Healthcheck: hc };
  assert.deepEqual(taskContainerConfig(t, 'node1').config.Healthcheck, hc);
  t.Spec.ContainerSpec = { Image: 'busybox' };
  assert.equal(taskContainerConfig(t, 'node1').config.Healthcheck, undefined);
});

test("the image's HEALTHCHECK applies unless the container sets its own; NONE turns it off", () => {
  const image = { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 4 };
  assert.deepEqual(mergeHealthcheck(undefined, image), image);
  assert.deepEqual(mergeHealthcheck({ Test: ['NONE'] }, image)!.Test, ['NONE']);
  const merged = mergeHealthcheck({ Interval: 1e9 }, image)!;
  assert.deepEqual([merged.Test, merged.Interval, merged.Retries], [['CMD-SHELL', 'true'], 1e9, 4]);
  assert.equal(mergeHealthcheck(undefined, undefined), undefined);
});

test('HEALTHCHECK as an import/commit change: flags in ns, shell and exec forms, NONE', () => {
  assert.deepEqual(
    applyChanges({}, ['HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=4 CMD test -f /ok'])
      .Healthcheck,
    { Interval: 90e9, Timeout: 5e8, StartPeriod: 2e9, Retries: 4, Test: ['CMD-SHELL', 'test -f /ok'] },
  );
  assert.deepEqual(applyChanges({}, ['HEALTHCHECK CMD ["true"]']).Healthcheck, { Test: ['CMD', 'true'] });
  assert.deepEqual(applyChanges({}, ['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] });
  assert.throws(() => applyChanges({}, ['HEALTHCHECK --interval=soon CMD true']), /invalid duration/);
});
