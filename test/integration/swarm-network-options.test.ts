import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { apiJson } from '../helpers/engine-api.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';
import { run } from '../../src/util/run.js';

/**
 * Swarm network create options on a one-node swarm, driven by the real docker CLI: the VNIs
 * `vxlanid_list` asks for (seen in network inspect and on the node's VXLAN device), refused
 * when taken or out of range. Needs root (shoald, etcd, runc, iproute2).
 */

const VXLAN = 'com.docker.network.driver.overlay.vxlanid_list';
const IMG = 'swnopt-busybox:latest';
let d: TestDaemon;

before(async () => {
  d = await startDaemon({ prefix: 'shtswopt' });
  await importBusybox(d.docker, d.dir, IMG);
  const init = await d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1'], { allowFail: true });
  assert.equal(init.code, 0, init.stderr);
});
after(async () => {
  await d?.docker(['swarm', 'leave', '--force'], { allowFail: true });
  await d?.destroy();
});

const docker = (...args: string[]) => d.docker(args, { allowFail: true });
const ok = async (...args: string[]) => {
  const r = await docker(...args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

const createRaw = (body: unknown) =>
  apiJson<{ message?: string; Id?: string }>(d.socket, 'POST', '/v1.41/networks/create', body);

/** The network's VNI list once the allocator has given it one. */
const allocatedVnis = (name: string) =>
  waitFor(
    `${name} allocated`,
    async () => {
      const r = await docker('network', 'inspect', name, '--format', `{{index .Options "${VXLAN}"}}`);
      return r.code === 0 && r.stdout.trim() !== '<no value>' && r.stdout.trim();
    },
    30_000,
    200,
  );

/** The VNI of the VXLAN device in this node's sandbox of `network`, once a task made it. */
const sandboxVni = (networkId: string) =>
  waitFor(
    `the sandbox of ${networkId} with its VXLAN device`,
    async () => {
      const r = await run(
        'ip',
        ['-n', `${d.name}-sb-${networkId.slice(0, 12)}`, '-j', '-d', 'link', 'show', 'vxlan0'],
        {
          allowFail: true,
        },
      );
      return r.code === 0 && (JSON.parse(r.stdout)[0]?.linkinfo?.info_data?.id as number | undefined);
    },
    90_000,
    500,
  );

const running = (svc: string) =>
  waitFor(
    `${svc} running`,
    async () =>
      (
        await docker('service', 'ps', svc, '--filter', 'desired-state=running', '--format', '{{.CurrentState}}')
      ).stdout.startsWith('Running'),
    90_000,
    500,
  );

test('vxlanid_list: the overlay gets that VNI (inspect, and the VXLAN device its task uses); taken or out of range is refused, nothing stored; freed by rm', async () => {
  const id = await ok('network', 'create', '-d', 'overlay', '--opt', `${VXLAN}=4097`, 'vx-a');
  assert.equal(await allocatedVnis('vx-a'), '4097');

  const refusals: [string, string][] = [
    ['4097', 'could not obtain vxlan id 4097: requested bit is already allocated'],
    ['16777216', 'could not obtain vxlan id 16777216: Requested id does not belong to the set'],
    ['abc', 'invalid vxlan id value "abc" passed'],
  ];
  for (const [vni, message] of refusals) {
    const r = await docker('network', 'create', '-d', 'overlay', '--opt', `${VXLAN}=${vni}`, 'vx-b');
    assert.notEqual(r.code, 0, vni);
    assert.equal(r.stderr.trim(), `Error response from daemon: rpc error: code = InvalidArgument desc = ${message}`);
    const raw = await createRaw({ Name: 'vx-b', Driver: 'overlay', Options: { [VXLAN]: vni } });
    assert.equal(raw.status, 400, vni);
  }
  assert.doesNotMatch(await ok('network', 'ls', '--format', '{{.Name}}'), /vx-b/, 'nothing stored');

  // An automatic VNI keeps off 4097.
  await ok('network', 'create', '-d', 'overlay', 'vx-auto');
  assert.notEqual(await allocatedVnis('vx-auto'), '4097');

  // The data plane uses it.
  await ok('service', 'create', '--detach', '--name', 'vx-svc', '--network', 'vx-a', IMG, 'sleep', '1000');
  await running('vx-svc');
  assert.equal(await sandboxVni(id), 4097);

  // Freed on rm, and another network may take it.
  const inUse = await docker('network', 'rm', 'vx-a');
  assert.notEqual(inUse.code, 0, 'in use by the service');
  await ok('service', 'rm', 'vx-svc');
  await waitFor('vx-a removable', async () => (await docker('network', 'rm', 'vx-a')).code === 0, 60_000, 500);
  await ok('network', 'create', '-d', 'overlay', '--opt', `${VXLAN}=4097`, 'vx-c');
  assert.equal(await allocatedVnis('vx-c'), '4097');
  await ok('network', 'rm', 'vx-c', 'vx-auto');
});

/** The task containers of a service on this node, by ID. */
const taskContainers = async (svc: string) =>
  (await ok('ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${svc}`))
    .split('\n')
    .filter(Boolean);

test('bridge --scope swarm: a swarm network of the node-local bridge driver; tasks get this node’s bridge of it and reach each other by name; rm refused while used', async () => {
  const id = await ok('network', 'create', '-d', 'bridge', '--scope', 'swarm', 'sw-br');
  const ls = await ok('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}');
  assert.ok(ls.split('\n').includes('sw-br bridge swarm'), ls);
  const before = JSON.parse(await ok('network', 'inspect', 'sw-br'))[0];
  assert.deepEqual([before.Id, before.Scope, before.Driver, before.Attachable], [id, 'swarm', 'bridge', false]);

  await ok(
    'service',
    'create',
    '--detach',
    '--name',
    'br-svc',
    '--replicas',
    '2',
    '--network',
    'sw-br',
    IMG,
    'sleep',
    '1000',
  );
  const [a, b] = await waitFor(
    'two running tasks of br-svc',
    async () => {
      const ids = await taskContainers('br-svc');
      const states = await Promise.all(ids.map((c) => ok('inspect', '--format', '{{.State.Running}}', c)));
      return ids.length === 2 && states.every((s) => s === 'true') && ids;
    },
    90_000,
    500,
  );
  // Each task has an address on this node's bridge of sw-br (the swarm network's ID, the node's own subnet).
  const settings = JSON.parse(await ok('inspect', '--format', '{{json .NetworkSettings.Networks}}', a));
  assert.deepEqual(Object.keys(settings), ['sw-br']);
  assert.equal(settings['sw-br'].NetworkID, id);
  assert.match(settings['sw-br'].IPAddress, /^\d+\.\d+\.\d+\.\d+$/);
  const local = JSON.parse(await ok('network', 'inspect', 'sw-br'))[0];
  assert.equal(local.Scope, 'swarm');
  assert.equal(Object.keys(local.Containers).length, 2, 'both tasks on it');
  assert.equal(local.IPAM.Config.length, 1, 'a subnet of this node');
  assert.equal((await ok('network', 'ls', '--format', '{{.Name}}')).split('\n').filter((n) => n === 'sw-br').length, 1);
  const device = `br-${id.slice(0, 12)}`;
  assert.equal((await d.inNs('ip', ['link', 'show', device], { allowFail: true })).code, 0, `${device} exists`);
  // By name: the other task's container name, as dockerd's resolver answers it on a local network.
  const bName = (await ok('inspect', '--format', '{{.Name}}', b)).replace(/^\//, '');
  let last = '';
  await waitFor(
    `${bName} answers ${a.slice(0, 12)} by name`,
    async () => {
      const ping = await docker('exec', a, 'ping', '-c', '1', '-W', '3', bName);
      last = ping.stdout + ping.stderr;
      return ping.code === 0;
    },
    30_000,
    500,
  ).catch((e: Error) => assert.fail(`${e.message}: ${last}`));

  // Two node-local networks on one task: the second joins as `network connect` would.
  await ok('network', 'create', '-d', 'bridge', '--scope', 'swarm', 'sw-br2');
  await ok(
    'service',
    'create',
    '--detach',
    '--name',
    'br-two',
    '--network',
    'sw-br',
    '--network',
    'sw-br2',
    IMG,
    'sleep',
    '1000',
  );
  const two = await waitFor(
    'the task of br-two running',
    async () => {
      const [c] = await taskContainers('br-two');
      return c && (await ok('inspect', '--format', '{{.State.Running}}', c)) === 'true' && c;
    },
    90_000,
    500,
  );
  const nets = JSON.parse(await ok('inspect', '--format', '{{json .NetworkSettings.Networks}}', two));
  assert.deepEqual(Object.keys(nets).sort(), ['sw-br', 'sw-br2']);
  // With a published port (the ingress overlay too): refused with a clear error, never half wired.
  await ok(
    'service',
    'create',
    '--detach',
    '--name',
    'br-pub',
    '--network',
    'sw-br',
    '-p',
    '18080:80',
    IMG,
    'sleep',
    '1000',
  );
  await waitFor(
    'br-pub rejected with its reason',
    async () =>
      /node-local swarm network sw-br and overlay networks .* not supported/.test(
        await ok('service', 'ps', '--no-trunc', '--format', '{{.Error}}', 'br-pub'),
      ),
    90_000,
    500,
  );
  await ok('service', 'rm', 'br-two', 'br-pub');
  await waitFor('sw-br2 removable', async () => (await docker('network', 'rm', 'sw-br2')).code === 0, 60_000, 500);

  const svcId = await ok('service', 'inspect', '--format', '{{.ID}}', 'br-svc');
  const inUse = await docker('network', 'rm', 'sw-br');
  assert.notEqual(inUse.code, 0);
  // The CLI adds "exit status 1" after the daemon's line when `network rm` fails.
  assert.equal(
    inUse.stderr.split('\n')[0],
    `Error response from daemon: rpc error: code = FailedPrecondition desc = network ${id} is in use by service ${svcId}`,
  );
  await ok('service', 'rm', 'br-svc');
  await waitFor('sw-br removable', async () => (await docker('network', 'rm', 'sw-br')).code === 0, 60_000, 500);
  await waitFor(
    'this node’s bridge of sw-br gone',
    async () =>
      !(await ok('network', 'ls', '--format', '{{.Name}}')).split('\n').includes('sw-br') &&
      (await d.inNs('ip', ['link', 'show', device], { allowFail: true })).code !== 0,
    60_000,
    500,
  );

  const downgrade = await docker('network', 'create', '-d', 'overlay', '--scope', 'local', 'sw-ov-local');
  assert.equal(
    downgrade.stderr.trim(),
    'Error response from daemon: cannot downgrade network scope for overlay networks',
  );
  const configFrom = await docker('network', 'create', '--scope', 'swarm', '--config-from', 'sw-cfg', 'sw-from');
  assert.notEqual(configFrom.code, 0, 'config-from is refused, not ignored');
  await ok('network', 'create', '-d', 'bridge', '--scope', 'swarm', '--attachable', 'sw-br-att');
  assert.equal(
    await ok('network', 'inspect', 'sw-br-att', '--format', '{{.Scope}} {{.Driver}} {{.Attachable}}'),
    'swarm bridge true',
  );
  await ok('network', 'rm', 'sw-br-att');
});
