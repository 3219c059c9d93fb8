import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task, TaskStatus } from '../../../../src/cluster/types.js';
import type { TaskContainer, TaskExecutor } from '../../../../src/agent/executor/executor.js';
import { taskContainerConfig } from '../../../../src/agent/executor/executor.js';
import { Worker } from '../../../../src/agent/worker/worker.js';
import { newTask } from '../../../../src/manager/orchestrator/task.js';
import { status } from '../../../../src/cluster/task-state.js';
import { createLogger } from '../../../../src/util/log.js';
import { makeService, until } from '../../../helpers/swarm-fixtures.js';
import { FakeLink } from '../../../helpers/fake-link.js';

const log = createLogger('test', 'silent');

/** Containers in memory: the worker's logic without runc (the real executor is tested in the cluster tests). */
class FakeExecutor implements TaskExecutor {
  readonly containers = new Map<string, TaskContainer>();
  readonly listeners = new Map<string, Set<() => void>>();
  creates = 0;
  failPrepare?: string;
  /** While set, prepare waits for it (a slow pull). */
  prepareGate?: Promise<void>;
  private n = 0;

  list() {
    return [...this.containers.values()];
  }
  find(taskId: string) {
    return [...this.containers.values()].find((c) => c.taskId === taskId);
  }
  async prepare(task: Task) {
    await this.prepareGate;
    if (this.failPrepare) throw new Error(this.failPrepare);
    const existing = this.find(task.ID);
    if (existing) return existing;
    this.creates++;
    const c = { containerId: `c${++this.n}`, taskId: task.ID, running: false };
    this.containers.set(c.containerId, c);
    return c;
  }
  async start(id: string) {
    const c = this.containers.get(id)!;
    c.running = true;
    c.pid = 1000 + this.n;
    return { ...c };
  }
  async stop(id: string) {
    const c = this.containers.get(id);
    if (c?.running) this.exit(id, 143);
  }
  async remove(id: string) {
    this.containers.delete(id);
    this.fire(id);
  }
  onExit(id: string, fn: () => void) {
    let s = this.listeners.get(id);
    if (!s) this.listeners.set(id, (s = new Set()));
    s.add(fn);
    return () => s!.delete(fn);
  }
  exit(id: string, code: number) {
    const c = this.containers.get(id)!;
    c.running = false;
    c.exitCode = code;
    this.fire(id);
  }
  private fire(id: string) {
    for (const fn of this.listeners.get(id) ?? []) fn();
  }
}

function setup() {
  const exec = new FakeExecutor();
  const link = new FakeLink();
  const w = new Worker(link, exec, () => 'node1', log);
  w.start();
  return { exec, link, w };
}

function assigned(over: Partial<Task> = {}): Task {
  const t = newTask(makeService('web'), 1);
  return { ...t, NodeID: 'node1', Status: status('assigned', 'scheduler assigned task to node'), ...over };
}

test('container name and labels as Docker sets them', () => {
  const t = assigned();
  t.Spec.ContainerSpec = {
    Image: 'busybox',
    Command: ['sleep'],
    Args: ['60'],
    Env: ['A=1'],
    Labels: { mine: 'x' },
    StopGracePeriod: 5e9,
  };
  const c = taskContainerConfig(t, 'node1');
  assert.equal(c.name, `web.1.${t.ID}`);
  assert.deepEqual(c.config.Labels, {
    mine: 'x',
    'com.docker.swarm.node.id': 'node1',
    'com.docker.swarm.service.id': t.ServiceID,
    'com.docker.swarm.service.name': 'web',
    'com.docker.swarm.task': '',
    'com.docker.swarm.task.id': t.ID,
    'com.docker.swarm.task.name': `web.1.${t.ID}`,
  });
  assert.deepEqual([c.config.Entrypoint, c.config.Cmd, c.config.StopTimeout], [['sleep'], ['60'], 5]);
  assert.equal(c.hostConfig.Dns, undefined);
  const onNet = {
    ...t,
    NetworksAttachments: [
      {
        Network: { ID: 'n', Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'app' } },
        Addresses: ['10.0.1.3/24'],
      },
    ],
  };
  assert.deepEqual(taskContainerConfig(onNet, 'node1').hostConfig.Dns, ['172.18.0.1']);
  const g = assigned({ Slot: undefined, NodeID: 'node1' });
  assert.equal(taskContainerConfig(g, 'node1').name, `web.node1.${g.ID}`);
});

