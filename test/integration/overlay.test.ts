import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/run.js';
import { GW_BRIDGE, NFT_CONTAINER_TABLE, NFT_INGRESS_TABLE, NFT_NODE_TABLE } from '../../src/agent/network/names.js';
import { TEST_ROOT } from '../helpers/daemon.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from '../helpers/process.js';
import { OverlayLab, UPSTREAM_ANSWER, inPid, whoAnswers, type LabNode } from '../helpers/overlay-lab.js';

// Three nodes on one kernel, each with its own namespace and reconciler; "containers" are
// busybox httpd processes in new namespaces. The service `web` has tasks on n1 and n2 only,
// so n3 answers on the routing mesh without a backend of its own.
const APP = 'a'.repeat(64);
const INGRESS = 'b'.repeat(64);
const lab = new OverlayLab(TEST_ROOT);
let n1: LabNode;
let n2: LabNode;
let n3: LabNode;
let client: { pid: number };

const names = async (from: { pid: number } | { ns: string }, url: string, n: number) => {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) seen.push(await whoAnswers(from, url));
  return seen;
};

/** A-records `busybox nslookup` printed (the server's own line carries a port and is left out). */
async function resolve(pid: number, name: string): Promise<string[]> {
  const r = await inPid(pid, 'busybox', ['nslookup', '-type=a', name, GW_BRIDGE.gateway]);
  return [...r.stdout.matchAll(/^Address:?\s*\d*:?\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]).sort();
}

before(async () => {
  await lab.start(3);
  [n1, n2, n3] = lab.nodes;
  lab.networks.push(
    { id: APP, name: 'app', vni: 4200, subnet: '10.10.0.0/24', gateway: '10.10.0.1' },
    { id: INGRESS, name: 'ingress', vni: 4096, subnet: '10.255.0.0/24', gateway: '10.255.0.1', ingress: true },
  );
  lab.services.push(
    {
      id: 'svcweb',
      name: 'web',
      endpointMode: 'vip',
      vips: { [APP]: '10.10.0.2', [INGRESS]: '10.255.0.2' },
      ports: [{ target: 8000, published: 30000, protocol: 'tcp', mode: 'ingress' }],
    },
    {
      id: 'svcrr',
      name: 'rr',
      endpointMode: 'dnsrr',
      vips: {},
      ports: [{ target: 8000, published: 30080, protocol: 'tcp', mode: 'host' }],
    },
  );
  await lab.startContainer('w1', 'n1', { [APP]: '10.10.0.3', [INGRESS]: '10.255.0.3' }, 'web');
  await lab.startContainer('w2', 'n2', { [APP]: '10.10.0.4', [INGRESS]: '10.255.0.4' }, 'web');
  await lab.startContainer('w3', 'n2', { [APP]: '10.10.0.5', [INGRESS]: '10.255.0.5' }, 'web');
  await lab.startContainer('r1', 'n2', { [APP]: '10.10.0.6' }, 'rr');
  client = await lab.startContainer('c1', 'n1', { [APP]: '10.10.0.10' });
  for (const n of lab.nodes) await lab.openNode(n);
  await lab.applyAll();
});

after(async () => {
  await lab.destroy();
});

