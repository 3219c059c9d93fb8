import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor as poll } from '../helpers/process.js';
import { serviceCreate, servicePs, servicePsRunning } from '../helpers/service-cli.js';

// Needs root: a three-machine lab (namespaces, shoald, etcd, runc) driven by the real docker CLI.

const MACHINES = ['m1', 'm2', 'm3'];

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000) => poll(what, fn, ms, 500);

describe('services on a three-machine swarm', () => {
  let swarm: SwarmLab;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  const replicas = (svc: string) => swarm.replicas(svc);
  /** Task containers on a machine: name → ID. */
  const taskContainers = async (m: string, svc: string) => {
    const out = (
      await d(m, [
        'ps',
        '--no-trunc',
        '--filter',
        `label=com.docker.swarm.service.name=${svc}`,
        '--format',
        '{{.Names}} {{.ID}}',
      ])
    ).stdout.trim();
    return new Map(out ? out.split('\n').map((l) => l.split(' ') as [string, string]) : []);
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'], busybox: true });
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it('creates a replicated service and converges (--detach=false)', async () => {
    const r = await d('m1', serviceCreate('web', ['--replicas', '1', '--detach=false']));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await replicas('web'), '1/1');
  });

  it('scale 1 → 7 spreads over all three machines; docker ps shows the task containers', async () => {
    const r = await d('m1', ['service', 'scale', 'web=7']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('7/7', async () => (await replicas('web')) === '7/7');
    const counts = await Promise.all(MACHINES.map(async (m) => (await taskContainers(m, 'web')).size));
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      7,
    );
    assert.ok(
      counts.every((c) => c >= 2),
      `spread: ${counts}`,
    );
    for (const m of MACHINES)
      for (const name of (await taskContainers(m, 'web')).keys()) assert.match(name, /^web\.[1-7]\.[a-z0-9]{25}$/);
  });

  it('docker inspect of a task gives the container ID docker ps shows on its machine', async () => {
    const line = (await d('m1', servicePsRunning('web', '{{.ID}} {{.Node}}'))).stdout.trim().split('\n')[0];
    const [taskId, node] = line.split(' ');
    const cid = (
      await d('m1', ['inspect', '--type', 'task', taskId, '--format', '{{.Status.ContainerStatus.ContainerID}}'])
    ).stdout.trim();
    const onNode = await taskContainers(node, 'web');
    assert.ok([...onNode.values()].includes(cid), `${cid} on ${node}`);
  });

  it('docker rm -f of a task container → a new task, back to 7/7', async () => {
    const containers = await taskContainers('m2', 'web');
    const [name, cid] = [...containers.entries()][0];
    const slot = name.split('.')[1];
    const oldTask = name.split('.')[2];
    const rm = await d('m2', ['rm', '-f', cid]);
    assert.equal(rm.code, 0, rm.stderr);
    await waitFor('a replacement in the slot', async () => {
      const ps = (await d('m1', servicePsRunning('web', '{{.Name}} {{.ID}} {{.CurrentState}}'))).stdout;
      return ps.split('\n').some((l) => l.startsWith(`web.${slot} `) && !l.includes(oldTask) && l.includes('Running'));
    });
    await waitFor('7/7 again', async () => (await replicas('web')) === '7/7');
    const hist = (
      await d('m1', ['service', 'ps', 'web', '--no-trunc', '--format', '{{.ID}} {{.DesiredState}} {{.CurrentState}}'])
    ).stdout;
    assert.match(hist, new RegExp(`${oldTask} Shutdown Failed`));
  });

  it('service update --env-add rolls every task (parallelism 3) and the new containers carry it', async () => {
    const r = await d('m1', [
      'service',
      'update',
      '--env-add',
      'COLOUR=blue',
      '--update-parallelism',
      '3',
      '--update-monitor',
      '1s',
      '--detach=false',
      'web',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      (await d('m1', ['service', 'inspect', 'web', '--format', '{{.UpdateStatus.State}}'])).stdout.trim(),
      'completed',
    );
    await waitFor('7/7', async () => (await replicas('web')) === '7/7');
    let seen = 0;
    for (const m of MACHINES) {
      for (const id of (await taskContainers(m, 'web')).values()) {
        const env = (await d(m, ['inspect', id, '--format', '{{json .Config.Env}}'])).stdout;
        assert.match(env, /COLOUR=blue/);
        seen++;
      }
    }
    assert.equal(seen, 7);
  });

  it('global service: one task per machine', async () => {
    const r = await d('m1', serviceCreate('mon', ['--mode', 'global', '--detach=false']));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await replicas('mon'), '3/3');
    for (const m of MACHINES) assert.equal((await taskContainers(m, 'mon')).size, 1);
  });

  it('host-mode published ports: one task per node at most, shown by service ps', async () => {
    const r = await d(
      'm1',
      serviceCreate('hostport', ['--replicas', '4', '--publish', 'mode=host,target=80,published=8081', '--detach']),
    );
    assert.equal(r.code, 0, r.stderr);
    await waitFor('3 running, 1 pending', async () => {
      const ps = (await d('m1', servicePs('hostport', '{{.CurrentState}}|{{.Ports}}|{{.Error}}'))).stdout
        .trim()
        .split('\n');
      return (
        ps.filter((l) => /^Running .*\|\*:8081->80\/tcp\|$/.test(l)).length === 3 &&
        ps.some((l) => /^Pending .*host-mode port already in use on 3 nodes/.test(l))
      );
    });
    assert.equal((await d('m1', ['service', 'rm', 'hostport'])).code, 0);
  });

  it('swarm update --task-history-limit bounds the tasks kept per slot', async () => {
    assert.equal((await d('m1', ['swarm', 'update', '--task-history-limit', '2'])).code, 0);
    let r = await d('m1', serviceCreate('hist', ['--update-monitor', '1s', '--detach=false']));
    assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < 3; i++) {
      r = await d('m1', ['service', 'update', '--force', '--detach=false', 'hist']);
      assert.equal(r.code, 0, r.stderr);
    }
    await waitFor(
      'history trimmed to 2',
      async () => (await d('m1', ['service', 'ps', '-q', 'hist'])).stdout.trim().split('\n').length === 2,
    );
    const ps = (await d('m1', ['service', 'ps', 'hist', '--format', '{{.DesiredState}}'])).stdout.trim().split('\n');
    assert.deepEqual(ps, ['Running', 'Shutdown']);
    assert.equal((await d('m1', ['service', 'rm', 'hist'])).code, 0);
    assert.equal((await d('m1', ['swarm', 'update', '--task-history-limit', '5'])).code, 0);
  });

  it('a replicated job runs its tasks to completion on real containers', async () => {
    const r = await d(
      'm1',
      serviceCreate(
        'batch',
        ['--mode', 'replicated-job', '--replicas', '3', '--max-concurrent', '2', '--detach=false'],
        ['busybox', 'true'],
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /job complete/);
    assert.equal(
      (await d('m1', ['service', 'ls', '--filter', 'name=batch', '--format', '{{.Replicas}}'])).stdout.trim(),
      '0/2 (3/3 completed)',
    );
    const states = (await d('m1', ['service', 'ps', 'batch', '--format', '{{.DesiredState}} {{.CurrentState}}'])).stdout
      .trim()
      .split('\n');
    assert.equal(states.length, 3);
    for (const l of states) assert.match(l, /^Complete Complete/);
    assert.equal((await d('m1', ['service', 'rm', 'batch'])).code, 0);
  });

  it('a task that fits nowhere stays pending with the reason, and runs once a node fits', async () => {
    const r = await d('m1', serviceCreate('picky', ['--constraint', 'node.labels.disk==ssd', '--detach']));
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the reason', async () =>
      /no suitable node \(scheduling constraints not satisfied on 3 nodes\)/.test(
        (await d('m1', ['service', 'ps', 'picky', '--no-trunc', '--format', '{{.CurrentState}} {{.Error}}'])).stdout,
      ),
    );
    assert.equal((await d('m1', ['node', 'update', '--label-add', 'disk=ssd', 'm2'])).code, 0);
    await waitFor('running on m2', async () => (await taskContainers('m2', 'picky')).size === 1);
    assert.equal(await waitFor('1/1', async () => ((await replicas('picky')) === '1/1' ? '1/1' : undefined)), '1/1');
    assert.equal((await d('m1', ['service', 'rm', 'picky'])).code, 0);
  });

  it('draining a node moves its tasks to the others', async () => {
    assert.equal((await d('m1', ['node', 'update', '--availability', 'drain', 'm3'])).code, 0);
    // REPLICAS counts tasks last reported RUNNING, as swarmkit's ListServiceStatuses does: the
    // drained node's tasks count until their agent reports them shut down, which comes just
    // after their containers are gone. So 7/7 and an empty m3 can both hold while the
    // replacements are still starting: the containers on the others are waited for too.
    const onOthers = async () => (await taskContainers('m1', 'web')).size + (await taskContainers('m2', 'web')).size;
    await waitFor(
      'm3 empty, 7 on the others and 7/7',
      async () =>
        (await taskContainers('m3', 'web')).size === 0 && (await onOthers()) === 7 && (await replicas('web')) === '7/7',
    );
    await waitFor("the drained node's tasks reported shut down", async () => {
      const ps = (await d('m1', servicePs('web', '{{.DesiredState}} {{.CurrentState}}', ['node=m3']))).stdout
        .trim()
        .split('\n')
        .filter(Boolean);
      return ps.every((l) => !/Running/.test(l));
    });
    assert.equal(await onOthers(), 7);
    assert.equal(await replicas('web'), '7/7');
    // The global service leaves the drained node too.
    await waitFor('mon off m3', async () => (await taskContainers('m3', 'mon')).size === 0);
    assert.equal((await d('m1', ['node', 'update', '--availability', 'active', 'm3'])).code, 0);
    await waitFor('mon back on m3', async () => (await taskContainers('m3', 'mon')).size === 1);
  });

  it("bad input: Docker's errors; an image that cannot be pulled rejects the task with the pull error", async () => {
    let r = await d('m1', ['service', 'create', '--name', 'bad', '--constraint', 'node.role=manager', 'busybox']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /constraint expected one operator from ==, !=/);
    r = await d('m1', ['service', 'create', '--name', 'web', '--detach', 'busybox']);
    assert.match(r.stderr, /service web already exists/);
    r = await d('m1', ['service', 'update', '--detach', '--mode', 'global', 'web']);
    assert.notEqual(r.code, 0);
    r = await d('m1', [
      'service',
      'create',
      '--name',
      'nopull',
      '--detach',
      '--restart-max-attempts',
      '1',
      '127.0.0.1:5999/nosuch:1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('rejected', async () =>
      /Rejected/.test((await d('m1', ['service', 'ps', 'nopull', '--format', '{{.CurrentState}}'])).stdout),
    );
    const err = (await d('m1', ['service', 'ps', 'nopull', '--no-trunc', '--format', '{{.Error}}'])).stdout;
    assert.match(err, /No such image|127\.0\.0\.1:5999/);
    assert.equal((await d('m1', ['service', 'rm', 'nopull'])).code, 0);
  });

  it("a stopped machine's tasks move; when it comes back it runs none of the old ones", async () => {
    const before = await taskContainers('m2', 'web');
    assert.ok(before.size > 0);
    await swarm.lab.machine(['stop', 'm2']);
    await waitFor(
      '7/7 on m1 and m3',
      async () =>
        (await replicas('web')) === '7/7' &&
        (await taskContainers('m1', 'web')).size + (await taskContainers('m3', 'web')).size === 7,
      45_000,
    );
    await swarm.lab.machine(['start', 'm2']);
    await waitFor(
      'm2 ready',
      async () => (await d('m1', ['node', 'inspect', 'm2', '--format', '{{.Status.State}}'])).stdout.trim() === 'ready',
    );
    await waitFor('old tasks reported shut down', async () => {
      const ps = (await d('m1', ['service', 'ps', 'web', '--no-trunc', '--format', '{{.ID}} {{.CurrentState}}']))
        .stdout;
      return [...before.keys()].every((name) =>
        new RegExp(`${name.split('.')[2]} (Shutdown|Failed|Rejected)`).test(ps),
      );
    });
    assert.equal((await taskContainers('m2', 'web')).size, 0);
    assert.equal(await replicas('web'), '7/7');
  });

  it('a machine removed from the lab: its tasks come back on the others', async () => {
    await swarm.lab.machine(['rm', '-f', 'm3']);
    await waitFor(
      '7/7 on m1 and m2',
      async () =>
        (await replicas('web')) === '7/7' &&
        (await taskContainers('m1', 'web')).size + (await taskContainers('m2', 'web')).size === 7,
      45_000,
    );
  });

  it('a worker that leaves the swarm keeps no task containers; the manager takes its tasks', async () => {
    assert.ok((await taskContainers('m2', 'web')).size > 0);
    const r = await d('m2', ['swarm', 'leave']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(
      'm2 without task containers',
      async () => (await taskContainers('m2', 'web')).size + (await taskContainers('m2', 'mon')).size === 0,
    );
    await waitFor('7 on m1', async () => (await taskContainers('m1', 'web')).size === 7, 45_000);
  });

  it('service rm removes tasks and their containers everywhere', async () => {
    for (const s of ['web', 'mon']) assert.equal((await d('m1', ['service', 'rm', s])).code, 0);
    await waitFor('containers gone', async () => {
      for (const m of ['m1', 'm2'])
        if ((await taskContainers(m, 'web')).size + (await taskContainers(m, 'mon')).size) return false;
      return true;
    });
    assert.equal((await d('m1', ['service', 'ls', '-q'])).stdout.trim(), '');
  });
});