const CHAIN = ['accepted', 'preparing', 'ready', 'starting', 'running'];

/** Reported states move forward along the chain, each at most once (a state passed before the next report is not sent). */
function assertForward(states: string[], last: string): void {
  const at = states.map((x) => CHAIN.indexOf(x));
  assert.ok(
    at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1])),
    `not forward: ${states.join(',')}`,
  );
  assert.equal(states.at(-1), last);
}

test('a state the task stays in (a slow prepare) is reported while it lasts; passed states are not resent', async () => {
  const { exec, link } = setup();
  let release!: () => void;
  exec.prepareGate = new Promise<void>((r) => (release = r));
  const t = assigned();
  link.fn([t]);
  await until('preparing reported', () => link.last(t.ID)?.State === 'preparing');
  release();
  await until('running', () => link.last(t.ID)?.State === 'running');
  const states = link.states(t.ID);
  assertForward(states, 'running');
  assert.ok(states.includes('preparing'));
});

test('an assigned task is driven to RUNNING, reporting its latest state with the container', async () => {
  const { exec, link } = setup();
  const t = assigned();
  link.fn([t]);
  await until('running', () => link.last(t.ID)?.State === 'running');
  assertForward(link.states(t.ID), 'running');
  assert.equal(link.last(t.ID)!.Message, 'started');
  const running = link.last(t.ID)!;
  assert.equal(running.ContainerStatus!.ContainerID, 'c1');
  assert.ok(running.ContainerStatus!.PID! > 0);
  assert.equal(exec.creates, 1);
  assert.equal(running.PortStatus, undefined);
});

test('host-mode published ports are reported with the running status', async () => {
  const { link } = setup();
  const t = assigned({
    Endpoint: {
      Spec: {},
      Ports: [
        { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'host' },
        { Protocol: 'tcp', TargetPort: 81, PublishedPort: 30000, PublishMode: 'ingress' },
      ],
    },
  });
  link.fn([t]);
  await until('running', () => link.last(t.ID)?.State === 'running');
  assert.deepEqual(link.last(t.ID)!.PortStatus, {
    Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'host' }],
  });
});

test('desired READY waits prepared; RUNNING then starts it', async () => {
  const { link } = setup();
  const t = assigned({ DesiredState: 'ready' });
  link.fn([t]);
  await until('ready', () => link.last(t.ID)?.State === 'ready');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(link.last(t.ID)!.State, 'ready');
  link.fn([{ ...t, DesiredState: 'running' }]);
  await until('running', () => link.last(t.ID)?.State === 'running');
});

test('a failure before starting rejects the task with the error', async () => {
  const { exec, link } = setup();
  exec.failPrepare = 'No such image: nosuch:latest';
  const t = assigned();
  link.fn([t]);
  await until('rejected', () => link.last(t.ID)?.State === 'rejected');
  assert.equal(link.last(t.ID)!.Err, 'No such image: nosuch:latest');
});

test('container exits: non-zero → FAILED with the exit code, zero → COMPLETE', async () => {
  const { exec, link } = setup();
  const a = assigned();
  const b = assigned();
  link.fn([a, b]);
  await until('both running', () => link.last(a.ID)?.State === 'running' && link.last(b.ID)?.State === 'running');
  exec.exit(exec.find(a.ID)!.containerId, 137);
  exec.exit(exec.find(b.ID)!.containerId, 0);
  await until('ended', () => link.last(a.ID)?.State === 'failed' && link.last(b.ID)?.State === 'complete');
  assert.equal(link.last(a.ID)!.Err, 'task: non-zero exit (137)');
  assert.equal(link.last(a.ID)!.Message, 'started');
  assert.equal(link.last(a.ID)!.ContainerStatus!.ExitCode, 137);
  assert.equal(link.last(b.ID)!.Message, 'finished');
});

test('a removed container fails its task', async () => {
  const { exec, link } = setup();
  const t = assigned();
  link.fn([t]);
  await until('running', () => link.last(t.ID)?.State === 'running');
  await exec.remove(exec.find(t.ID)!.containerId);
  await until('failed', () => link.last(t.ID)?.State === 'failed');
  assert.match(link.last(t.ID)!.Err!, /No such container/);
});

