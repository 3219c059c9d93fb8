import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Task } from '../../src/cluster/types.js';
import { ApiServer } from '../../src/api/server.js';
import { serviceRoutes } from '../../src/api/routes/services.js';
import { taskRoutes } from '../../src/api/routes/tasks.js';
import { ReplicatedOrchestrator } from '../../src/manager/orchestrator/replicated.js';
import { GlobalOrchestrator } from '../../src/manager/orchestrator/global.js';
import { TaskReaper } from '../../src/manager/orchestrator/reaper.js';
import { JobsOrchestrator } from '../../src/manager/orchestrator/jobs.js';
import { Allocator } from '../../src/manager/allocator/allocator.js';
import { Scheduler } from '../../src/manager/scheduler/scheduler.js';
import { status, withStatus } from '../../src/cluster/task-state.js';
import { createLogger } from '../../src/util/log.js';
import { MemoryStore } from '../helpers/memory-store.js';
import { cliRouter, dockerAt } from '../helpers/cli-api.js';
import { apiJson } from '../helpers/engine-api.js';
import { makeNode, until } from '../helpers/swarm-fixtures.js';

/**
 * The services and tasks API driven by the real docker CLI, against the leader loops on an
 * in-memory store (etcd and the agents are other stages; test/cluster/services.test.ts runs
 * the whole thing). A stand-in agent moves assigned tasks to RUNNING, as the dispatcher
 * would report it. Needs the docker CLI, not root.
 */

const log = createLogger('test', 'silent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-svc-'));
const socket = path.join(dir, 'api.sock');
const store = new MemoryStore();
const loops = [
  new Allocator(store, log),
  new Scheduler(store, log),
  new ReplicatedOrchestrator(store, log),
  new GlobalOrchestrator(store, log),
  new JobsOrchestrator(store, log),
  new TaskReaper(store, log),
];
let server: ApiServer;
let stopAgent = () => {};

const docker = (...args: string[]) => dockerAt(socket, args);
const fetchApi = (method: string, p: string, body?: unknown) => apiJson<{ message?: string }>(socket, method, p, body);

before(async () => {
  const router = cliRouter();
  // Test-only: the nodes list belongs to the swarm stage; the CLI's progress and `service ps` read it.
  router.get('/nodes', () => ({ body: store.list('nodes') }));
  router.get('/nodes/:id', (ctx) => ({ body: store.get('nodes', ctx.params.id) }));
  serviceRoutes(router, () => store);
  taskRoutes(router, () => store);
  server = new ApiServer(router, log);
  await server.listen(`unix://${socket}`);
  await store.commit(
    ['n1', 'n2', 'n3'].map((id) => ({
      kind: 'nodes' as const,
      op: 'create' as const,
      object: makeNode(id, { hostname: `host-${id}` }),
    })),
  );
  for (const l of loops) l.run();
  // Stand-in agent: ASSIGNED → RUNNING (or FAILED for the image called "broken"); desired shutdown → SHUTDOWN.
  stopAgent = store.watch(() => {
    const changes: { kind: 'tasks'; op: 'update'; object: Task }[] = [];
    for (const t of store.list('tasks')) {
      let next: Task | undefined;
      if (t.Status.State === 'assigned' && t.DesiredState === 'complete') {
        next = withStatus(
          t,
          status('complete', 'finished', { ContainerStatus: { ContainerID: 'd'.repeat(64), PID: 43, ExitCode: 0 } }),
        );
      } else if (t.Status.State === 'assigned' && t.DesiredState === 'running') {
        next = t.Spec.ContainerSpec?.Image?.startsWith('broken')
          ? withStatus(t, status('rejected', 'preparing', { Err: 'No such image: broken' }))
          : withStatus(t, status('running', 'started', { ContainerStatus: { ContainerID: 'c'.repeat(64), PID: 42 } }));
      } else if (['shutdown', 'remove'].includes(t.DesiredState) && ['assigned', 'running'].includes(t.Status.State)) {
        next = withStatus(t, status('shutdown', 'shutdown'));
      }
      if (next) changes.push({ kind: 'tasks' as const, op: 'update' as const, object: next });
    }
    if (changes.length) setImmediate(() => void store.commit(changes).catch(() => undefined));
  });
});

