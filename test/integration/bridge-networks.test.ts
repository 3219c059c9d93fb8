import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';
import { eventsBetween } from '../helpers/events-cli.js';

// User-defined bridge networks through the real docker CLI on one daemon (root: runc, netns, nft).
let d: TestDaemon;
const IMG = 'shtbusybox';
const SERVE = [
  'sh',
  '-c',
  'mkdir -p /www && echo "page of $(hostname)" > /www/index.html && exec httpd -f -p 8000 -h /www',
];

before(async () => {
  d = await startDaemon({ prefix: 'shtubr' });
  await importBusybox(d.docker, d.dir, IMG);
});
after(async () => {
  await d?.destroy();
});

const docker = (...args: string[]) => d.docker(args);
const fail = async (...args: string[]) => {
  const r = await d.docker(args, { allowFail: true });
  assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail`);
  return r.stderr.trim();
};
const out = async (...args: string[]) => (await docker(...args)).stdout.trim();
const inspect = async (ref: string) => JSON.parse(await out('network', 'inspect', ref))[0];
/** Exit code of a command in a container (busybox applets). */
const code = async (c: string, ...cmd: string[]) => (await d.docker(['exec', c, ...cmd], { allowFail: true })).code;

test("network create/ls/inspect/rm and their errors, in Docker's words", async () => {
  const id = await out('network', 'create', '--label', 'team=a', 'ubr-one');
  assert.match(id, /^[a-f0-9]{64}$/);
  const n = await inspect('ubr-one');
  assert.equal(n.Id, id);
  assert.equal(n.Driver, 'bridge');
  assert.equal(n.Scope, 'local');
  assert.equal(n.Internal, false);
  assert.deepEqual(n.Labels, { team: 'a' });
  // 172.17 is the default bridge's, 172.18 the swarm gateway bridge's: the first free default pool is 172.19.
  assert.deepEqual(n.IPAM.Config, [{ Subnet: '172.19.0.0/16', Gateway: '172.19.0.1' }]);
  const link = JSON.parse((await d.inNs('ip', ['-j', 'addr', 'show', 'dev', `br-${id.slice(0, 12)}`])).stdout)[0];
  assert.ok(
    link.addr_info.some((a: { local: string }) => a.local === '172.19.0.1'),
    'the bridge holds the gateway address',
  );

  const ls = await out('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}');
  assert.match(ls, /^ubr-one bridge local$/m);
  assert.match(await out('network', 'ls', '--filter', 'type=custom', '--format', '{{.Name}}'), /^ubr-one$/m);

  assert.match(await fail('network', 'create', 'ubr-one'), /network with name ubr-one already exists/);
  assert.match(
    await fail('network', 'create', '--subnet', '172.19.5.0/24', 'ubr-overlap'),
    /Pool overlaps with other one on this address space/,
  );
  assert.match(
    await fail('network', 'create', '--subnet', '172.17.0.0/24', 'ubr-overlap'),
    /Pool overlaps with other one on this address space/,
  );
  assert.match(await fail('network', 'rm', 'bridge'), /bridge is a pre-defined network and cannot be removed/);
  assert.match(await fail('network', 'create', 'host'), /pre-defined network and cannot be created/);
  assert.doesNotMatch(await out('network', 'ls', '--format', '{{.Name}}'), /ubr-overlap/, 'nothing half-made is left');

  const custom = await out(
    'network',
    'create',
    '--subnet',
    '10.77.0.0/24',
    '--gateway',
    '10.77.0.254',
    '-o',
    'com.docker.network.bridge.name=ubrcustom',
    'ubr-two',
  );
  const two = await inspect('ubr-two');
  assert.deepEqual(two.IPAM.Config, [{ Subnet: '10.77.0.0/24', Gateway: '10.77.0.254' }]);
  assert.equal(two.Options['com.docker.network.bridge.name'], 'ubrcustom');
  assert.equal((await d.inNs('ip', ['link', 'show', 'dev', 'ubrcustom'], { allowFail: true })).code, 0);

  await docker('network', 'rm', 'ubr-one', custom.slice(0, 12));
  assert.match(await fail('network', 'inspect', 'ubr-one'), /network ubr-one not found/);
  assert.notEqual(
    (await d.inNs('ip', ['link', 'show', 'dev', 'ubrcustom'], { allowFail: true })).code,
    0,
    'the bridge device is gone',
  );
  const next = await inspect(await out('network', 'create', 'ubr-three'));
  assert.equal(next.IPAM.Config[0].Subnet, '172.19.0.0/16', 'a freed pool is handed out again');
  await docker('network', 'rm', 'ubr-three');
});

test('containers on a user bridge reach each other by name and alias; another bridge cannot reach them', async () => {
  await docker('network', 'create', 'ubr-app');
  await docker('network', 'create', 'ubr-other');
  await docker('run', '-d', '--name', 'ubr-web', '--network', 'ubr-app', '--network-alias', 'www', IMG, ...SERVE);
  await docker('run', '-d', '--name', 'ubr-client', '--network', 'ubr-app', IMG, 'sleep', '300');
  await docker('run', '-d', '--name', 'ubr-stranger', '--network', 'ubr-other', IMG, 'sleep', '300');
  const web = JSON.parse(await out('inspect', 'ubr-web'))[0];
  const ep = web.NetworkSettings.Networks['ubr-app'];
  assert.ok(ep, 'inspect shows the endpoint under the network name');
  assert.match(ep.IPAddress, /^172\.19\.0\.\d+$/);
  assert.equal(ep.Gateway, '172.19.0.1');
  assert.deepEqual(ep.Aliases, ['www']);
  assert.equal(web.NetworkSettings.Networks.bridge, undefined);
  const net = await inspect('ubr-app');
  assert.equal(net.Containers[web.Id].Name, 'ubr-web');
  assert.equal(net.Containers[web.Id].IPv4Address, `${ep.IPAddress}/16`);

  const page = await waitFor(
    'httpd by name',
    async () =>
      (await d.docker(['exec', 'ubr-client', 'wget', '-qO-', 'http://ubr-web:8000/'], { allowFail: true })).stdout,
  );
  assert.equal(page.trim(), `page of ${web.Config.Hostname}`);
  assert.match(
    await out('exec', 'ubr-client', 'wget', '-qO-', 'http://www:8000/'),
    /page of/,
    'network alias resolves',
  );
  assert.match(
    await out('exec', 'ubr-client', 'wget', '-qO-', 'http://ubr-web.ubr-app:8000/'),
    /page of/,
    'name qualified by the network resolves',
  );
  assert.equal(await code('ubr-client', 'ping', '-c', '1', '-W', '2', 'ubr-web'), 0, 'ping by name');
  assert.match(await out('exec', 'ubr-client', 'cat', '/etc/resolv.conf'), /^nameserver 127\.0\.0\.11$/m);

  const stranger = (await inspect('ubr-other')).IPAM.Config[0].Subnet;
  assert.equal(stranger, '172.20.0.0/16');
  assert.notEqual(
    await code('ubr-stranger', 'wget', '-q', '-T', '2', '-O-', `http://${ep.IPAddress}:8000/`),
    0,
    'isolation between user bridges',
  );
  assert.notEqual(await code('ubr-stranger', 'ping', '-c', '1', '-W', '1', ep.IPAddress), 0);
  assert.notEqual(await code('ubr-stranger', 'nslookup', 'ubr-web'), 0, 'names of other networks do not resolve');

  // Default bridge keeps no name resolution, and is isolated from user bridges too.
  await docker('run', '-d', '--name', 'ubr-legacy', IMG, 'sleep', '300');
  assert.notEqual(await code('ubr-legacy', 'wget', '-q', '-T', '2', '-O-', `http://${ep.IPAddress}:8000/`), 0);

  assert.match(
    await fail('network', 'rm', 'ubr-app'),
    /error while removing network: network ubr-app id [a-f0-9]{64} has active endpoints/,
  );
  await docker('rm', '-f', 'ubr-web', 'ubr-client', 'ubr-stranger', 'ubr-legacy');
  await docker('network', 'rm', 'ubr-app', 'ubr-other');
});

