import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/run.js';
import { createLogger } from '../../src/util/log.js';
import { defaultConfig, daemonPaths, type DaemonConfig } from '../../src/engine/config.js';
import { BridgeNetwork } from '../../src/engine/network/bridge.js';
import { BRIDGE_STATE_FILE, DEFAULT_BRIDGE, NFT_TABLE, BRIDGE_NAT_CHAIN } from '../../src/engine/network/names.js';
import { createNetns, deleteNetns, inNetns, uniqueName } from '../helpers/netns.js';
import { startProcess, stopProcess, waitFor } from '../helpers/process.js';
import { TEST_ROOT, startDaemon } from '../helpers/daemon.js';

// The daemon's netns holds the bridge; "containers" are sleep processes in their own netns
// (unshare -n); an "outside" netns stands for the world beyond the daemon's uplink.
let daemonNs: string;
let outsideNs: string;
let dir: string;
let config: DaemonConfig;
const sleepers: number[] = [];
const log = createLogger('bridge-test', 'warn');
const target = () => ({ kind: 'named' as const, name: daemonNs });

async function fakeContainer(): Promise<number> {
  const child = startProcess('unshare', ['-n', 'sleep', '600'], path.join(dir, 'sleep.log'));
  const pid = child.pid!;
  sleepers.push(pid);
  const ownNet = fs.readlinkSync('/proc/self/ns/net');
  await waitFor(
    'the fake container to have its own netns',
    () =>
      fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep' &&
      fs.readlinkSync(`/proc/${pid}/ns/net`) !== ownNet,
  );
  return pid;
}

const inContainer = (pid: number, cmd: string, args: string[]) =>
  run('nsenter', ['-t', String(pid), '-n', '--', cmd, ...args], { allowFail: true });
const ping = async (pid: number, ip: string) =>
  (await inContainer(pid, 'busybox', ['ping', '-c', '1', '-W', '2', ip])).code === 0;

before(async () => {
  daemonNs = await createNetns('shtbr');
  outsideNs = await createNetns('shtbro');
  dir = path.join(TEST_ROOT, uniqueName('shtbr'));
  fs.mkdirSync(dir, { recursive: true });
  config = { ...defaultConfig(), dataRoot: path.join(dir, 'data'), execRoot: path.join(dir, 'exec') };
  // The daemon's uplink: 192.0.2.1 here, 192.0.2.2 outside; outside has no route back to 172.17/16.
  await run('ip', ['-n', daemonNs, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'out0', 'netns', outsideNs]);
  await run('ip', ['-n', daemonNs, 'addr', 'add', '192.0.2.1/24', 'dev', 'up0']);
  await run('ip', ['-n', daemonNs, 'link', 'set', 'up0', 'up']);
  await run('ip', ['-n', outsideNs, 'addr', 'add', '192.0.2.2/24', 'dev', 'out0']);
  await run('ip', ['-n', outsideNs, 'link', 'set', 'out0', 'up']);
});

