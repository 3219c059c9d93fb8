/**
 * Routing mesh against direct, on a three-machine lab (shoald, the real docker CLI, micro).
 * A fair comparison: the same client (the lab hub), the same single task (on m1), the same
 * static page, the same tool (wrk --latency, 1 thread, 8 connections); only the path differs:
 * - direct: a host-mode port of the task (`mode=host`, m1:30001): m1's DNAT, then the gateway bridge;
 * - mesh, same node: its routing-mesh port on m1 (m1:30000): m1's DNAT, the ingress sandbox's
 *   balancer, the ingress overlay's bridge, the task (its replies routed back by connection mark);
 * - mesh, cross-node (for information, no direct counterpart): m2:30000, the same task over VXLAN.
 * The paths are measured in turns (direct, mesh, cross-node) for `rounds` rounds, and the median
 * of each is compared, so a change in the shared box's load hits all paths alike. The page is a
 * static file (micro's `/` is a CGI script: a fork and exec per request that measured the box's
 * CPU, not the network). dockerd's own mesh is not compared: it needs IPVS (`dockerMesh`).
 * Run as root: `npx tsc -p . && node dist/bench/mesh-swarm.js [seconds] [rounds]`.
 */
import fs from 'node:fs';
import { run } from '../src/util/run.js';
import { createSwarmLab } from '../test/helpers/swarm-lab.js';
import { printTable, writeReport } from './report.js';
import { parseWrk, wrkArgs, type WrkResult } from './wrk.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const MESH_PORT = 30000;
const HOST_PORT = 30001;
const PAGE = '/static.html';

async function wrk(ns: string, url: string): Promise<WrkResult> {
  const r = await run('ip', ['netns', 'exec', ns, 'wrk', ...wrkArgs(seconds, url)]);
  const result = parseWrk(r);
  if (/Non-2xx/.test(r.stdout)) throw new Error(`wrk got errors: ${r.stdout}`);
  return result;
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const medianOf = (rs: WrkResult[]): WrkResult => ({
  requestsPerSecond: median(rs.map((r) => r.requestsPerSecond)),
  p50Ms: median(rs.map((r) => r.p50Ms)),
  p99Ms: median(rs.map((r) => r.p99Ms)),
});

const swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'], micro: true });
try {
  const d = async (m: string, args: string[]) => {
    const r = await swarm.d(m, args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await d('m1', [
    'service',
    'create',
    '--name',
    'micro',
    '--detach',
    '--constraint',
    `node.id==${swarm.nodeIds.get('m1')}`,
    '--publish',
    `published=${MESH_PORT},target=8000`,
    '--publish',
    `mode=host,published=${HOST_PORT},target=8000`,
    swarm.image,
    'sh',
    '-c',
    `echo "static page of $(hostname)" > /www${PAGE} && exec httpd -f -p 8000 -h /www`,
  ]);
  await until('1/1', async () => (await swarm.replicas('micro')) === '1/1');
  const hub = `${swarm.lab.prefix}-hub`;
  const url = (m: string, port: number) => `http://${swarm.ip.get(m)}:${port}${PAGE}`;
  const paths = {
    direct: url('m1', HOST_PORT),
    meshSameNode: url('m1', MESH_PORT),
    meshCrossNode: url('m2', MESH_PORT),
  };
  for (const u of Object.values(paths))
    await until(
      `${u} answers`,
      async () =>
        (await run('ip', ['netns', 'exec', hub, 'curl', '-sf', '-m', '2', u], { allowFail: true })).code === 0,
    );
  // wrk reconnects after each answer (micro's httpd closes every connection), about 12,000 times a
  // round: let the hub reuse its ports in TIME_WAIT and use the whole port range, as load
  // generators are set up, so no path is measured against a client out of ports.
  await run('ip', [
    'netns',
    'exec',
    hub,
    'sysctl',
    '-qw',
    'net.ipv4.tcp_tw_reuse=1',
    'net.ipv4.ip_local_port_range=1024 65000',
  ]);
  const started = new Date().toISOString();
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const runs: Record<keyof typeof paths, WrkResult[]> = { direct: [], meshSameNode: [], meshCrossNode: [] };
  for (let r = 0; r < rounds; r++)
    for (const k of Object.keys(paths) as (keyof typeof paths)[]) runs[k].push(await wrk(hub, paths[k]));
  const direct = medianOf(runs.direct);
  const mesh = medianOf(runs.meshSameNode);
  const cross = medianOf(runs.meshCrossNode);
  const ratio = (a: WrkResult) => ({
    requestsPerSecond: +(a.requestsPerSecond / direct.requestsPerSecond).toFixed(2),
    p99: +(a.p99Ms / direct.p99Ms).toFixed(2),
  });
  const result = {
    when: started,
    // The load includes other users of the shared box and the benchmark's own wrk and httpd.
    loadavg: { before: loadBefore, after: fs.readFileSync('/proc/loadavg', 'utf8').trim() },
    seconds,
    rounds,
    tool: 'wrk --latency -t1 -c8, from the lab hub (tcp_tw_reuse=1, ports 1024-65000)',
    page: `micro ${PAGE} (static), one task on m1`,
    paths,
    directHostModePort: direct,
    throughMeshSameNode: mesh,
    throughMeshCrossNode: cross,
    ratioMeshToDirect: ratio(mesh),
    ratioCrossNodeMeshToDirect: ratio(cross),
    runs,
    dockerMesh: `not compared: ${await ipvsCheck()}`,
  };
  console.log(JSON.stringify(result, null, 2));
  const row = (w: WrkResult) =>
    `${w.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${w.p50Ms.toFixed(2)} ms  p99 ${w.p99Ms.toFixed(2)} ms`;
  printTable(
    `routing mesh vs direct, median of ${rounds} × ${seconds} s, ${result.tool}, load ${loadBefore} → ${result.loadavg.after}`,
    [
      ['direct (host-mode port, m1)', row(direct)],
      ['mesh, same node (m1:30000)', row(mesh)],
      ['mesh ÷ direct', `${result.ratioMeshToDirect.requestsPerSecond} req/s, p99 ${result.ratioMeshToDirect.p99}×`],
      ['mesh, cross-node (m2:30000)', row(cross)],
      ['dockerd mesh', result.dockerMesh],
    ],
  );
  console.log(`written ${writeReport('mesh-swarm', result)}`);
} finally {
  await swarm.cleanup();
}
