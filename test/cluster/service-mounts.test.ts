import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor as poll } from '../helpers/process.js';

// Needs root: a two-machine lab (namespaces, shoald, etcd, runc) driven by the real docker CLI.
// Tasks are placed on the worker, so every mount has to travel manager → dispatcher → agent.

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000) => poll(what, fn, ms, 500);

describe('service mounts (tmpfs, volume, bind) on a two-machine swarm', () => {
  let swarm: SwarmLab;
  let hostDir: string;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  const ok = async (m: string, args: string[]) => {
    const r = await d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** The task container of a service on the worker, once it runs. */
  const taskContainer = (svc: string) =>
    waitFor(
      `a running task container of ${svc} on m2`,
      async () =>
        (await ok('m2', ['ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${svc}`])) ||
        undefined,
    );
  /** `docker service ps` rows of a service: state and error, untruncated. */
  const tasks = async (svc: string) =>
    (await ok('m1', ['service', 'ps', svc, '--no-trunc', '--format', '{{.CurrentState}}|{{.Error}}']))
      .split('\n')
      .filter(Boolean);

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2'], busybox: true });
    hostDir = fs.mkdtempSync(path.join(swarm.lab.labDir, 'bind-'));
    fs.writeFileSync(path.join(hostDir, 'in'), 'from the host\n');
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it('tmpfs, a named volume and a bind all reach the task container', async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'mnt',
      '--constraint',
      'node.role==worker',
      '--detach',
      '--mount',
      'type=tmpfs,target=/scratch,tmpfs-size=2m',
      '--mount',
      'type=volume,source=svcdata,target=/data,volume-label=owner=mnt',
      '--mount',
      `type=bind,source=${hostDir},target=/h,readonly`,
      '--mount',
      'type=volume,target=/anon',
      '--mount',
      'type=volume,source=svctmp,target=/t2,volume-nocopy,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=3m',
      'busybox',
      'sleep',
      '100000',
    ]);
    const id = await taskContainer('mnt');

    const mounts = await ok('m2', ['exec', id, 'cat', '/proc/mounts']);
    assert.match(mounts, /^tmpfs \/scratch tmpfs \S*size=2048k/m);
    // volume-opt reaches the volume's driver: a tmpfs-backed local volume.
    assert.match(mounts, /^tmpfs \/t2 tmpfs \S*size=3072k/m);
    assert.deepEqual(JSON.parse(await ok('m2', ['volume', 'inspect', 'svctmp']))[0].Options, {
      type: 'tmpfs',
      device: 'tmpfs',
      o: 'size=3m',
    });

    await ok('m2', ['exec', id, 'sh', '-c', 'echo written by the task > /data/f']);
    const vol = JSON.parse(await ok('m2', ['volume', 'inspect', 'svcdata']))[0];
    assert.equal(vol.Driver, 'local');
    assert.deepEqual(vol.Labels, { owner: 'mnt' });
    assert.equal(fs.readFileSync(path.join(vol.Mountpoint, 'f'), 'utf8'), 'written by the task\n');

    assert.equal(await ok('m2', ['exec', id, 'cat', '/h/in']), 'from the host');
    const ro = await d('m2', ['exec', id, 'touch', '/h/x']);
    assert.notEqual(ro.code, 0, 'the bind is read-only');

    const seen = (
      JSON.parse(await ok('m2', ['inspect', id]))[0].Mounts as { Type: string; Destination: string; Name?: string }[]
    )
      .map((m) => `${m.Type}:${m.Destination}${m.Name ? `:${m.Name}` : ''}`)
      .sort();
    assert.deepEqual(
      seen.filter((m) => !m.startsWith('volume:/anon:')),
      ['bind:/h', 'tmpfs:/scratch', 'volume:/data:svcdata', 'volume:/t2:svctmp'],
    );
    assert.match(
      seen.find((m) => m.startsWith('volume:/anon:')) ?? '',
      /^volume:\/anon:[a-f0-9]{64}$/,
      'an anonymous volume for a mount without source',
    );
    // The manager never saw the volume: it lives on the node that runs the task.
    assert.equal((await d('m1', ['volume', 'inspect', 'svcdata'])).code, 1);
  });

  it('the named volume outlives the service, the anonymous one goes with the task; in use while a task holds it', async () => {
    const id = await taskContainer('mnt');
    const anon =
      (JSON.parse(await ok('m2', ['inspect', id]))[0].Mounts as { Name?: string; Destination: string }[]).find(
        (m) => m.Destination === '/anon',
      )?.Name ?? '';
    assert.ok((await ok('m2', ['volume', 'ls', '-q'])).split('\n').includes(anon));
    const busy = await d('m2', ['volume', 'rm', 'svcdata']);
    assert.match(busy.stderr, new RegExp(`remove svcdata: volume is in use - \\[${id}\\]`));
    await ok('m1', ['service', 'rm', 'mnt']);
    await waitFor(
      'the task container gone from m2',
      async () => (await ok('m2', ['ps', '-aq', '--filter', 'label=com.docker.swarm.service.name=mnt'])) === '',
    );
    const vol = JSON.parse(await ok('m2', ['volume', 'inspect', 'svcdata']))[0];
    assert.equal(fs.readFileSync(path.join(vol.Mountpoint, 'f'), 'utf8'), 'written by the task\n');
    assert.ok(
      !(await ok('m2', ['volume', 'ls', '-q'])).split('\n').includes(anon),
      "the task's anonymous volume removed with its container",
    );
    await ok('m2', ['volume', 'rm', 'svcdata', 'svctmp']);
  });

  it('service templates expand per task on the node: hostname, env, volume source', async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'tpl',
      '--constraint',
      'node.role==worker',
      '--detach',
      '--hostname',
      '{{.Node.Hostname}}-{{.Service.Name}}',
      '--env',
      'TASK={{.Task.Name}}',
      '--mount',
      'type=volume,source=tpl-{{.Task.Slot}},target=/data',
      'busybox',
      'sleep',
      '100000',
    ]);
    const id = await taskContainer('tpl');
    const nodeHost = await ok('m2', ['info', '--format', '{{.Name}}']);
    assert.equal(await ok('m2', ['exec', id, 'hostname']), `${nodeHost}-tpl`);
    const taskId = await ok('m2', ['inspect', id, '--format', '{{index .Config.Labels "com.docker.swarm.task.id"}}']);
    assert.equal(await ok('m2', ['exec', id, 'sh', '-c', 'echo $TASK']), `tpl.1.${taskId}`);
    assert.ok((await ok('m2', ['volume', 'ls', '-q'])).split('\n').includes('tpl-1'));
    await ok('m1', ['service', 'rm', 'tpl']);
    await waitFor(
      'the task container gone from m2',
      async () => (await ok('m2', ['ps', '-aq', '--filter', 'label=com.docker.swarm.service.name=tpl'])) === '',
    );
    await ok('m2', ['volume', 'rm', 'tpl-1']);
  });

  it('a template that does not parse rejects the task with the template error', async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'badtpl',
      '--constraint',
      'node.role==worker',
      '--detach',
      '--hostname',
      '{{.Node.Hostname',
      'busybox',
      'sleep',
      '100000',
    ]);
    const row = await waitFor('a rejected task', async () =>
      (await tasks('badtpl')).find((r) => r.startsWith('Rejected')),
    );
    assert.match(row, /expanding hostname failed: template: expansion:1: unclosed action/);
    await ok('m1', ['service', 'rm', 'badtpl']);
  });

  it('a volume driver this node lacks rejects the task, with the reason in service ps', async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'baddrv',
      '--constraint',
      'node.role==worker',
      '--detach',
      '--mount',
      'type=volume,source=plugged,target=/p,volume-driver=nosuchdriver',
      'busybox',
      'sleep',
      '100000',
    ]);
    const row = await waitFor('a rejected task', async () =>
      (await tasks('baddrv')).find((r) => r.startsWith('Rejected')),
    );
    assert.match(row, /create plugged: error looking up volume plugin nosuchdriver: plugin "nosuchdriver" not found/);
    assert.doesNotMatch(await ok('m2', ['volume', 'ls', '-q']), /plugged/);
    await ok('m1', ['service', 'rm', 'baddrv']);
  });

  it("a bind source that is not absolute rejects the task with Docker's message", async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'relbind',
      '--constraint',
      'node.role==worker',
      '--detach',
      '--mount',
      'type=bind,source=relative/dir,target=/r',
      'busybox',
      'sleep',
      '100000',
    ]);
    const row = await waitFor('a rejected task', async () =>
      (await tasks('relbind')).find((r) => r.startsWith('Rejected')),
    );
    assert.match(row, /invalid bind mount source, must be an absolute path: relative\/dir/);
    await ok('m1', ['service', 'rm', 'relbind']);
  });

  it('a missing bind source on the node rejects the task', async () => {
    await ok('m1', [
      'service',
      'create',
      '--name',
      'nobind',
      '--constraint',
      'node.role==worker',
      '--detach',
      '--mount',
      `type=bind,source=${hostDir}/missing,target=/r`,
      'busybox',
      'sleep',
      '100000',
    ]);
    const row = await waitFor('a rejected task', async () =>
      (await tasks('nobind')).find((r) => r.startsWith('Rejected')),
    );
    assert.match(
      row,
      new RegExp(`invalid mount config for type "bind": bind source path does not exist: ${hostDir}/missing`),
    );
    await ok('m1', ['service', 'rm', 'nobind']);
  });
});
