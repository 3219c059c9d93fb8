import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor as poll } from '../helpers/process.js';

// Needs root: a one-machine swarm (namespace, shoald, etcd, runc) driven by the real docker CLI.

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000) => poll(what, fn, ms, 250);

/**
 * A service whose task ends at once (`echo hello`, restarted by its policy), as docker-py's
 * test_service_logs makes one. As in swarmkit, an ended task stays assigned to its node until
 * the task reaper deletes it: its exited container and log stay, so `docker service logs`
 * shows what every task in the history printed; and nothing but allocation and update status
 * writes the service, so its version stays while its tasks come and go.
 */
describe('a service whose tasks end and restart', () => {
  let swarm: SwarmLab;
  const d = (args: string[]) => swarm.d('m1', args);
  const version = async () => {
    const r = await d(['service', 'inspect', '--format', '{{.Version.Index}}', 'hello']);
    assert.equal(r.code, 0, r.stderr);
    return Number(r.stdout.trim());
  };
  const tasks = async () =>
    (await d(['service', 'ps', '-q', '--no-trunc', 'hello'])).stdout.trim().split('\n').filter(Boolean);

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], busybox: true });
    const r = await d([
      'service',
      'create',
      '--detach',
      '--name',
      'hello',
      '--restart-delay',
      '1s',
      'busybox',
      'echo',
      'hello',
    ]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it("keeps the exited containers of ended tasks; service logs shows each task's line", async () => {
    // Three tasks in the slot's history: the first two ended and were replaced.
    await waitFor('three tasks of the slot', async () => (await tasks()).length >= 3);
    const exited = await waitFor('two exited task containers kept', async () => {
      const r = await d([
        'ps',
        '-a',
        '--filter',
        'label=com.docker.swarm.service.name=hello',
        '--filter',
        'status=exited',
        '-q',
      ]);
      const ids = r.stdout.trim().split('\n').filter(Boolean);
      return ids.length >= 2 && ids;
    });
    assert.ok(exited.length >= 2);
    const lines = await waitFor('a hello line from at least two tasks', async () => {
      const r = await d(['service', 'logs', '--raw', 'hello']);
      const l = r.stdout.split('\n').filter((x) => x === 'hello');
      return l.length >= 2 && l;
    });
    assert.ok(lines.length >= 2);
  });

  it('the service version stays while its tasks end and restart (nobody changed its spec)', async () => {
    const v0 = await version();
    const seen = new Set(await tasks());
    const before = seen.size;
    await waitFor(
      'two more restarts',
      async () => {
        for (const t of await tasks()) seen.add(t);
        return seen.size >= before + 2;
      },
      30_000,
    );
    assert.equal(await version(), v0, 'Version.Index moved without a spec change');
  });
});
