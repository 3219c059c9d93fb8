import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { DOCKER } from '../helpers/daemon.js';
import { startProcess, stopProcess, waitFor as poll } from '../helpers/process.js';
import { busyboxRootfsTar } from '../helpers/busybox.js';
import { servicePsRows, taskRows } from '../helpers/service-cli.js';

// Needs root: a two-machine lab (namespaces, shoald, etcd, runc) driven by the real docker CLI.

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000) => poll(what, fn, ms, 500);

describe('service health checks and service logs -f on a two-machine swarm', () => {
  let swarm: SwarmLab;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  const ok = async (m: string, args: string[]) => {
    const r = await d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** `service ps` rows of a service: node, current state, error. */
  const ps = async (svc: string) => taskRows(await ok('m1', servicePsRows(svc)));

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2'], busybox: true });
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it('a task stays STARTING (replicas 0/1) until its health check passes, then RUNNING 1/1', async () => {
    // Failures within the start period do not count: the task waits, neither healthy nor failed.
    await ok('m1', [
      'service',
      'create',
      '--name',
      'waiter',
      '--detach',
      '--health-cmd',
      'test -f /tmp/ready',
      '--health-interval',
      '1s',
      '--health-start-period',
      '10m',
      'busybox',
      'sleep',
      '100000',
    ]);
    const task = await waitFor('a started container', async () => {
      const rows = await ps('waiter');
      return rows.length === 1 && rows[0].state.startsWith('Starting') && rows[0];
    });
    const cid = await waitFor('the container on its machine', async () =>
      (await d(task.node, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=waiter'])).stdout.trim(),
    );
    // A few probes fail meanwhile; the task is still STARTING and not counted as running.
    await waitFor(
      'failing probes',
      async () => Number(await ok(task.node, ['inspect', '--format', '{{len .State.Health.Log}}', cid])) >= 2,
    );
    assert.match((await ps('waiter'))[0].state, /^Starting/);
    assert.equal(await swarm.replicas('waiter'), '0/1');

    await ok(task.node, ['exec', cid, 'touch', '/tmp/ready']);
    await waitFor('running', async () => (await ps('waiter'))[0].state.startsWith('Running'));
    assert.equal(await swarm.replicas('waiter'), '1/1');
    assert.equal((await ps('waiter')).length, 1, 'the same task, not a replacement');
    await ok('m1', ['service', 'rm', 'waiter']);
  });

  it("an always-failing health check fails tasks with Docker's message, and they are replaced", async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'sick',
      '--detach',
      '--health-cmd',
      'false',
      '--health-interval',
      '1s',
      '--health-retries',
      '1',
      '--stop-grace-period',
      '1s',
      '--restart-delay',
      '1s',
      'busybox',
      'sleep',
      '100000',
    ]);
    const rows = await waitFor('a failed task and its replacement', async () => {
      const r = await ps('sick');
      return r.some((t) => t.state.startsWith('Failed')) && r.length >= 2 && r;
    });
    const failed = rows.find((t) => t.state.startsWith('Failed'))!;
    // busybox sleep as PID 1 ignores SIGTERM: the stop ends in SIGKILL. The CLI quotes errors.
    assert.equal(failed.error, '"task: non-zero exit (137): dockerexec: unhealthy container"');
    assert.equal(failed.desired, 'Shutdown');
    assert.ok(!rows.some((t) => t.state.startsWith('Running')), 'never counted as running');
    assert.equal(await swarm.replicas('sick'), '0/1');
    await ok('m1', ['service', 'rm', 'sick']);
  });

  it("an image's HEALTHCHECK holds its tasks STARTING too; --no-healthcheck turns it off", async () => {
    const tar = await busyboxRootfsTar(fs.mkdtempSync(path.join(swarm.lab.labDir, 'hc-')));
    for (const m of swarm.machines) {
      await swarm.lab.docker(
        m,
        [
          'import',
          '-c',
          'CMD ["sh"]',
          '-c',
          'HEALTHCHECK --interval=1s --start-period=10m CMD test -f /tmp/ready',
          '-',
          'bbhc:latest',
        ],
        { input: fs.readFileSync(tar) },
      );
    }
    await ok('m1', ['service', 'create', '--name', 'inherits', '--detach', 'bbhc:latest', 'sleep', '100000']);
    const task = await waitFor('a started container', async () => {
      const rows = await ps('inherits');
      return rows.length === 1 && rows[0].state.startsWith('Starting') && rows[0];
    });
    const cid = await waitFor('the container on its machine', async () =>
      (await d(task.node, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=inherits'])).stdout.trim(),
    );
    await waitFor(
      'failing probes',
      async () => Number(await ok(task.node, ['inspect', '--format', '{{len .State.Health.Log}}', cid])) >= 2,
    );
    assert.match((await ps('inherits'))[0].state, /^Starting/);
    assert.equal(await swarm.replicas('inherits'), '0/1');

    await ok('m1', [
      'service',
      'create',
      '--name',
      'plain',
      '--detach=false',
      '--no-healthcheck',
      'bbhc:latest',
      'sleep',
      '100000',
    ]);
    assert.equal(await swarm.replicas('plain'), '1/1');
    const spec = await ok('m1', [
      'service',
      'inspect',
      '--format',
      '{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}',
      'plain',
    ]);
    assert.deepEqual(JSON.parse(spec), { Test: ['NONE'] });
    await ok('m1', ['service', 'rm', 'inherits', 'plain']);
  });

  it('service logs -f started before a scale-up shows the lines of the new task, and of a replacement after rm -f', async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'talker',
      '--detach=false',
      'busybox',
      'sh',
      '-c',
      'echo hello-$(hostname); sleep 100000',
    ]);
    const out = path.join(swarm.lab.labDir, 'talker.out');
    const child = startProcess(DOCKER, ['service', 'logs', '-f', 'talker'], out, {
      ...swarm.lab.env,
      DOCKER_HOST: await swarm.lab.dockerHost('m1'),
    });
    try {
      const lines = () =>
        fs
          .readFileSync(out, 'utf8')
          .split('\n')
          .map((l) => /^(talker\.\d+)\.\S+@\S+\s+\| (hello-\S+)$/.exec(l))
          .filter((m) => m !== null);
      await waitFor('the first task greets', async () => lines().length === 1);
      await ok('m1', ['service', 'scale', '--detach', 'talker=2']);
      const seen = await waitFor('the new task greets too', async () => {
        const l = lines();
        return l.length === 2 && l;
      });
      assert.deepEqual(new Set(seen.map((m) => m[1])), new Set(['talker.1', 'talker.2']));
      assert.notEqual(seen[0][2], seen[1][2]);

      // The replacement of a removed container joins the stream too.
      const rows = (
        await ok('m1', [
          'service',
          'ps',
          'talker',
          '--no-trunc',
          '--filter',
          'desired-state=running',
          '--format',
          '{{.ID}}|{{.Name}}|{{.Node}}',
        ])
      ).split('\n');
      const [taskId, , node] = rows.map((r) => r.split('|')).find((r) => r[1] === 'talker.1')!;
      const cid = await ok(node, ['ps', '-q', '--filter', `label=com.docker.swarm.task.id=${taskId}`]);
      assert.ok(cid);
      await ok(node, ['rm', '-f', cid]);
      const after = await waitFor('the replacement greets', async () => {
        const l = lines();
        return l.length === 3 && l;
      });
      assert.equal(after.filter((m) => m[1] === 'talker.1').length, 2);
      assert.equal(new Set(after.map((m) => m[2])).size, 3);
      assert.equal(child.exitCode, null, 'still following');
    } finally {
      await stopProcess(child.pid);
    }
    await ok('m1', ['service', 'rm', 'talker']);
  });
});
