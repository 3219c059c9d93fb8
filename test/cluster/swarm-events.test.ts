import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestNet, type TestNet } from '../helpers/testnet.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { eventsBetween } from '../helpers/events-cli.js';

// `docker events` on a manager shows the swarm's events as dockerd 20.10 does (root: netns, etcd, real docker CLI).

let net: TestNet;
let mgr: TestDaemon;

before(async () => {
  net = await createTestNet(1);
  mgr = await startDaemon({ ns: net.nodes[0].ns, prefix: 'swev' });
  await mgr.docker(['swarm', 'init', '--advertise-addr', net.nodes[0].ip]);
});

after(async () => {
  await mgr?.destroy();
  await net?.destroy();
});

interface Ev {
  Type: string;
  Action: string;
  scope: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

test('docker events --filter scope=swarm shows a service create, update and remove', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const id = (
    await mgr.docker([
      'service',
      'create',
      '--detach',
      '--no-resolve-image',
      '--name',
      'evsvc',
      '--replicas',
      '1',
      'busybox',
      'sleep',
      '600',
    ])
  ).stdout.trim();
  await mgr.docker(['service', 'update', '--detach', '--replicas', '2', 'evsvc']);
  await mgr.docker(['service', 'rm', 'evsvc']);
  // A container event on the same node stays local and out of the swarm filter.
  await mgr.docker(['network', 'create', '--driver', 'overlay', 'evnet']);
  const until = Math.ceil(Date.now() / 1000) + 1;
  await new Promise((r) => setTimeout(r, 1100)); // --until must lie in the past for a bounded listing
  const read = async (...filters: string[]) =>
    (await mgr.docker(eventsBetween(since, until, filters, '{{json .}}'))).stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Ev);

  const swarm = await read('scope=swarm');
  assert.ok(swarm.length > 0 && swarm.every((e) => e.scope === 'swarm'), JSON.stringify(swarm));
  const svc = swarm.filter((e) => e.Type === 'service');
  assert.deepEqual(
    svc.map((e) => e.Action).filter((a, i, all) => all.indexOf(a) === i),
    ['create', 'update', 'remove'],
  );
  assert.ok(svc.every((e) => e.Actor.ID === id && e.Actor.Attributes.name === 'evsvc'));
  const scaled = svc.find((e) => e.Action === 'update' && e.Actor.Attributes['replicas.new']);
  assert.deepEqual(scaled && [scaled.Actor.Attributes['replicas.old'], scaled.Actor.Attributes['replicas.new']], [
    '1',
    '2',
  ]);
  const netEv = swarm.find((e) => e.Type === 'network' && e.Action === 'create' && e.Actor.Attributes.name === 'evnet');
  assert.ok(netEv, 'overlay network create event');

  const onlyServices = await read('type=service');
  assert.deepEqual(
    onlyServices.map((e) => e.Type).filter((t, i, all) => all.indexOf(t) === i),
    ['service'],
  );
  assert.deepEqual(await read('scope=swarm', 'service=nosuch'), []);
  // The docker CLI's own default format names the scope-less swarm event as dockerd's does.
  const text = (await mgr.docker(eventsBetween(since, until, ['type=service', 'event=remove']))).stdout;
  assert.match(text, new RegExp(`service remove ${id} \\(name=evsvc\\)`));
});
