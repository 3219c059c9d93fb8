import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMachines, newTestLab, type TestLab } from '../helpers/lab.js';
import { waitFor } from '../helpers/process.js';

// Needs root: a three-machine `shoal machine` lab (namespaces, shoald, etcd) and the real docker CLI.
describe('swarm membership on a shoal machine lab', () => {
  let lab: TestLab;
  const ok = async (m: string, args: string[]) => (await lab.docker(m, args)).stdout;
  const statusOf = async (name: string) => {
    const lines = (await ok('m1', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).trim().split('\n');
    return lines.find((l) => l.startsWith(`${name} `))?.split(' ')[1];
  };

  before(async () => {
    lab = newTestLab();
    await createMachines(lab, ['m1', 'm2', 'm3']);
  });

  after(async () => {
    await lab?.prune();
  });

  it('swarm init without --advertise-addr advertises eth0, not the shoal0 bridge', async () => {
    const ip = (await lab.machine(['ip', 'm1'])).stdout.trim();
    assert.match(await ok('m1', ['swarm', 'init']), /^Swarm initialized: current node \(\w+\) is now a manager\./);
    assert.equal((await ok('m1', ['info', '--format', '{{.Swarm.NodeAddr}}'])).trim(), ip);
    assert.match(await ok('m1', ['swarm', 'join-token', 'worker']), new RegExp(` ${ip.replace(/\./g, '\\.')}:2377\n`));
  });

  it('one manager and two workers join and show in node ls as Ready', async () => {
    const ip = (await lab.machine(['ip', 'm1'])).stdout.trim();
    await ok('m1', ['swarm', 'update', '--dispatcher-heartbeat', '1s']);
    const token = (await ok('m1', ['swarm', 'join-token', '-q', 'worker'])).trim();
    for (const m of ['m2', 'm3'])
      assert.equal(
        await ok(m, ['swarm', 'join', '--token', token, `${ip}:2377`]),
        'This node joined a swarm as a worker.\n',
      );
    await waitFor(
      'three ready nodes',
      async () =>
        (await ok('m1', ['node', 'ls', '--format', '{{.Status}}']))
          .trim()
          .split('\n')
          .filter((s) => s === 'Ready').length === 3,
    );
    const roles = (await ok('m1', ['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}']))
      .trim()
      .split('\n')
      .map((l) => l.trim());
    assert.deepEqual(roles.sort(), ['m1 Leader', 'm2', 'm3']);
  });

  it('a stopped worker goes Down and is Ready again once its machine is back', async () => {
    await lab.machine(['stop', 'm3']);
    await waitFor('m3 down', async () => (await statusOf('m3')) === 'Down', 60_000);
    await lab.machine(['start', 'm3']);
    await waitFor('m3 ready again', async () => (await statusOf('m3')) === 'Ready', 60_000);
  });
});