after(async () => {
  stopAgent();
  for (const l of loops) await l.stop();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('service create --detach=false shows progress and converges; ls shows REPLICAS running/desired', async () => {
  const r = await docker('service', 'create', '--name', 'web', '--replicas', '3', '--detach=false', 'busybox', 'top');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^[a-z0-9]{25}$/m, 'prints the service ID');
  assert.match(r.stderr + r.stdout, /overall progress: 3 out of 3 tasks/);
  assert.match(r.stderr + r.stdout, /Service .* converged/);
  const ls = await docker('service', 'ls', '--format', '{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}');
  assert.equal(ls.stdout.trim(), 'web replicated 3/3 busybox:latest');
});

test('service ps names tasks <service>.<slot> and shows nodes and states', async () => {
  const r = await docker('service', 'ps', 'web', '--format', '{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}}');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').sort();
  assert.equal(lines.length, 3);
  lines.forEach((l, i) => assert.match(l, new RegExp(`^web\\.${i + 1} host-n\\d Running Running`)));
  const nodes = new Set(lines.map((l) => l.split(' ')[1]));
  assert.equal(nodes.size, 3, 'spread over the three nodes');
});

test('inspect by name, ID prefix; docker inspect of a task shows its container', async () => {
  const id = (await docker('service', 'inspect', 'web', '--format', '{{.ID}}')).stdout.trim();
  assert.equal(id.length, 25);
  assert.equal((await docker('service', 'inspect', id.slice(0, 6), '--format', '{{.Spec.Name}}')).stdout.trim(), 'web');
  const pretty = await docker('service', 'inspect', '--pretty', 'web');
  assert.match(pretty.stdout, /Replicated/);
  assert.match(pretty.stdout, /Replicas:\s+3/);
  const taskId = (await docker('service', 'ps', '-q', '--no-trunc', 'web')).stdout.trim().split('\n')[0];
  const t = await docker(
    'inspect',
    '--type',
    'task',
    taskId,
    '--format',
    '{{.Status.ContainerStatus.ContainerID}} {{.Status.ContainerStatus.PID}}',
  );
  assert.equal(t.stdout.trim(), `${'c'.repeat(64)} 42`);
  const missing = await docker('service', 'inspect', 'nope');
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no such service: nope/i);
});

test('scale up and down; removed slots leave, history kept for the others', async () => {
  let r = await docker('service', 'scale', 'web=5', '--detach');
  assert.equal(r.code, 0, r.stderr);
  await until('5 running', () => store.list('tasks').filter((t) => t.Status.State === 'running').length === 5);
  r = await docker('service', 'scale', 'web=2', '--detach');
  assert.equal(r.code, 0, r.stderr);
  await until('2 tasks', () => store.list('tasks').length === 2, 10000);
  const ls = await docker('service', 'ls', '--format', '{{.Replicas}}', '--filter', 'name=web');
  assert.equal(ls.stdout.trim(), '2/2');
});

test('service update --image replaces tasks; --force too; stale version is refused', async () => {
  const before = new Set(store.list('tasks').map((t) => t.ID));
  let r = await docker('service', 'update', '--image', 'nginx', '--detach=false', 'web');
  assert.equal(r.code, 0, r.stderr);
  const running = store.list('tasks').filter((t) => t.Status.State === 'running');
  assert.equal(running.length, 2);
  assert.ok(running.every((t) => t.Spec.ContainerSpec!.Image === 'nginx:latest' && !before.has(t.ID)));
  const ps = await docker('service', 'ps', 'web', '--format', '{{.Name}} {{.Image}} {{.DesiredState}}');
  assert.match(ps.stdout, /^web\.1 nginx:latest Running\nweb\.1 busybox:latest Shutdown$/m);
  r = await docker('service', 'update', '--force', '--detach', 'web');
  assert.equal(r.code, 0, r.stderr);
  const svc = store.list('services').find((s) => s.Spec.Name === 'web')!;
  const res = await fetchApi('POST', `/v1.41/services/${svc.ID}/update?version=1`, svc.Spec);
  assert.equal(res.status, 500);
  assert.equal(res.body.message, 'rpc error: code = Unknown desc = update out of sequence');
});

test('global services: one task per node', async () => {
  const r = await docker('service', 'create', '--name', 'mon', '--mode', 'global', '--detach=false', 'busybox', 'top');
  assert.equal(r.code, 0, r.stderr);
  const ls = await docker('service', 'ls', '--filter', 'mode=global', '--format', '{{.Name}} {{.Mode}} {{.Replicas}}');
  assert.equal(ls.stdout.trim(), 'mon global 3/3');
  const ps = await docker('service', 'ps', 'mon', '--format', '{{.Name}}');
  for (const l of ps.stdout.trim().split('\n')) assert.match(l, /^mon\.n[123]$/);
});

test("constraints that nothing meets leave tasks pending with Docker's reason", async () => {
  const r = await docker(
    'service',
    'create',
    '--name',
    'picky',
    '--constraint',
    'node.labels.disk==ssd',
    '--detach',
    'busybox',
    'top',
  );
  assert.equal(r.code, 0, r.stderr);
  await until('explained', () => store.list('tasks').some((t) => t.Status.Err?.startsWith('no suitable node')));
  const ps = await docker('service', 'ps', 'picky', '--no-trunc', '--format', '{{.CurrentState}}|{{.Error}}');
  assert.match(ps.stdout, /^Pending .*\|"no suitable node \(scheduling constraints not satisfied on 3 nodes\)"$/m);
});

