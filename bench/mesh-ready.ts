/**
 * Ready when running: on a three-machine lab (shoald, the real docker CLI, echo-app), the time
 * from a task's RUNNING (its status timestamp, written by the agent on the task's machine) to
 * the moment its published port answers on every machine, seen from the lab hub, over N
 * scale-ups 0 → 1. A prober in the hub's namespace connects to each machine every 5 ms and
 * records the first connection the task accepted (until the rules are in place the node refuses
 * it) and that connection's echo line (the app's fork and exec included). Same clock: all
 * machines are namespaces of one kernel. The service has a health check, so RUNNING means the
 * app listens (SHOAL_BENCH_NO_HEALTH=1: without, the app's own start is in the figure too).
 * Run as root: `npx tsc -p . && node dist/bench/mesh-ready.js [scale-ups]`; with
 * `SHOAL_LOG_LEVEL=debug SHOAL_KEEP_LOGS=DIR` the daemons' logs show each pass's kernel calls.
 */
import fs from 'node:fs';
import { run } from '../src/util/run.js';
import { hubAddress } from '../src/lab/addresses.js';
import { createSwarmLab } from '../test/helpers/swarm-lab.js';
import { printTable, writeReport } from './report.js';

const trials = Number(process.argv[2] ?? 20);
const MACHINES = ['m1', 'm2', 'm3'];
const PORT = 30100;

/**
 * Runs in the hub namespace: per address, when the first connection through the mesh was
 * accepted (a task's kernel answered the SYN: before the rules are in place the node refuses
 * it) and when that connection's echo line came (the app's own fork and exec included), epoch ms.
 */
const PROBER = `
const net = require('node:net');
const [port, deadline, ...ips] = process.argv.slice(1);
const first = {};
const end = Date.now() + Number(deadline);
const tryOne = (ip) => new Promise((done) => {
  let connected = 0;
  const s = net.connect({ host: ip, port: Number(port) });
  s.setTimeout(1000, () => { s.destroy(); done(false); });
  s.on('connect', () => { connected = Date.now(); });
  s.on('data', () => { s.destroy(); done({ connected, data: Date.now() }); });
  s.on('error', () => done(false));
  s.on('close', () => done(false));
});
(async () => {
  process.stdout.write('ready\\n');
  await Promise.all(ips.map(async (ip) => {
    while (Date.now() < end) {
      const r = await tryOne(ip);
      if (r) { first[ip] = r; return; }
      await new Promise((r) => setTimeout(r, 5));
    }
  }));
  process.stdout.write(JSON.stringify(first) + '\\n');
})();
`;

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

const swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'], echoApp: true });
try {
  const d = async (m: string, args: string[]) => {
    const r = await swarm.d(m, args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const hubNs = `${swarm.lab.prefix}-hub`;
  const ips = MACHINES.map((m) => swarm.ip.get(m)!);
  // With a health check RUNNING means "listens" (as in Docker): what is measured is the mesh following RUNNING, not the app's start.
  const health = process.env.SHOAL_BENCH_NO_HEALTH
    ? []
    : ['--health-cmd', 'socat /dev/null TCP4:127.0.0.1:8080', '--health-interval', '100ms', '--health-retries', '50'];
  await d('m1', [
    'service',
    'create',
    '--detach',
    '--name',
    'ready',
    '--replicas',
    '0',
    '-p',
    `${PORT}:8080`,
    ...health,
    'echo-app:latest',
  ]);
  const samples: { runningToAll: number; perNode: number[]; firstByteToAll: number; node: string; load: string }[] = [];
  const started = new Date().toISOString();
  const loadavgBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  for (let i = 0; i < trials; i++) {
    await d('m1', ['service', 'scale', '--detach', 'ready=0']);
    for (let t = 0; ; t++) {
      let n = 0;
      for (const m of MACHINES)
        n += (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=ready']))
          .split('\n')
          .filter(Boolean).length;
      if (n === 0) break;
      if (t > 600) throw new Error('scale to 0 did not finish');
      await new Promise((r) => setTimeout(r, 100));
    }
    const prober = run('ip', ['netns', 'exec', hubNs, process.execPath, '-e', PROBER, String(PORT), '60000', ...ips]);
    await new Promise((r) => setTimeout(r, 500)); // node's start in the hub
    await d('m1', ['service', 'scale', '--detach', 'ready=1']);
    const out = (await prober).stdout.trim().split('\n');
    const first = JSON.parse(out[out.length - 1]) as Record<string, { connected: number; data: number }>;
    if (Object.keys(first).length !== ips.length) throw new Error(`not every machine answered: ${out.join(' ')}`);
    const id = (await d('m1', ['service', 'ps', '-q', '--filter', 'desired-state=running', 'ready'])).split('\n')[0];
    const task = JSON.parse(await d('m1', ['inspect', id]))[0];
    if (task.Status.State !== 'running') throw new Error(`task ${id} is ${task.Status.State}`);
    const runningAt = Date.parse(task.Status.Timestamp);
    const perNode = ips.map((ip) => first[ip].connected - runningAt);
    const perNodeData = ips.map((ip) => first[ip].data - runningAt);
    const node = MACHINES[[...swarm.nodeIds.values()].indexOf(task.NodeID)] ?? task.NodeID;
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    samples.push({ runningToAll: Math.max(...perNode), perNode, firstByteToAll: Math.max(...perNodeData), node, load });
    console.log(
      `scale-up ${i + 1}: task on ${node}, RUNNING → accepted at m1/m2/m3 ${perNode.join(' / ')} ms, echo line ${perNodeData.join(' / ')} ms (load ${load})`,
    );
  }
  const all = samples.map((s) => s.runningToAll);
  const bytes = samples.map((s) => s.firstByteToAll);
  const result = {
    when: started,
    loadavg: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    trials,
    healthCheck: health.length > 0,
    loadavgBefore,
    /** The mesh: RUNNING → a connection through every machine's published port accepted by the task. */
    runningToAnswersOnEveryNodeMs: { p50: pct(all, 50), max: Math.max(...all), min: Math.min(...all) },
    /** The same connection's first byte from the app (its fork and exec under load included). */
    runningToFirstByteOnEveryNodeMs: { p50: pct(bytes, 50), max: Math.max(...bytes), min: Math.min(...bytes) },
    samples,
    hub: hubAddress(swarm.lab.subnet),
  };
  const row = (r: { p50: number; max: number; min: number }) => `p50 ${r.p50} ms, max ${r.max} ms, min ${r.min} ms`;
  printTable(
    `RUNNING → published port on all 3 machines, ${trials} scale-ups 0 → 1, load ${loadavgBefore} → ${result.loadavg}`,
    [
      ['connection accepted by the task', row(result.runningToAnswersOnEveryNodeMs)],
      ["the app's echo line", row(result.runningToFirstByteOnEveryNodeMs)],
    ],
  );
  console.log(`written ${writeReport('mesh-ready', result)}`);
} finally {
  await swarm.cleanup();
}
