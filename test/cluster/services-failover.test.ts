import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor as poll } from '../helpers/process.js';
import { serviceCreate } from '../helpers/service-cli.js';

// Needs root: three managers in a lab; the leader goes away and another one's loops take over.

const waitFor = (what: string, fn: () => Promise<boolean>, ms = 90_000) => poll(what, fn, ms, 500);

describe('services survive the loss of the leader', () => {
  let swarm: SwarmLab;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  const running = async (m: string) =>
    (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=web'])).stdout
      .trim()
      .split('\n')
      .filter(Boolean).length;

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1', 'm2', 'm3'], busybox: true });
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it('a new leader replaces the tasks of the stopped leader and keeps serving the API', async () => {
    const r = await d('m1', serviceCreate('web', ['--replicas', '6', '--detach=false']));
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await running('m1')) > 0, 'the leader runs tasks too');
    await swarm.lab.machine(['stop', 'm1']);
    await waitFor('6 running on m2 and m3', async () => (await running('m2')) + (await running('m3')) === 6);
    await waitFor(
      'service ls 6/6 from a survivor',
      async () => (await d('m2', ['service', 'ls', '--format', '{{.Replicas}}'])).stdout.trim() === '6/6',
    );
    const s = await d('m3', ['service', 'scale', 'web=2']);
    assert.equal(s.code, 0, s.stderr);
    await waitFor('2 running', async () => (await running('m2')) + (await running('m3')) === 2);
  });
});