after(async () => {
  for (const pid of sleepers) await stopProcess(pid, 'SIGKILL');
  if (daemonNs) await deleteNetns(daemonNs);
  if (outsideNs) await deleteNetns(outsideNs);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('containers on the default bridge reach each other, the gateway and (masqueraded) the outside', async () => {
  const net = await BridgeNetwork.open(config, log, target());
  const c1 = await fakeContainer();
  const c2 = await fakeContainer();
  const e1 = await net.connect('c1', c1);
  const e2 = await net.connect('c2', c2);
  assert.equal(e1.IPAddress, '172.17.0.2');
  assert.equal(e1.MacAddress, '02:42:ac:11:00:02');
  assert.equal(e1.Gateway, '172.17.0.1');
  assert.equal(e1.IPPrefixLen, 16);
  assert.equal(e1.NetworkID, net.networkIds.bridge);
  assert.equal(e2.IPAddress, '172.17.0.3');
  assert.deepEqual(await net.connect('c1', c1), e1, 'connect is idempotent per container');

  const eth0 = JSON.parse((await inContainer(c1, 'ip', ['-j', 'addr', 'show', 'dev', 'eth0'])).stdout)[0];
  assert.equal(eth0.address, '02:42:ac:11:00:02');
  assert.ok(await ping(c1, '172.17.0.3'), 'c1 → c2');
  assert.ok(await ping(c2, '172.17.0.2'), 'c2 → c1');
  assert.ok(await ping(c1, '172.17.0.1'), 'c1 → gateway');
  assert.ok(await ping(c1, '127.0.0.1'), 'lo is up');
  assert.ok(
    await ping(c2, '192.0.2.2'),
    'egress through the uplink needs masquerade: outside has no route to 172.17/16',
  );

  const chain = await inNetns(daemonNs, 'nft', ['list', 'chain', NFT_TABLE.family, NFT_TABLE.name, BRIDGE_NAT_CHAIN]);
  assert.match(chain.stdout, /ip saddr 172\.17\.0\.0\/16 oifname != "shoal0" masquerade/);
  assert.equal((await inNetns(daemonNs, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim(), '1');
});

test('IPAM persists across a restart, frees on disconnect and forgets endpoints whose container died', async () => {
  const stateFile = path.join(daemonPaths(config).network, BRIDGE_STATE_FILE);
  assert.ok(fs.existsSync(stateFile));
  const [c1, c2] = sleepers;

  // A restart adopts the bridge, the table and the endpoints (both veths still exist).
  const net = await BridgeNetwork.open(config, log, target());
  assert.deepEqual(
    net
      .endpoints()
      .map((e) => e.ip)
      .sort(),
    ['172.17.0.2', '172.17.0.3'],
  );
  const bridges = JSON.parse((await inNetns(daemonNs, 'ip', ['-j', 'link', 'show', 'type', 'bridge'])).stdout);
  assert.deepEqual(
    bridges.map((b: { ifname: string }) => b.ifname),
    [DEFAULT_BRIDGE.device],
  );
  const tables = (await inNetns(daemonNs, 'nft', ['list', 'tables'])).stdout.trim().split('\n');
  assert.deepEqual(tables, ['table ip shoal']);
  assert.equal(
    (await inNetns(daemonNs, 'nft', ['list', 'chain', 'ip', 'shoal', BRIDGE_NAT_CHAIN])).stdout.match(/ masquerade$/gm)
      ?.length,
    1,
    'one rule after a restart',
  );

  const c3 = await fakeContainer();
  assert.equal((await net.connect('c3', c3)).IPAddress, '172.17.0.4', 'addresses in use are never handed out twice');
  assert.ok(await ping(c3, '172.17.0.2'), 'c3 → c1 after the restart');

  await net.disconnect('c1');
  assert.ok(!(await ping(c3, '172.17.0.2')), 'c1 is off the bridge');
  assert.equal((await inContainer(c1, 'ip', ['link', 'show', 'eth0'])).code, 1, 'c1 lost its eth0');
  await net.disconnect('c1'); // twice is fine

  // c2 dies while the daemon is down: its veth goes with its netns, so its address is free after the restart.
  await stopProcess(c2, 'SIGKILL');
  await waitFor(
    'c2’s veth to vanish',
    async () =>
      (await inNetns(daemonNs, 'ip', ['-j', 'link', 'show', 'type', 'veth'])).stdout.match(/veth/g)?.length === 1,
  );
  const again = await BridgeNetwork.open(config, log, target());
  assert.deepEqual(
    again.endpoints().map((e) => e.containerId),
    ['c3'],
  );
  const saved = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  assert.deepEqual(Object.values(saved.pool.allocated), ['172.17.0.4']);
  assert.equal(saved.networkIds.bridge, net.networkIds.bridge, 'network IDs are stable');
});

test('docker network ls / inspect show bridge, host and none in Docker’s shapes', async () => {
  const d = await startDaemon({ prefix: 'shtbrd' });
  try {
    const ls = await d.docker(['network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}']);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), [
      'bridge bridge local',
      'host host local',
      'none null local',
    ]);
    const [bridge] = JSON.parse((await d.docker(['network', 'inspect', 'bridge'])).stdout);
    assert.equal(bridge.Name, 'bridge');
    assert.match(bridge.Id, /^[0-9a-f]{64}$/);
    assert.deepEqual(bridge.IPAM.Config, [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }]);
    assert.equal(bridge.Options['com.docker.network.bridge.default_bridge'], 'true');
    const byPrefix = JSON.parse((await d.docker(['network', 'inspect', bridge.Id.slice(0, 12)])).stdout);
    assert.equal(byPrefix[0].Name, 'bridge');
    const filtered = await d.docker(['network', 'ls', '-q', '--filter', 'driver=null']);
    assert.equal(filtered.stdout.trim().length, 12);
    const missing = await d.docker(['network', 'inspect', 'nosuchnet'], { allowFail: true });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /network nosuchnet not found/);
    // The daemon made its bridge in its own netns.
    const link = JSON.parse((await d.inNs('ip', ['-j', 'addr', 'show', 'dev', DEFAULT_BRIDGE.device])).stdout)[0];
    assert.ok(link.addr_info.some((a: { local: string }) => a.local === DEFAULT_BRIDGE.gateway));
  } finally {
    await d.destroy();
  }
});