test('overlay: containers on different nodes reach each other by IP over VXLAN (static FDB, no learning)', async () => {
  assert.equal(await whoAnswers(client, 'http://10.10.0.4:8000/name'), 'w2');
  assert.equal(await whoAnswers(client, 'http://10.10.0.3:8000/name'), 'w1', 'same node, same bridge');
  const w2 = lab.containers.find((c) => c.name === 'w2')!;
  assert.equal(await whoAnswers(w2, 'http://10.10.0.10:8000/name'), 'c1', 'and back');
  const sb = `${n1.prefix}-${APP.slice(0, 12)}`;
  const [vx] = JSON.parse((await run('ip', ['-n', sb, '-j', '-d', 'link', 'show', 'vxlan0'])).stdout);
  assert.equal(vx.linkinfo.info_data.id, 4200);
  assert.equal(vx.linkinfo.info_data.port, 4789);
  assert.equal(vx.linkinfo.info_data.learning, false);
  const fdb = JSON.parse((await run('bridge', ['-n', sb, '-j', 'fdb', 'show', 'dev', 'vxlan0'])).stdout) as {
    mac: string;
    dst?: string;
  }[];
  assert.ok(!fdb.some((f) => f.mac === '00:00:00:00:00:00'), 'no flooding entry');
  assert.ok(
    fdb.some((f) => f.mac === '02:42:0a:0a:00:04' && f.dst === n2.addr),
    'w2 is programmed towards n2',
  );
  assert.ok(!fs.existsSync(`/run/netns/${n3.prefix}-${APP.slice(0, 12)}`), 'n3 runs nothing on app: no sandbox for it');
  // Egress: the LAN has no route to the gateway bridge, so this needs the node's masquerade.
  assert.equal(
    (await inPid(client.pid, 'busybox', ['ping', '-c', '1', '-W', '2', `${lab.clientAddr}`])).code,
    0,
    'egress through the gateway bridge',
  );
  assert.notEqual(
    (await inPid(client.pid, 'busybox', ['ping', '-c', '1', '-W', '1', '172.18.0.3'])).code,
    0,
    'no container-to-container traffic over the gateway bridge',
  );
});

test('dns: service → VIP, tasks.<service> → task IPs, dnsrr, container names, the rest forwarded', async () => {
  await waitFor('the resolver', async () => (await resolve(client.pid, 'web')).length > 0);
  assert.deepEqual(await resolve(client.pid, 'web'), ['10.10.0.2']);
  assert.deepEqual(await resolve(client.pid, 'tasks.web'), ['10.10.0.3', '10.10.0.4', '10.10.0.5']);
  assert.deepEqual(await resolve(client.pid, 'rr'), ['10.10.0.6']);
  assert.deepEqual(await resolve(client.pid, 'w2'), ['10.10.0.4'], 'a container on another node, by name');
  assert.deepEqual(await resolve(client.pid, 'somewhere.test'), [UPSTREAM_ANSWER], 'forwarded to the upstream');
  // w1 asks too, but it is on the ingress network as well: the ingress network has no service
  // discovery (as libnetwork: no DNS records on ingress), so only the app network's VIP.
  const w1 = lab.containers.find((c) => c.name === 'w1')!;
  assert.deepEqual(await resolve(w1.pid, 'web'), ['10.10.0.2']);
});

test('vip: connections to the VIP go round robin to every task, on every node', async () => {
  const seen = await names(client, 'http://10.10.0.2:8000/name', 6);
  assert.deepEqual([...new Set(seen)].sort(), ['w1', 'w2', 'w3']);
  // By name: what the resolver gives for `web` is the VIP that balances.
  const [vip] = await resolve(client.pid, 'web');
  assert.ok(['w1', 'w2', 'w3'].includes(await whoAnswers(client, `http://${vip}:8000/name`)));
});

test('routing mesh: the published port answers on every node, also one without a task, round robin', async () => {
  for (const n of lab.nodes) {
    const seen = await names({ ns: lab.clientNs }, `http://${n.addr}:30000/name`, 6);
    assert.deepEqual([...new Set(seen)].sort(), ['w1', 'w2', 'w3'], `via ${n.name}: ${seen.join(',')}`);
  }
  assert.equal(
    await whoAnswers({ ns: n3.ns }, `http://${n3.addr}:30000/name`),
    'w1',
    'from the node itself, continuing the rotation',
  );
  assert.notEqual(
    await whoAnswers(client, `http://${n1.addr}:30000/name`),
    '',
    'from a container to its own node (hairpin)',
  );
  assert.notEqual(await whoAnswers(client, `http://${n2.addr}:30000/name`), '', 'from a container to another node');
});

test('host-mode publish answers only where the task runs', async () => {
  assert.equal(await whoAnswers({ ns: lab.clientNs }, `http://${n2.addr}:30080/name`), 'r1');
  assert.equal(await whoAnswers({ ns: lab.clientNs }, `http://${n1.addr}:30080/name`), '');
});