test('--ip, --ip-range and -p on a user bridge; --ip needs a user subnet', async () => {
  await docker('network', 'create', '--subnet', '10.78.0.0/24', '--ip-range', '10.78.0.128/25', 'ubr-fixed');
  assert.deepEqual((await inspect('ubr-fixed')).IPAM.Config, [
    { Subnet: '10.78.0.0/24', IPRange: '10.78.0.128/25', Gateway: '10.78.0.1' },
  ]);
  await docker('network', 'create', 'ubr-auto');
  assert.match(
    await fail('run', '-d', '--network', 'ubr-auto', '--ip', '172.19.0.50', IMG, 'true'),
    /user specified IP address is supported only when connecting to networks with user configured subnets/,
  );
  await docker(
    'run',
    '-d',
    '--name',
    'ubr-fixed-web',
    '--network',
    'ubr-fixed',
    '--ip',
    '10.78.0.50',
    '-p',
    '18093:8000',
    IMG,
    ...SERVE,
  );
  const info = JSON.parse(await out('inspect', 'ubr-fixed-web'))[0];
  assert.equal(info.NetworkSettings.Networks['ubr-fixed'].IPAddress, '10.78.0.50');
  assert.deepEqual(info.NetworkSettings.Networks['ubr-fixed'].IPAMConfig, { IPv4Address: '10.78.0.50' });
  const page = await waitFor(
    'the published port',
    async () => (await d.inNs('busybox', ['wget', '-qO-', 'http://127.0.0.1:18093/'], { allowFail: true })).stdout,
  );
  assert.match(page, /page of/);
  assert.match(
    await fail('run', '-d', '--network', 'ubr-fixed', '--ip', '10.78.0.50', IMG, 'sleep', '5'),
    /Address already in use/,
  );
  await docker('run', '-d', '--name', 'ubr-dyn', '--network', 'ubr-fixed', IMG, 'sleep', '300');
  assert.equal(
    await out('inspect', '--format', '{{(index .NetworkSettings.Networks "ubr-fixed").IPAddress}}', 'ubr-dyn'),
    '10.78.0.128',
    'dynamic addresses come from the range',
  );
  await docker('rm', '-f', 'ubr-fixed-web', 'ubr-dyn');
  // The failed run left a created container holding nothing.
  for (const id of (await out('ps', '-aq', '--filter', 'network=ubr-fixed')).split('\n').filter(Boolean))
    await docker('rm', '-f', id);
  await docker('network', 'rm', 'ubr-fixed', 'ubr-auto');
});

