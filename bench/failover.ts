/**
 * Leader failover benchmark: three managers on etcd; kill -9 the leader's shoald and measure
 * the time until a surviving manager accepts a write (docker node update), over N runs.
 * Run as root: `npx tsc -p . && node dist/bench/failover.js [runs]`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createTestNet } from '../test/helpers/testnet.js';
import { startDaemon, REPO_ROOT, type TestDaemon } from '../test/helpers/daemon.js';
import { waitFor } from '../test/helpers/process.js';

const runs = Number(process.argv[2] ?? 5);
const net = await createTestNet(3);
const managers: TestDaemon[] = [];
const results: number[] = [];
const leaderResults: number[] = [];

async function leader(via: TestDaemon): Promise<TestDaemon> {
  const name = await waitFor('a leader', async () => {
    const r = await via.docker(['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}'], { allowFail: true });
    return r.code === 0 && r.stdout.split('\n').find((l) => l.endsWith(' Leader'))?.split(' ')[0];
  }, 60_000);
  return managers.find((m) => m.name === name)!;
}

try {
  for (const n of net.nodes) managers.push(await startDaemon({ ns: n.ns, prefix: 'bfail' }));
  await managers[0].docker(['swarm', 'init', '--advertise-addr', net.nodes[0].ip]);
  const token = (await managers[0].docker(['swarm', 'join-token', '-q', 'manager'])).stdout.trim();
  for (const m of managers.slice(1)) await m.docker(['swarm', 'join', '--token', token, `${net.nodes[0].ip}:2377`]);
  for (let i = 0; i < runs; i++) {
    const old = await leader(managers[1]);
    const survivor = managers.find((m) => m !== old)!;
    await waitFor('all managers reachable', async () => {
      const r = await survivor.docker(['node', 'ls', '--format', '{{.ManagerStatus}}'], { allowFail: true });
      return r.code === 0 && !r.stdout.includes('Unreachable');
    }, 60_000);
    const t0 = Date.now();
    await old.kill9();
    await waitFor('a write accepted', async () => (await survivor.docker(['node', 'update', '--label-add', `run=${i}`, survivor.name], { allowFail: true })).code === 0, 120_000, 50);
    const ms = Date.now() - t0;
    // The new leader (leader key) is what leader loops wait for: lease TTL bound.
    await waitFor('a new leader', async () => {
      const r = await survivor.docker(['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}'], { allowFail: true });
      const l = r.stdout.split('\n').find((x) => x.endsWith(' Leader'))?.split(' ')[0];
      return r.code === 0 && l && l !== old.name;
    }, 120_000, 50);
    const leaderMs = Date.now() - t0;
    results.push(ms);
    leaderResults.push(leaderMs);
    console.log(`run ${i + 1}: leader ${old.name} killed, first accepted write after ${ms} ms, new leader after ${leaderMs} ms`);
    await old.start();
  }
  const sorted = [...results].sort((a, b) => a - b);
  const lsorted = [...leaderResults].sort((a, b) => a - b);
  const summary = {
    firstWriteMs: { runs: results, min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] },
    newLeaderMs: { runs: leaderResults, min: lsorted[0], median: lsorted[Math.floor(lsorted.length / 2)], max: lsorted[lsorted.length - 1] },
  };
  console.log(JSON.stringify(summary));
  const dir = path.join(REPO_ROOT, 'bench/results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(summary, null, 2) + '\n');
} finally {
  for (const m of managers.reverse()) await m.destroy();
  await net.destroy();
}