test('scale down and up: rules follow the tasks', async () => {
  await lab.stopContainer('w3');
  await lab.applyAll();
  const down = await names(client, 'http://10.10.0.2:8000/name', 4);
  assert.deepEqual([...new Set(down)].sort(), ['w1', 'w2']);
  const mesh = await names({ ns: lab.clientNs }, `http://${n3.addr}:30000/name`, 4);
  assert.deepEqual([...new Set(mesh)].sort(), ['w1', 'w2']);
  assert.deepEqual(await resolve(client.pid, 'tasks.web'), ['10.10.0.3', '10.10.0.4']);

  // Up again, this time on n3, which had no app sandbox so far.
  await lab.startContainer('w4', 'n3', { [APP]: '10.10.0.7', [INGRESS]: '10.255.0.7' }, 'web');
  await lab.applyAll();
  const up = await names(client, 'http://10.10.0.2:8000/name', 6);
  assert.deepEqual([...new Set(up)].sort(), ['w1', 'w2', 'w4']);
  const mesh2 = await names({ ns: lab.clientNs }, `http://${n1.addr}:30000/name`, 6);
  assert.deepEqual([...new Set(mesh2)].sort(), ['w1', 'w2', 'w4']);
  const ruleset = (await run('ip', ['netns', 'exec', n1.ns, 'nft', 'list', 'table', 'ip', NFT_NODE_TABLE])).stdout;
  assert.match(ruleset, /tcp dport 30000 dnat (ip )?to 172\.18\.0\.2\n/);
});

