import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { randomImageArchive, type ImageArchive } from '../helpers/image-archive.js';
import { waitFor } from '../helpers/process.js';

// Needs root: a three-machine lab with no registry at all (namespaces, shoald, etcd, runc),
// driven by the real docker CLI. Images exist on some machines only (docker load there).

describe('images shared between swarm nodes, no registry', () => {
  let swarm: SwarmLab;
  let dir: string;
  const ok = async (m: string, args: string[]) => {
    const r = await swarm.d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')} on ${m}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const machineDir = (m: string) => path.join(swarm.lab.labDir, 'machines', m);
  const blobFile = (m: string, digest: string) =>
    path.join(machineDir(m), 'data', 'image', 'blobs', 'sha256', digest.slice('sha256:'.length));
  const load = async (m: string, a: ImageArchive) => ok(m, ['load', '-i', a.file]);
  /** The service's tasks as `docker service ps` shows them: node, current state, error. */
  const tasks = async (svc: string) =>
    (await ok('m1', ['service', 'ps', svc, '--no-trunc', '--format', '{{.Node}}|{{.CurrentState}}|{{.Error}}']))
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [node, state, error] = l.split('|');
        return { node, state, error };
      });
  const running = (svc: string, n: number) =>
    waitFor(
      `${n} running tasks of ${svc}`,
      async () => {
        const t = await tasks(svc);
        const failed = t.find((x) => x.error);
        assert.ok(!failed, `a task of ${svc} failed: ${JSON.stringify(failed)}`);
        const up = t.filter((x) => x.state.startsWith('Running'));
        return up.length === n && up;
      },
      180_000,
      1000,
    );
  const log = (m: string) => fs.readFileSync(path.join(machineDir(m), 'shoald.log'), 'utf8');

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'] });
    dir = fs.mkdtempSync(path.join(swarm.lab.labDir, 'images-'));
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it('an image loaded on one worker runs as 6 replicas on all 3 machines, pinned to its digest', async () => {
    const img = await randomImageArchive(dir, 'peerimg:1', [1 << 20]);
    await load('m2', img);
    for (const m of ['m1', 'm3']) assert.notEqual((await swarm.d(m, ['image', 'inspect', img.id])).code, 0);
    await ok('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'spread',
      '--replicas',
      '6',
      'peerimg:1',
      'sleep',
      '1d',
    ]);
    // The manager resolved the tag to the image's digest, as Docker pins a registry's.
    const pinned = await ok('m1', [
      'service',
      'inspect',
      'spread',
      '--format',
      '{{.Spec.TaskTemplate.ContainerSpec.Image}}',
    ]);
    assert.equal(pinned, `peerimg:1@${img.id}`);
    const up = await running('spread', 6);
    assert.deepEqual(new Set(up.map((t) => t.node)), new Set(['m1', 'm2', 'm3']));
    for (const m of ['m1', 'm3']) {
      assert.equal(await ok(m, ['image', 'inspect', img.id, '--format', '{{.Id}}']), img.id);
      // The data layer arrived whole: the container reads all of it.
      const c = (await ok(m, ['ps', '-q', '--filter', 'name=spread'])).split('\n')[0];
      assert.equal(await ok(m, ['exec', c, 'wc', '-c', '/data/0']), `${1 << 20} /data/0`);
    }
  });

  it('a corrupt blob on one peer is refused and fetched again from another', async () => {
    const img = await randomImageArchive(dir, 'corruptimg:1', [1 << 20, 1 << 20]);
    await load('m2', img);
    await load('m3', img);
    // m2's stored copies of every layer go bad (same size, other bytes); its own unpacked layers stay.
    for (const d of img.diffIds) {
      const fd = fs.openSync(blobFile('m2', d), 'r+');
      fs.writeSync(fd, Buffer.from('corrupted!'), 0, 10, 2048);
      fs.closeSync(fd);
    }
    await ok('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'corrupt',
      '--constraint',
      'node.hostname==m1',
      'corruptimg:1',
      'sleep',
      '1d',
    ]);
    await running('corrupt', 1);
    assert.equal(await ok('m1', ['image', 'inspect', img.id, '--format', '{{.Id}}']), img.id);
    assert.match(log('m1'), /digest mismatch/);
    // Nothing of the refused blobs stayed: every stored blob is what its name says.
    for (const d of img.diffIds) assert.ok(fs.existsSync(blobFile('m1', d)));
    assert.deepEqual(fs.readdirSync(path.join(machineDir('m1'), 'data', 'image', 'tmp')), []);
  });

  it('a peer that dies mid-transfer does not fail the task: the layer comes from another peer', async () => {
    const size = 12 << 20;
    const img = await randomImageArchive(dir, 'bigimg:1', [size, size]);
    await load('m2', img);
    await load('m3', img);
    // Slow uplinks (0.5 MB/s: 24 s a layer) so both transfers are surely under way when m2 goes.
    for (const m of ['m2', 'm3'])
      await swarm.lab.ssh(m, [
        'tc',
        'qdisc',
        'add',
        'dev',
        'eth0',
        'root',
        'tbf',
        'rate',
        '4mbit',
        'burst',
        '32kb',
        'latency',
        '1s',
      ]);
    const logFrom = log('m1').length;
    await ok('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'survivor',
      '--constraint',
      'node.hostname==m1',
      'bigimg:1',
      'sleep',
      '1d',
    ]);
    const tmp = path.join(machineDir('m1'), 'data', 'image', 'tmp');
    await waitFor(
      'a layer transfer under way on m1',
      () => fs.readdirSync(tmp).some((f) => fs.statSync(path.join(tmp, f)).size > 1 << 20),
      120_000,
      50,
    );
    // A power cut: the daemon is killed and the machine's network goes with it.
    await swarm.lab.machine(['stop', 'm2']);
    await running('survivor', 1);
    assert.equal(await ok('m1', ['image', 'inspect', img.id, '--format', '{{.Id}}']), img.id);
    const failures = log('m1')
      .slice(logFrom)
      .split('\n')
      .filter((l) => l.includes('image fetch from peer failed'));
    assert.ok(
      failures.some((l) => l.includes(swarm.nodeIds.get('m2')!)),
      `m1 lost a transfer from m2 and went on: ${failures.join('\n')}`,
    );
    assert.deepEqual(fs.readdirSync(tmp), []);
    const c = (await ok('m1', ['ps', '-q', '--filter', 'name=survivor'])).split('\n')[0];
    assert.equal(await ok('m1', ['exec', c, 'wc', '-c', '/data/1']), `${size} /data/1`);
  });
});
