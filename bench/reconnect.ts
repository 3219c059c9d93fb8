/**
 * A machine cut off and connected again (issue 14's slowest chaos round): on a lab of one
 * manager and two workers with a 3-replica service published on every machine, m2's link is
 * taken down for CUT seconds and brought back, N times. Per trial, from the reconnection: when
 * m2 is Ready again (node ls on m1, after it went Down), and when m2's published port answers
 * a request from the lab hub without a failure in between (a prober tries every 100 ms).
 * Run as root: `npx tsc -p . && node dist/bench/reconnect.js [trials] [cut seconds] [managers]`.
 */
import fs from 'node:fs';
import { run } from '../src/util/run.js';
import { createSwarmLab } from '../test/helpers/swarm-lab.js';
import { printTable, writeReport } from './report.js';

const trials = Number(process.argv[2] ?? 5);
const cutSeconds = Number(process.argv[3] ?? 20);
const MACHINES = ['m1', 'm2', 'm3'];
const PORT = 30200;
/** `managers`: m2 and m3 are managers too (the chaos lab's case: the cut machine's etcd member leaves the quorum). */
const managers = process.argv[4] === 'managers';

/** In the hub: the first time from which every request to ip:port was answered for 2 s, epoch ms. */
const PROBER = `
const net = require('node:net');
const [ip, port, deadline] = process.argv.slice(1);
const end = Date.now() + Number(deadline);
const once = () => new Promise((done) => {
  const s = net.connect({ host: ip, port: Number(port) });
  s.setTimeout(1000, () => { s.destroy(); done(false); });
  s.on('data', () => { s.destroy(); done(true); });
  s.on('error', () => done(false));
  s.on('close', () => done(false));
});
(async () => {
  process.stdout.write('ready\\n');
  let since = 0;
  while (Date.now() < end) {
    const at = Date.now();
    if (await once()) { if (!since) since = at; if (Date.now() - since >= 2000) break; }
    else since = 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write(JSON.stringify({ since }) + '\\n');
})();
`;

const swarm = await createSwarmLab({
  ...(managers ? { managers: MACHINES } : { managers: ['m1'], workers: ['m2', 'm3'] }),
  echoApp: true,
});
try {
  const d = async (m: string, args: string[]) => {
    const r = await swarm.d(m, args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await d('m1', ['service', 'create', '--name', 'web', '--replicas', '3', '-p', `${PORT}:8080`, 'echo-app:latest']);
  const hubNs = `${swarm.lab.prefix}-hub`;
  const m2 = swarm.nodeIds.get('m2')!;
  const state = async () => d('m1', ['node', 'inspect', '-f', '{{.Status.State}}', m2]);
  const until = async (what: string, ok: () => Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now();
  };
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const samples: { ready: number; mesh: number; load: string }[] = [];
  for (let i = 0; i < trials; i++) {
    await until('3/3 before the cut', async () => (await swarm.replicas('web')) === '3/3', 120_000);
    const cut = Date.now();
    await swarm.lab.machine(['disconnect', 'm2']);
    await until('m2 Down', async () => (await state()) === 'down', 60_000);
    await new Promise((r) => setTimeout(r, Math.max(0, cut + cutSeconds * 1000 - Date.now())));
    await swarm.lab.machine(['connect', 'm2']);
    const back = Date.now();
    const prober = run('ip', [
      'netns',
      'exec',
      hubNs,
      process.execPath,
      '-e',
      PROBER,
      swarm.ip.get('m2')!,
      String(PORT),
      '120000',
    ]);
    const ready = (await until('m2 Ready', async () => (await state()) === 'ready', 120_000)) - back;
    const out = (await prober).stdout.trim().split('\n');
    const since = (JSON.parse(out[out.length - 1]) as { since: number }).since;
    if (!since) throw new Error(`m2's published port did not answer: ${out.join(' ')}`);
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    samples.push({ ready, mesh: since - back, load });
    console.log(
      `trial ${i + 1}: m2 Ready ${ready} ms, mesh on m2 answers ${since - back} ms after the reconnection (load ${load})`,
    );
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    when: new Date().toISOString(),
    trials,
    cutSeconds,
    m2: managers ? 'manager' : 'worker',
    loadavgBefore: loadBefore,
    loadavg: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    readyMs: { median: med(samples.map((s) => s.ready)), max: Math.max(...samples.map((s) => s.ready)) },
    meshMs: { median: med(samples.map((s) => s.mesh)), max: Math.max(...samples.map((s) => s.mesh)) },
    samples,
  };
  printTable(
    `m2 (${managers ? 'a manager' : 'a worker'}) cut off for ${cutSeconds} s and connected again, ${trials} trials, load ${loadBefore}`,
    [
      ['m2 Ready again', `median ${result.readyMs.median} ms, max ${result.readyMs.max} ms`],
      ["m2's published port answers", `median ${result.meshMs.median} ms, max ${result.meshMs.max} ms`],
    ],
  );
  console.log(`written ${writeReport('reconnect', result)}`);
} finally {
  await swarm.cleanup();
}