test('--internal: no route out, and the others on it still answer', async () => {
  await docker('network', 'create', '--internal', 'ubr-int');
  await docker('network', 'create', 'ubr-ext');
  assert.equal((await inspect('ubr-int')).Internal, true);
  await docker('run', '-d', '--name', 'ubr-int-web', '--network', 'ubr-int', IMG, ...SERVE);
  await docker('run', '-d', '--name', 'ubr-int-client', '--network', 'ubr-int', IMG, 'sleep', '300');
  await docker('run', '-d', '--name', 'ubr-ext-web', '--network', 'ubr-ext', IMG, ...SERVE);
  const routes = await out('exec', 'ubr-int-client', 'ip', 'route');
  assert.doesNotMatch(routes, /default/, 'no default route on an internal network');
  assert.match(
    await waitFor(
      'httpd on the internal network',
      async () =>
        (await d.docker(['exec', 'ubr-int-client', 'wget', '-qO-', 'http://ubr-int-web:8000/'], { allowFail: true }))
          .stdout,
    ),
    /page of/,
  );
  const ext = JSON.parse(await out('inspect', 'ubr-ext-web'))[0].NetworkSettings.Networks['ubr-ext'].IPAddress;
  assert.notEqual(
    await code('ubr-int-client', 'wget', '-q', '-T', '2', '-O-', `http://${ext}:8000/`),
    0,
    'nothing beyond the internal network',
  );
  // Even with a route added by hand, the daemon does not forward out of the internal bridge.
  const gw = (await inspect('ubr-int')).IPAM.Config[0].Gateway;
  await d.inNs('nsenter', [
    '-t',
    String(JSON.parse(await out('inspect', 'ubr-int-client'))[0].State.Pid),
    '-n',
    'ip',
    'route',
    'add',
    'default',
    'via',
    gw,
  ]);
  assert.notEqual(
    await code('ubr-int-client', 'wget', '-q', '-T', '2', '-O-', `http://${ext}:8000/`),
    0,
    'forwarding out of an internal bridge is dropped',
  );
  await docker('rm', '-f', 'ubr-int-web', 'ubr-int-client', 'ubr-ext-web');
  await docker('network', 'rm', 'ubr-int', 'ubr-ext');
});

