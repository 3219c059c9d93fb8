import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestNet, type TestNet } from '../helpers/testnet.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';

// `shoald --metrics-addr`: Prometheus text whose swarm figures match docker node ls / service ls
// (root: netns, etcd, runc, the real docker CLI).

let net: TestNet;
let mgr: TestDaemon;
let url = '';

before(async () => {
  net = await createTestNet(1);
  url = `http://${net.nodes[0].ip}:9323/metrics`;
  mgr = await startDaemon({
    ns: net.nodes[0].ns,
    prefix: 'swmet',
    extraArgs: ['--metrics-addr', `${net.nodes[0].ip}:9323`],
  });
  await importBusybox((args, o) => mgr.docker(args, o), mgr.dir, 'busybox:latest');
  await mgr.docker(['swarm', 'init', '--advertise-addr', net.nodes[0].ip]);
});

after(async () => {
  await mgr?.destroy();
  await net?.destroy();
});

/** One scrape from inside the daemon's namespace: metric name{labels} → value. */
async function scrape(): Promise<Map<string, number>> {
  const r = await mgr.inNs(process.execPath, [
    '-e',
    `fetch(${JSON.stringify(url)}).then(async (r) => { if (r.status !== 200) process.exit(2); process.stdout.write(await r.text()); })`,
  ]);
  const m = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

test('/metrics counts the nodes, tasks and services docker shows', async () => {
  await mgr.docker(['service', 'create', '--detach', '--name', 'metsvc', '--replicas', '3', 'busybox', 'sleep', '600']);
  await waitFor(
    '3/3 replicas',
    async () => (await mgr.docker(['service', 'ls', '--format', '{{.Replicas}}'])).stdout.trim() === '3/3',
    60_000,
  );
  const replicas = (await mgr.docker(['service', 'ls', '--format', '{{.Replicas}}'])).stdout.trim();
  const nodes = (await mgr.docker(['node', 'ls', '--format', '{{.Status}} {{.ManagerStatus}}'])).stdout
    .trim()
    .split('\n');
  const running = Number(replicas.split('/')[0]);
  const m = await scrape();
  assert.equal(m.get('swarm_manager_tasks_total{state="running"}'), running);
  assert.equal(m.get('swarm_manager_services_total'), 1);
  assert.equal(m.get('swarm_manager_nodes{state="ready"}'), nodes.filter((l) => l.startsWith('Ready')).length);
  assert.equal(
    m.get('swarm_manager_nodes_by_role{role="manager"}'),
    nodes.filter((l) => /Leader|Reachable/.test(l)).length,
  );
  assert.equal(m.get('swarm_manager_leader'), nodes.some((l) => l.endsWith('Leader')) ? 1 : 0);
  assert.equal(m.get('swarm_dispatcher_sessions'), 1);
  assert.equal(
    m.get('engine_daemon_container_states_containers{state="running"}'),
    Number((await mgr.docker(['ps', '-q'])).stdout.trim().split('\n').filter(Boolean).length),
  );
  // What the manager records as it works: the service's writes, the passes that placed its tasks.
  assert.ok((m.get('swarm_store_write_latency_seconds_count') ?? 0) > 0);
  assert.ok((m.get('swarm_store_watch_latency_seconds_count') ?? 0) > 0);
  assert.ok((m.get('swarm_scheduler_pass_seconds_count') ?? 0) > 0);
  assert.ok(m.has('swarm_dispatcher_heartbeats_total'));
  // prom-client's process figures: memory and event-loop lag.
  assert.ok((m.get('process_resident_memory_bytes') ?? 0) > 0);
  assert.ok(m.has('nodejs_eventloop_lag_seconds'));
});