test('restart: a new reconciler adopts the kernel state without dropping an open connection', async () => {
  // A long-lived connection from c1 through the VIP; every web task listens on :9000.
  const listeners = lab.containers.filter((c) => c.service === 'web');
  const ncs: ChildProcess[] = [];
  for (const w of listeners) {
    // stdin stays open: busybox nc ends the connection when its stdin ends.
    const out = fs.openSync(path.join(lab.dir, `nc-${w.name}.out`), 'a');
    const p = spawn('nsenter', ['-t', String(w.pid), '-n', '--', 'busybox', 'nc', '-l', '-p', '9000'], {
      stdio: ['pipe', out, 'ignore'],
    });
    fs.closeSync(out);
    lab.track(p.pid!);
    ncs.push(p);
  }
  await waitFor('listeners', async () => {
    for (const w of listeners)
      if (!(await inPid(w.pid, 'busybox', ['netstat', '-ltn'])).stdout.includes(':9000')) return false;
    return true;
  });
  const conn = spawn('nsenter', ['-t', String(client.pid), '-n', '--', 'busybox', 'nc', '10.10.0.2', '9000'], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  lab.track(conn.pid!);
  conn.stdin.write('before\n');
  const got = () => listeners.map((w) => fs.readFileSync(path.join(lab.dir, `nc-${w.name}.out`), 'utf8')).join('');
  await waitFor('the first line', () => got().includes('before'));
  const ifindex = async () =>
    (await run('ip', ['-n', `${n1.prefix}-${APP.slice(0, 12)}`, '-j', 'link', 'show'])).stdout;
  const linksBefore = await ifindex();

  for (const n of lab.nodes) await n.reconciler!.close();
  for (const n of lab.nodes) await lab.openNode(n);
  const reports = [];
  for (const n of lab.nodes) reports.push(await n.reconciler!.applyPlan(lab.planFor(n)));
  for (const r of reports) assert.deepEqual(r.errors, []);
  assert.equal(
    reports.reduce((s, r) => s + r.ipBatches + r.bridgeBatches, 0),
    0,
    'everything adopted: no device or entry re-made',
  );
  assert.equal(await ifindex(), linksBefore, 'sandbox devices untouched');

  conn.stdin.write('after\n');
  await waitFor('the second line on the same connection', () => got().includes('before\nafter'));
  conn.stdin.end();
  for (const p of ncs) p.stdin?.end();
  assert.equal(
    (await whoAnswers({ ns: lab.clientNs }, `http://${n3.addr}:30000/name`)) !== '',
    true,
    'mesh still answers',
  );

  // A container that arrives after the restart gets a gateway address nobody adopted holds.
  const c2 = await lab.startContainer('c2', 'n1', { [APP]: '10.10.0.11' });
  await lab.applyAll();
  const gwAddrs: string[] = [];
  for (const c of lab.containers.filter((c) => c.node === 'n1')) {
    const out = (await inPid(c.pid, 'ip', ['-j', '-4', 'addr', 'show'])).stdout;
    for (const l of JSON.parse(out) as { addr_info: { local: string }[] }[])
      for (const a of l.addr_info) if (a.local.startsWith('172.18.')) gwAddrs.push(a.local);
  }
  assert.equal(new Set(gwAddrs).size, gwAddrs.length, `distinct gateway addresses: ${gwAddrs.join(', ')}`);
  assert.equal(await whoAnswers(c2, 'http://10.10.0.4:8000/name'), 'w2');
});

test("gateway bridge: a MAC of its own on every node (not its lowest port's), kept by the restarted reconcilers", async () => {
  // Containers came and went above: a bridge that followed its ports would have changed MAC,
  // leaving containers' ARP entries for the resolver and the way out pointing nowhere.
  for (const n of lab.nodes) {
    const sys = (f: string) => run('ip', ['netns', 'exec', n.ns, 'cat', `/sys/class/net/${GW_BRIDGE.device}/${f}`]);
    assert.equal((await sys('address')).stdout.trim(), '02:42:ac:12:00:01', n.ns);
    assert.equal((await sys('addr_assign_type')).stdout.trim(), '3', `${n.ns}: NET_ADDR_SET`);
  }
});

test('node loss: the remaining nodes drop its tasks and the mesh keeps answering', async () => {
  await run('ip', ['-n', lab.lanNs, 'link', 'set', 'l-n2', 'down']);
  for (const c of lab.containers.filter((c) => c.node === 'n2')) await lab.stopContainer(c.name);
  await lab.applyAll([n1, n3]);
  for (const n of [n1, n3]) {
    const seen = await names({ ns: lab.clientNs }, `http://${n.addr}:30000/name`, 4);
    assert.deepEqual([...new Set(seen)].sort(), ['w1', 'w4'], `via ${n.name}: ${seen.join(',')}`);
  }
  const sb = `${n1.prefix}-${APP.slice(0, 12)}`;
  const fdb = (await run('bridge', ['-n', sb, '-j', 'fdb', 'show', 'dev', 'vxlan0'])).stdout;
  assert.doesNotMatch(fdb, new RegExp(n2.addr.replace(/\./g, '\\.')), 'nothing points at the lost node any more');
});

test('cleanup: destroying every node leaves no namespace, device or table behind', async () => {
  for (const n of lab.nodes) await n.reconciler!.destroy();
  const left = fs.readdirSync('/run/netns').filter((n) => lab.nodes.some((node) => n.startsWith(`${node.prefix}-`)));
  assert.deepEqual(left, []);
  for (const n of lab.nodes) {
    const links = (await run('ip', ['-n', n.ns, '-j', 'link', 'show'])).stdout;
    assert.doesNotMatch(links, new RegExp(`${GW_BRIDGE.device}|"vg|"vx`));
    const tables = (await run('ip', ['netns', 'exec', n.ns, 'nft', 'list', 'tables'])).stdout;
    assert.doesNotMatch(tables, new RegExp(`${NFT_NODE_TABLE}|${NFT_INGRESS_TABLE}`));
  }
  for (const c of lab.containers) {
    const tables = (await inPid(c.pid, 'nft', ['list', 'tables'])).stdout;
    assert.doesNotMatch(tables, new RegExp(NFT_CONTAINER_TABLE));
    const links = JSON.parse((await inPid(c.pid, 'ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[];
    assert.deepEqual(
      links.map((l) => l.ifname),
      ['lo'],
    );
  }
});