test('network connect/disconnect of a bridge network, running and stopped containers', async () => {
  await docker('network', 'create', 'ubr-a');
  await docker('network', 'create', 'ubr-b');
  await docker('run', '-d', '--name', 'ubr-srv', '--network', 'ubr-b', IMG, ...SERVE);
  await docker('run', '-d', '--name', 'ubr-mover', '--network', 'ubr-a', IMG, 'sleep', '300');
  assert.notEqual(
    await code('ubr-mover', 'wget', '-q', '-T', '2', '-O-', 'http://ubr-srv:8000/'),
    0,
    'not on ubr-b yet',
  );
  await docker('network', 'connect', '--alias', 'mover', 'ubr-b', 'ubr-mover');
  const nets = JSON.parse(await out('inspect', 'ubr-mover'))[0].NetworkSettings.Networks;
  assert.deepEqual(Object.keys(nets).sort(), ['ubr-a', 'ubr-b']);
  assert.match(await out('exec', 'ubr-mover', 'ip', 'addr', 'show', 'eth1'), /inet 172\./);
  assert.match(
    await waitFor(
      'ubr-srv by name after connect',
      async () =>
        (await d.docker(['exec', 'ubr-mover', 'wget', '-qO-', 'http://ubr-srv:8000/'], { allowFail: true })).stdout,
    ),
    /page of/,
  );
  assert.equal(await code('ubr-srv', 'ping', '-c', '1', '-W', '2', 'mover'), 0, 'the alias given at connect resolves');
  assert.match(
    await fail('network', 'connect', 'ubr-b', 'ubr-mover'),
    /endpoint with name ubr-mover already exists in network ubr-b/,
  );

  await docker('network', 'disconnect', 'ubr-b', 'ubr-mover');
  assert.deepEqual(Object.keys(JSON.parse(await out('inspect', 'ubr-mover'))[0].NetworkSettings.Networks), ['ubr-a']);
  assert.notEqual(await code('ubr-mover', 'ip', 'link', 'show', 'eth1'), 0, 'the interface is gone');
  assert.match(await fail('network', 'disconnect', 'ubr-b', 'ubr-mover'), /is not connected to network ubr-b/);

  // The default bridge as an extra network, and back out.
  await docker('network', 'connect', 'bridge', 'ubr-mover');
  const withBridge = JSON.parse(await out('inspect', 'ubr-mover'))[0].NetworkSettings.Networks;
  assert.match(withBridge.bridge?.IPAddress ?? '', /^172\.17\./);
  assert.match(
    await out('exec', 'ubr-mover', 'ip', 'route'),
    /^default via 172\.19\.0\.1 /m,
    'the first network keeps the way out',
  );
  assert.match(
    await fail('network', 'connect', 'bridge', 'ubr-mover'),
    /endpoint with name ubr-mover already exists in network bridge/,
  );
  await docker('network', 'disconnect', 'bridge', 'ubr-mover');
  assert.equal(JSON.parse(await out('inspect', 'ubr-mover'))[0].NetworkSettings.Networks.bridge, undefined);
  assert.match(
    await fail('network', 'connect', 'host', 'ubr-mover'),
    /container cannot be disconnected from host network or connected to host network/,
  );

  // A stopped container is connected at its next start.
  await docker('create', '--name', 'ubr-later', IMG, 'sleep', '300');
  await docker('network', 'connect', 'ubr-b', 'ubr-later');
  await docker('start', 'ubr-later');
  const later = JSON.parse(await out('inspect', 'ubr-later'))[0].NetworkSettings.Networks;
  assert.ok(later['ubr-b']?.IPAddress, 'joined ubr-b at start');
  assert.ok(later.bridge?.IPAddress, 'and its default bridge');
  assert.equal(
    await out('ps', '--filter', 'network=ubr-b', '--format', '{{.Names}}').then((s) => s.split('\n').sort().join(' ')),
    'ubr-later ubr-srv',
  );
  await docker('rm', '-f', 'ubr-srv', 'ubr-mover', 'ubr-later');
  await docker('network', 'rm', 'ubr-a', 'ubr-b');
});

