/**
 * Routing mesh end to end on a three-machine lab (shoald, the real docker CLI, the micro
 * image): requests/s through the mesh (hub → machine:30000 → ingress LB → a task on any
 * machine) against requests/s straight to one task container (its gateway-bridge address,
 * from its machine), same run, same tool (wrk --latency, 1 thread, 8 connections): requests/s
 * and p50/p99 latency. dockerd's own routing mesh is not compared: it needs IPVS, which the
 * report checks for on this kernel (`dockerMesh`).
 * Run as root: `npx tsc -p . && node dist/bench/mesh-swarm.js [seconds]`.
 */
import fs from 'node:fs';
import { run } from '../src/util/run.js';
import { createMachines, newTestLab } from '../test/helpers/lab.js';
import { pushMicro } from '../test/helpers/micro.js';
import { sandboxPrefix } from '../src/agent/network-agent.js';
import { printTable, writeReport } from './report.js';

const seconds = Number(process.argv[2] ?? 5);
const MACHINES = ['m1', 'm2', 'm3'];

interface WrkResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** wrk prints times as 635.91us, 1.20ms, 2.00s or 1.00m. */
function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(v);
  if (!m) throw new Error(`wrk time ${v}`);
  return +(
    Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'us' | 'ms' | 's' | 'm' | 'h']
  ).toFixed(3);
}

async function wrk(ns: string, url: string): Promise<WrkResult> {
  const r = await run('ip', ['netns', 'exec', ns, 'wrk', '--latency', '-t1', '-c8', `-d${seconds}s`, url]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  // "Latency Distribution" lines: "     50%  635.91us" … "     99%    1.20ms".
  const at = (p: number) => new RegExp(`^\\s+${p}%\\s+(\\S+)$`, 'm').exec(r.stdout)?.[1];
  const p50 = at(50);
  const p99 = at(99);
  if (!rps || !p50 || !p99) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return { requestsPerSecond: Number(rps[1]), p50Ms: toMs(p50), p99Ms: toMs(p99) };
}

/** dockerd's routing mesh programs IPVS; say whether this kernel has it (module loadable, /proc/net/ip_vs). */
async function ipvsCheck(): Promise<string> {
  const mod = await run('modprobe', ['ip_vs'], { allowFail: true });
  const proc = fs.existsSync('/proc/net/ip_vs');
  const modText =
    mod.code === 0
      ? 'modprobe ip_vs succeeded'
      : `modprobe ip_vs failed (${(mod.stderr || mod.stdout).trim().replace(/^modprobe: /, '')})`;
  const verdict = proc
    ? "IPVS is present here, but dockerd's mesh is still not part of this run"
    : "so dockerd's routing mesh (which needs IPVS) cannot run on this kernel and is not compared";
  return `${modText}; /proc/net/ip_vs ${proc ? 'present' : 'absent'}: ${verdict}`;
}

async function until(what: string, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 120_000;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const lab = newTestLab();
const nodeIds: string[] = [];
try {
  await createMachines(lab, MACHINES);
  const ip = (m: string) => lab.machine(['ip', m]).then((r) => r.stdout.trim());
  const d = (m: string, args: string[]) => lab.docker(m, args);
  await d('m1', ['swarm', 'init', '--advertise-addr', await ip('m1')]);
  const token = (await d('m1', ['swarm', 'join-token', '-q', 'worker'])).stdout.trim();
  for (const m of ['m2', 'm3']) await d(m, ['swarm', 'join', '--token', token, `${await ip('m1')}:2377`]);
  for (const m of MACHINES) nodeIds.push((await d(m, ['info', '--format', '{{.Swarm.NodeID}}'])).stdout.trim());
  const image = await pushMicro(
    { socket: (await lab.dockerHost('m1')).replace(/^unix:\/\//, '') },
    (await lab.machine(['registry'])).stdout.trim(),
  );
  await d('m1', ['network', 'create', '-d', 'overlay', 'micro-net']);
  await d('m1', [
    'service',
    'create',
    '--name',
    'micro',
    '-p',
    '8000',
    '--replicas',
    '3',
    '--network',
    'micro-net',
    '--detach',
    image,
  ]);
  await until(
    '3/3',
    async () => (await d('m1', ['service', 'ls', '--format', '{{.Replicas}}'])).stdout.trim() === '3/3',
  );
  const hub = `${lab.prefix}-hub`;
  const m1 = await ip('m1');
  await until(
    'mesh answers',
    async () =>
      (await run('ip', ['netns', 'exec', hub, 'curl', '-sf', '-m', '2', `http://${m1}:30000/`], { allowFail: true }))
        .code === 0,
  );
  // A task container on m1 and its gateway-bridge address (eth1 inside it).
  const cid = (await d('m1', ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=micro'])).stdout
    .trim()
    .split('\n')[0];
  const addrs = (await d('m1', ['exec', cid, 'ip', '-4', '-o', 'addr'])).stdout;
  const gw = /inet (172\.18\.\d+\.\d+)\//.exec(addrs)?.[1];
  if (!gw) throw new Error(`no gateway address in ${addrs}`);
  const started = new Date().toISOString();
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const direct = await wrk(`${lab.prefix}-m-m1`, `http://${gw}:8000/`);
  const mesh = await wrk(hub, `http://${m1}:30000/`);
  const result = {
    when: started,
    // The load includes the benchmark's own: wrk and micro's CGI forks fill the 2 cores.
    loadavg: { before: loadBefore, after: fs.readFileSync('/proc/loadavg', 'utf8').trim() },
    seconds,
    tool: 'wrk --latency -t1 -c8',
    page: 'micro / (CGI)',
    directToContainer: direct,
    throughMesh: mesh,
    ratioMeshToDirect: {
      requestsPerSecond: +(mesh.requestsPerSecond / direct.requestsPerSecond).toFixed(2),
      p99: +(mesh.p99Ms / direct.p99Ms).toFixed(2),
    },
    dockerMesh: `not compared: ${await ipvsCheck()}`,
  };
  console.log(JSON.stringify(result, null, 2));
  const row = (w: WrkResult) =>
    `${w.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${w.p50Ms.toFixed(2)} ms  p99 ${w.p99Ms.toFixed(2)} ms`;
  printTable(`routing mesh, ${seconds} s each, ${result.tool}, load ${loadBefore} → ${result.loadavg.after}`, [
    ['direct to a task container', row(direct)],
    ['through the mesh (:30000)', row(mesh)],
    ['dockerd mesh', result.dockerMesh],
  ]);
  console.log(`written ${writeReport('mesh-swarm', result)}`);
} finally {
  for (const m of MACHINES)
    await lab.docker(m, ['swarm', 'leave', '--force'], { allowFail: true }).catch(() => undefined);
  await lab.prune();
  for (const id of nodeIds) {
    for (const ns of fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${sandboxPrefix(id)}-`)))
      await run('ip', ['netns', 'delete', ns], { allowFail: true });
  }
}
