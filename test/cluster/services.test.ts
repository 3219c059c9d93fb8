import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createMachines, newTestLab, type TestLab } from '../helpers/lab.js';
import { importBusybox } from '../helpers/busybox.js';

// Needs root: a three-machine lab (namespaces, shoald, etcd, runc) driven by the real docker CLI.

const MACHINES = ['m1', 'm2', 'm3'];

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('services on a three-machine swarm', () => {
  let lab: TestLab;
  const d = (m: string, args: string[]) => lab.docker(m, args, { allowFail: true });
  const replicas = async (svc: string) => (await d('m1', ['service', 'ls', '--filter', `name=${svc}`, '--format', '{{.Replicas}}'])).stdout.trim();
  /** Task containers on a machine: name → ID. */
  const taskContainers = async (m: string, svc: string) => {
    const out = (await d(m, ['ps', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${svc}`, '--format', '{{.Names}} {{.ID}}'])).stdout.trim();
    return new Map(out ? out.split('\n').map((l) => l.split(' ') as [string, string]) : []);
  };

  before(async () => {
    lab = newTestLab();
    await createMachines(lab, MACHINES);
    const ip = (await lab.machine(['ip', 'm1'])).stdout.trim();
    const init = await d('m1', ['swarm', 'init', '--advertise-addr', ip]);
    assert.equal(init.code, 0, init.stderr);
    const token = (await d('m1', ['swarm', 'join-token', '-q', 'worker'])).stdout.trim();
    for (const m of ['m2', 'm3']) {
      const j = await d(m, ['swarm', 'join', '--token', token, `${ip}:2377`]);
      assert.equal(j.code, 0, j.stderr);
    }
    const dir = fs.mkdtempSync(path.join(lab.labDir, 'img-'));
    for (const m of MACHINES) await importBusybox((args, o) => lab.docker(m, args, o), dir, 'busybox:latest');
    await waitFor('three ready nodes', async () => (await d('m1', ['node', 'ls', '--format', '{{.Status}}'])).stdout.trim().split('\n').filter((s) => s === 'Ready').length === 3);
  });

  after(async () => {
    await lab?.prune();
  });

  it('creates a replicated service and converges (--detach=false)', async () => {
    const r = await d('m1', ['service', 'create', '--name', 'web', '--replicas', '1', '--detach=false', 'busybox', 'sleep', '100000']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await replicas('web'), '1/1');
  });

  it('scale 1 → 7 spreads over all three machines; docker ps shows the task containers', async () => {
    const r = await d('m1', ['service', 'scale', 'web=7']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('7/7', async () => (await replicas('web')) === '7/7');
    const counts = await Promise.all(MACHINES.map(async (m) => (await taskContainers(m, 'web')).size));
    assert.equal(counts.reduce((a, b) => a + b, 0), 7);
    assert.ok(counts.every((c) => c >= 2), `spread: ${counts}`);
    for (const m of MACHINES) for (const name of (await taskContainers(m, 'web')).keys()) assert.match(name, /^web\.[1-7]\.[a-z0-9]{25}$/);
  });

  it('docker inspect of a task gives the container ID docker ps shows on its machine', async () => {
    const line = (await d('m1', ['service', 'ps', 'web', '--no-trunc', '--filter', 'desired-state=running', '--format', '{{.ID}} {{.Node}}'])).stdout.trim().split('\n')[0];
    const [taskId, node] = line.split(' ');
    const cid = (await d('m1', ['inspect', '--type', 'task', taskId, '--format', '{{.Status.ContainerStatus.ContainerID}}'])).stdout.trim();
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
      const ps = (await d('m1', ['service', 'ps', 'web', '--no-trunc', '--filter', 'desired-state=running', '--format', '{{.Name}} {{.ID}} {{.CurrentState}}'])).stdout;
      return ps.split('\n').some((l) => l.startsWith(`web.${slot} `) && !l.includes(oldTask) && l.includes('Running'));
    });
    await waitFor('7/7 again', async () => (await replicas('web')) === '7/7');
    const hist = (await d('m1', ['service', 'ps', 'web', '--no-trunc', '--format', '{{.ID}} {{.DesiredState}} {{.CurrentState}}'])).stdout;
    assert.match(hist, new RegExp(`${oldTask} Shutdown Failed`));
  });

  it('global service: one task per machine', async () => {
    const r = await d('m1', ['service', 'create', '--name', 'mon', '--mode', 'global', '--detach=false', 'busybox', 'sleep', '100000']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await replicas('mon'), '3/3');
    for (const m of MACHINES) assert.equal((await taskContainers(m, 'mon')).size, 1);
  });

  it('service rm removes tasks and their containers everywhere', async () => {
    for (const s of ['web', 'mon']) assert.equal((await d('m1', ['service', 'rm', s])).code, 0);
    await waitFor('containers gone', async () => {
      for (const m of MACHINES) if ((await taskContainers(m, 'web')).size + (await taskContainers(m, 'mon')).size) return false;
      return true;
    });
    assert.equal((await d('m1', ['service', 'ls', '-q'])).stdout.trim(), '');
  });
});