test('network prune removes unused user bridges only; a restart keeps networks and addresses', async () => {
  await docker('network', 'create', '--label', 'keep=no', 'ubr-unused');
  const kept = await out('network', 'create', 'ubr-kept');
  await docker('run', '-d', '--name', 'ubr-stay', '--restart', 'always', '--network', 'ubr-kept', IMG, ...SERVE);
  await docker('run', '-d', '--name', 'ubr-peer', '--network', 'ubr-kept', IMG, 'sleep', '600');
  const ip = JSON.parse(await out('inspect', 'ubr-stay'))[0].NetworkSettings.Networks['ubr-kept'].IPAddress;
  assert.match(await out('network', 'prune', '-f'), /ubr-unused/);
  const names = await out('network', 'ls', '--format', '{{.Name}}');
  assert.doesNotMatch(names, /ubr-unused/);
  assert.match(names, /^ubr-kept$/m);
  assert.match(names, /^bridge$/m);

  await d.stop();
  await d.start();
  const n = await inspect('ubr-kept');
  assert.equal(n.Id, kept);
  assert.equal(
    JSON.parse(await out('inspect', 'ubr-stay'))[0].NetworkSettings.Networks['ubr-kept'].IPAddress,
    ip,
    'the address survives',
  );
  assert.ok(n.Containers[JSON.parse(await out('inspect', 'ubr-stay'))[0].Id], 'the endpoint is still listed');
  assert.match(
    await waitFor(
      'name resolution after restart',
      async () =>
        (await d.docker(['exec', 'ubr-peer', 'wget', '-qO-', 'http://ubr-stay:8000/'], { allowFail: true })).stdout,
    ),
    /page of/,
  );
  await docker('rm', '-f', 'ubr-stay', 'ubr-peer');
  await docker('network', 'rm', 'ubr-kept');
  assert.doesNotMatch(await out('network', 'ls', '--format', '{{.Name}}'), /ubr-/);
});

test('a container whose network was removed does not start; an unknown network is refused at run', async () => {
  await docker('network', 'create', 'ubr-gone');
  await docker(
    'create',
    '--name',
    'ubr-orphan',
    '--network',
    'ubr-gone',
    '--network-alias',
    'orphan',
    IMG,
    'sleep',
    '300',
  );
  const created = JSON.parse(await out('inspect', 'ubr-orphan'))[0].NetworkSettings.Networks;
  assert.deepEqual(Object.keys(created), ['ubr-gone'], 'a created container shows the network it will join');
  assert.equal(created['ubr-gone'].IPAddress, '');
  assert.deepEqual(created['ubr-gone'].Aliases, ['orphan']);
  await docker('network', 'rm', 'ubr-gone');
  assert.match(await fail('start', 'ubr-orphan'), /network ubr-gone not found/);
  assert.equal(await out('inspect', '--format', '{{.State.Status}}', 'ubr-orphan'), 'created');
  assert.match(await fail('run', '--network', 'ubr-never', IMG, 'true'), /network ubr-never not found/);
  await docker('rm', 'ubr-orphan');
});

test('pools the host already routes are skipped; network events for create, connect, disconnect, destroy', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await d.inNs('ip', ['link', 'add', 'ubrdummy', 'type', 'bridge']);
  try {
    await d.inNs('ip', ['addr', 'add', '172.19.3.1/24', 'dev', 'ubrdummy']);
    await d.inNs('ip', ['link', 'set', 'ubrdummy', 'up']);
    await docker('network', 'create', 'ubr-routed');
    assert.equal((await inspect('ubr-routed')).IPAM.Config[0].Subnet, '172.20.0.0/16');
  } finally {
    await d.inNs('ip', ['link', 'delete', 'ubrdummy']);
  }
  await docker('run', '--rm', '--network', 'ubr-routed', IMG, 'true');
  await docker('network', 'rm', 'ubr-routed');
  const until = Math.floor(Date.now() / 1000) + 1;
  const events = await out(...eventsBetween(since, until, ['type=network'], '{{.Action}} {{.Actor.Attributes.name}}'));
  const mine = events
    .split('\n')
    .filter((l) => l.endsWith(' ubr-routed'))
    .map((l) => l.split(' ')[0]);
  assert.deepEqual(mine, ['create', 'connect', 'disconnect', 'destroy']);
});

