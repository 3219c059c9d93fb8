import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createMachines, newTestLab, type TestLab } from '../helpers/lab.js';
import { importBusybox } from '../helpers/busybox.js';

// Needs root: three managers in a lab; the leader goes away and another one's loops take over.

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('services survive the loss of the leader', () => {
  let lab: TestLab;
  const d = (m: string, args: string[]) => lab.docker(m, args, { allowFail: true });
  const running = async (m: string) => (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=web'])).stdout.trim().split('\n').filter(Boolean).length;

  before(async () => {
    lab = newTestLab();
    await createMachines(lab, ['m1', 'm2', 'm3']);
    const ip = (await lab.machine(['ip', 'm1'])).stdout.trim();
    assert.equal((await d('m1', ['swarm', 'init', '--advertise-addr', ip])).code, 0);
    const token = (await d('m1', ['swarm', 'join-token', '-q', 'manager'])).stdout.trim();
    for (const m of ['m2', 'm3']) {
      const j = await d(m, ['swarm', 'join', '--token', token, `${ip}:2377`]);
      assert.equal(j.code, 0, j.stderr);
    }
    const dir = fs.mkdtempSync(path.join(lab.labDir, 'img-'));
    for (const m of ['m1', 'm2', 'm3']) await importBusybox((args, o) => lab.docker(m, args, o), dir, 'busybox:latest');
  });

  after(async () => {
    await lab?.prune();
  });

  it('a new leader replaces the tasks of the stopped leader and keeps serving the API', async () => {
    const r = await d('m1', ['service', 'create', '--name', 'web', '--replicas', '6', '--detach=false', 'busybox', 'sleep', '100000']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await running('m1')) > 0, 'the leader runs tasks too');
    await lab.machine(['stop', 'm1']);
    await waitFor('6 running on m2 and m3', async () => (await running('m2')) + (await running('m3')) === 6);
    await waitFor('service ls 6/6 from a survivor', async () => (await d('m2', ['service', 'ls', '--format', '{{.Replicas}}'])).stdout.trim() === '6/6');
    const s = await d('m3', ['service', 'scale', 'web=2']);
    assert.equal(s.code, 0, s.stderr);
    await waitFor('2 running', async () => (await running('m2')) + (await running('m3')) === 2);
  });
});