test('desired SHUTDOWN stops the container; unassigned tasks lose their container', async () => {
  const { exec, link } = setup();
  const t = assigned();
  link.fn([t]);
  await until('running', () => link.last(t.ID)?.State === 'running');
  link.fn([{ ...t, DesiredState: 'shutdown' }]);
  await until('shutdown', () => link.last(t.ID)?.State === 'shutdown');
  assert.equal(exec.find(t.ID)!.running, false);
  link.fn([]);
  await until('container removed', () => exec.find(t.ID) === undefined);
});

test('increments after a complete set: new tasks start, changed ones follow, removed ones go', async () => {
  const { exec, link } = setup();
  const t1 = assigned();
  const t2 = assigned();
  link.fn([t1]);
  await until('t1 running', () => link.last(t1.ID)?.State === 'running');
  link.fn([t1, t2], undefined, { tasks: [t2], removes: [] });
  await until('t2 running', () => link.last(t2.ID)?.State === 'running');
  const down = { ...t1, DesiredState: 'shutdown' as const };
  link.fn([down, t2], undefined, { tasks: [down], removes: [] });
  await until('t1 shut down', () => link.last(t1.ID)?.State === 'shutdown');
  link.fn([t2], undefined, { tasks: [], removes: [t1.ID] });
  await until('t1 container removed', () => exec.find(t1.ID) === undefined);
  assert.equal(exec.find(t2.ID)?.running, true);
  assert.equal(exec.creates, 2);
});

test('reconnect: running containers are adopted, not duplicated; orphans are removed', async () => {
  const { exec, link, w } = setup();
  const t = assigned();
  link.fn([t]);
  await until('running', () => link.last(t.ID)?.State === 'running');
  w.stop();
  // Same node, new agent (daemon restart): the manager's copy says RUNNING.
  const orphan = { containerId: 'old', taskId: 'gone-task', running: true };
  exec.containers.set('old', orphan);
  const link2 = new FakeLink();
  const w2 = new Worker(link2, exec, () => 'node1', log);
  w2.start();
  link2.fn([{ ...t, Status: link.last(t.ID)! }]);
  await until('orphan removed', () => !exec.containers.has('old'));
  assert.equal(exec.creates, 1, 'no second container');
  assert.equal(exec.find(t.ID)!.running, true);
  // Still watched: an exit after the restart is reported.
  exec.exit(exec.find(t.ID)!.containerId, 2);
  await until('failed', () => link2.last(t.ID)?.State === 'failed');
  assert.equal(link2.last(t.ID)!.Err, 'task: non-zero exit (2)');
});

test('leaving the swarm removes the task containers', async () => {
  const exec = new FakeExecutor();
  const link = new FakeLink();
  let nodeId: string | undefined = 'node1';
  const w = new Worker(link, exec, () => nodeId, log);
  w.start(10);
  const t = assigned();
  link.fn([t]);
  await until('running', () => link.last(t.ID)?.State === 'running');
  nodeId = undefined;
  await until('containers removed', () => exec.list().length === 0);
  w.stop();
});

test('a daemon that starts outside a swarm leaves task containers alone until it knows', async () => {
  const exec = new FakeExecutor();
  exec.containers.set('kept', { containerId: 'kept', taskId: 't1', running: true });
  const w = new Worker(new FakeLink(), exec, () => undefined, log);
  w.start(10);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(exec.containers.has('kept'));
  w.stop();
});

test('a status the managers lost is reported again when their copy of the task comes back behind', async () => {
  const { link } = setup();
  const t = assigned();
  link.fn([t]);
  await until('running', () => link.last(t.ID)?.State === 'running');
  const sent = link.reports.length;
  // A new session's complete set: the managers still hold ASSIGNED (the RUNNING report never landed).
  link.fn([{ ...t }]);
  await until('running reported again', () => link.reports.length > sent);
  assert.equal(link.last(t.ID)!.State, 'running');
  // A copy that is up to date sends nothing.
  const again = link.reports.length;
  link.fn([{ ...t, Status: link.last(t.ID)! }]);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(link.reports.length, again);
});