test('--ipv6 bridge: a v6 address per container, shown by inspect, reachable between containers and to the gateway', async () => {
  // As docker-py and the CLI send it: an IPv6 subnet with (or without) an IPv4 one.
  await docker('network', 'create', '--ipv6', '--subnet', '10.78.0.0/24', '--subnet', 'fd00:78::/64', 'ubr-six');
  const n = await inspect('ubr-six');
  assert.equal(n.EnableIPv6, true);
  assert.deepEqual(n.IPAM.Config, [{ Subnet: '10.78.0.0/24', Gateway: '10.78.0.1' }, { Subnet: 'fd00:78::/64' }]);
  const dev = `br-${n.Id.slice(0, 12)}`;
  const br = JSON.parse((await d.inNs('ip', ['-j', '-6', 'addr', 'show', 'dev', dev])).stdout)[0];
  assert.ok(
    br.addr_info.some((a: { local: string; prefixlen: number }) => a.local === 'fd00:78::1' && a.prefixlen === 64),
    'the bridge holds the v6 gateway',
  );

  await docker('run', '-d', '--name', 'ubr-six-a', '--network', 'ubr-six', IMG, 'sleep', '300');
  await docker(
    'run',
    '-d',
    '--name',
    'ubr-six-b',
    '--network',
    'ubr-six',
    '--ip6',
    'fd00:78::beef',
    IMG,
    'sleep',
    '300',
  );
  const a = JSON.parse(await out('inspect', 'ubr-six-a'))[0].NetworkSettings.Networks['ubr-six'];
  const b = JSON.parse(await out('inspect', 'ubr-six-b'))[0].NetworkSettings.Networks['ubr-six'];
  assert.equal(a.GlobalIPv6Address, 'fd00:78::2');
  assert.equal(a.GlobalIPv6PrefixLen, 64);
  assert.equal(a.IPv6Gateway, 'fd00:78::1');
  assert.equal(a.IPAMConfig, null, 'nothing was asked for');
  assert.equal(b.GlobalIPv6Address, 'fd00:78::beef');
  assert.deepEqual(b.IPAMConfig, { IPv6Address: 'fd00:78::beef' });
  const members = (await inspect('ubr-six')).Containers;
  assert.deepEqual(
    Object.values(members)
      .map((c) => (c as { IPv6Address: string }).IPv6Address)
      .sort(),
    ['fd00:78::2/64', 'fd00:78::beef/64'],
  );

  // Over IPv6: container to container, and to the gateway on the bridge.
  await waitFor(
    'a pings b over v6',
    async () => (await code('ubr-six-a', 'ping', '-6', '-c', '1', '-W', '2', 'fd00:78::beef')) === 0,
  );
  assert.equal(
    await code('ubr-six-b', 'ping', '-6', '-c', '1', '-W', '2', 'fd00:78::1'),
    0,
    'b pings the gateway over v6',
  );
  await docker('exec', '-d', 'ubr-six-b', 'sh', '-c', 'echo six | nc -l -p 7006');
  await waitFor(
    'a reads from b over v6 TCP',
    async () =>
      (
        await d.docker(['exec', 'ubr-six-a', 'sh', '-c', 'nc -w 2 fd00:78::beef 7006 </dev/null'], { allowFail: true })
      ).stdout.trim() === 'six',
  );

  // Bad input, in dockerd's words, and nothing stored.
  assert.match(
    await fail('run', '--network', 'ubr-six', '--ip6', 'fd00:79::1', IMG, 'true'),
    /no configured subnet or ip-range contain the IP address fd00:79::1/,
  );
  assert.match(
    await fail('run', '--network', 'ubr-six', '--ip6', 'fd00:78::beef', IMG, 'true'),
    /Address already in use/,
  );
  assert.match(
    await fail('network', 'create', '--ipv6', 'ubr-six-nopool'),
    /could not find an available, non-overlapping IPv6 address pool/,
  );
  assert.match(
    await fail('network', 'create', '--ipv6', '--subnet', 'fd00:78:0:0:1::/80', 'ubr-six-overlap'),
    /Pool overlaps/,
  );
  assert.doesNotMatch(await out('network', 'ls', '--format', '{{.Name}}'), /ubr-six-/);

  await docker('rm', '-f', 'ubr-six-a', 'ubr-six-b');
  await docker('network', 'rm', 'ubr-six');
});