test("bad input: Docker's errors, nothing created", async () => {
  const count = store.list('services').length;
  let r = await docker('service', 'create', '--name', 'bad', '--constraint', 'node.role=manager', 'busybox');
  assert.match(r.stderr, /rpc error: code = InvalidArgument desc = constraint expected one operator from ==, !=/);
  r = await docker('service', 'create', '--name', 'web', '--detach', 'busybox');
  assert.match(
    r.stderr,
    /rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web already exists/,
  );
  r = await docker('service', 'create', '--name', 'p1', '--detach', '-p', '8080:80', 'busybox');
  assert.equal(r.code, 0, r.stderr);
  r = await docker('service', 'create', '--name', 'p2', '--detach', '-p', '8080:80', 'busybox');
  assert.match(r.stderr, /port '8080' is already in use by service 'p1' \(\w+\) as an ingress port/);
  r = await docker('service', 'update', '--mode', 'global', 'web');
  assert.notEqual(r.code, 0);
  r = await docker('service', 'create', '--name', 'bad_name!', '--detach', 'busybox');
  assert.match(r.stderr, /name must be valid as a DNS name component/);
  const res = await fetchApi('POST', '/v1.41/services/create', {
    Name: 'neg',
    TaskTemplate: { ContainerSpec: { Image: 'busybox' } },
    Mode: { Replicated: { Replicas: -1 } },
  });
  assert.equal(res.status, 400);
  // Replicas is a *uint64 in Docker's types: dockerd's JSON decoder refuses -1 before swarmkit sees it.
  assert.equal(
    res.body.message,
    'json: cannot unmarshal number -1 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64',
  );
  assert.equal(store.list('services').length, count + 1, 'only p1 was created');
  const f = await fetchApi('GET', '/v1.41/tasks?filters=' + encodeURIComponent('{"colour":["red"]}'));
  assert.equal(f.status, 400);
  assert.equal(f.body.message, "invalid filter 'colour'");
});

test('a rejected task (image cannot be pulled) shows its error and is retried', async () => {
  const r = await docker('service', 'create', '--name', 'broken', '--restart-delay', '0s', '--detach', 'broken');
  assert.equal(r.code, 0, r.stderr);
  await until(
    'two attempts',
    () =>
      store
        .list('tasks')
        .filter((t) => t.Spec.ContainerSpec?.Image?.startsWith('broken') && t.Status.State === 'rejected').length >= 2,
  );
  const ps = await docker('service', 'ps', 'broken', '--no-trunc', '--format', '{{.Error}}');
  assert.match(ps.stdout, /No such image: broken/);
});

test('a failing update pauses (the CLI says so); service rollback restores the previous spec', async () => {
  let r = await docker('service', 'create', '--name', 'upd', '--replicas', '2', '--detach=false', 'busybox', 'top');
  assert.equal(r.code, 0, r.stderr);
  r = await docker('service', 'update', '--image', 'broken', '--restart-delay', '0s', '--detach=false', 'upd');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /service update paused: update paused due to failure or early termination of task [a-z0-9]{25}/,
  );
  assert.equal(
    (await docker('service', 'inspect', 'upd', '--format', '{{.UpdateStatus.State}}')).stdout.trim(),
    'paused',
  );
  r = await docker('service', 'rollback', '--detach=false', 'upd');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    (
      await docker(
        'service',
        'inspect',
        'upd',
        '--format',
        '{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}',
      )
    ).stdout.trim(),
    'busybox:latest rollback_completed',
  );
  await until(
    '2 running busybox',
    () =>
      store
        .list('tasks')
        .filter(
          (t) =>
            t.Status.State === 'running' &&
            t.Spec.ContainerSpec?.Image === 'busybox:latest' &&
            store.get('services', t.ServiceID)?.Spec.Name === 'upd',
        ).length === 2,
  );
  assert.equal((await docker('service', 'rm', 'upd')).code, 0);
});

test('replicated job: runs to completion; service ls shows completions; update runs it again', async () => {
  let r = await docker(
    'service',
    'create',
    '--name',
    'batch',
    '--mode',
    'replicated-job',
    '--replicas',
    '2',
    '--max-concurrent',
    '1',
    '--detach=false',
    'busybox',
    'true',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /job complete/);
  const ls = await docker('service', 'ls', '--filter', 'name=batch', '--format', '{{.Mode}} {{.Replicas}}');
  assert.equal(ls.stdout.trim(), 'replicated job 0/1 (2/2 completed)');
  r = await docker('service', 'update', '--force', '--detach=false', 'batch');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    (await docker('service', 'inspect', 'batch', '--format', '{{.JobStatus.JobIteration.Index}}')).stdout.trim(),
    '1',
  );
  const done = store
    .list('tasks')
    .filter((t) => t.Status.State === 'complete' && store.get('services', t.ServiceID)?.Spec.Name === 'batch');
  assert.equal(done.length, 4);
  assert.equal((await docker('service', 'rm', 'batch')).code, 0);
});

test('service rm removes the service and, once stopped, its tasks', async () => {
  for (const name of ['web', 'mon', 'picky', 'p1', 'broken']) {
    const r = await docker('service', 'rm', name);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), name);
  }
  await until('no tasks', () => store.list('tasks').length === 0, 10000);
  assert.equal((await docker('service', 'ls', '-q')).stdout.trim(), '');
});
