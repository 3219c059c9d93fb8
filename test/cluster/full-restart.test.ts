import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor } from '../helpers/process.js';

// Needs root: three managers (namespaces, shoald, etcd, runc) driven by the real docker CLI.
// Every daemon stopped, then started one machine at a time, each start waiting for its API
// (`shoal machine start` waits for /_ping, 60 s at most). The first manager's etcd has no quorum
// until a second one runs, so a daemon that held its API until its manager started never came
// up (found by the chaos suite, seed 54 round 10). dockerd waits 20 s for its swarm part, then
// serves anyway; so does shoald now.

describe('a full cluster restart, one machine at a time', () => {
  let swarm: SwarmLab;
  const ok = async (m: string, args: string[]) => {
    const r = await swarm.d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')} on ${m}: ${r.stderr}`);
    return r.stdout.trim();
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1', 'm2', 'm3'], busybox: true });
    await ok('m1', ['service', 'create', '--detach', '--name', 'keep', '--replicas', '3', 'busybox', 'sleep', '1d']);
    await waitFor('keep 3/3', async () => (await swarm.replicas('keep')) === '3/3', 120_000, 500);
  });
  after(async () => {
    await swarm?.cleanup();
  });

  it('each daemon serves its API while its peers are down; the swarm and its service come back', async () => {
    await swarm.lab.machine(['stop', 'm1', 'm2', 'm3']);
    for (const m of ['m1', 'm2', 'm3']) {
      const t0 = Date.now();
      await swarm.lab.machine(['start', m]);
      console.log(`# ${m} answered /_ping ${Date.now() - t0} ms after its start`);
    }
    await waitFor(
      'three managers Ready and one leader',
      async () => {
        const rows = (await ok('m2', ['node', 'ls', '--format', '{{.Status}} {{.ManagerStatus}}'])).split('\n');
        return rows.length === 3 && rows.every((r) => r.startsWith('Ready')) && rows.some((r) => r.endsWith('Leader'));
      },
      120_000,
      500,
    );
    // Writes work again, on the machine started first too.
    await ok('m1', ['service', 'update', '--detach', '--label-add', 'back=yes', 'keep']);
    await waitFor('keep 3/3 after the restart', async () => (await swarm.replicas('keep')) === '3/3', 120_000, 500);
  });
});
