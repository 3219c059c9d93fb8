/**
 * Routing mesh end to end on a three-machine lab (shoald, the real docker CLI, the micro
 * image): requests/s through the mesh (hub → machine:30000 → ingress LB → a task on any
 * machine) against requests/s straight to one task container (its gateway-bridge address,
 * from its machine), same run, same tool (wrk, 1 thread, 8 connections).
 * Run as root: `npx tsc -p . && node dist/bench/mesh-swarm.js [seconds]`.
 */
import fs from 'node:fs';
import { run } from '../src/util/run.js';
import { createMachines, newTestLab } from '../test/helpers/lab.js';
import { pushMicro } from '../test/helpers/micro.js';
import { sandboxPrefix } from '../src/agent/network-agent.js';

const seconds = Number(process.argv[2] ?? 5);
const MACHINES = ['m1', 'm2', 'm3'];

async function wrk(ns: string, url: string): Promise<number> {
  const r = await run('ip', ['netns', 'exec', ns, 'wrk', '-t1', '-c8', `-d${seconds}s`, url]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
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
  const image = await pushMicro({ socket: (await lab.dockerHost('m1')).replace(/^unix:\/\//, '') }, (await lab.machine(['registry'])).stdout.trim());
  await d('m1', ['network', 'create', '-d', 'overlay', 'micro-net']);
  await d('m1', ['service', 'create', '--name', 'micro', '-p', '8000', '--replicas', '3', '--network', 'micro-net', '--detach', image]);
  await until('3/3', async () => (await d('m1', ['service', 'ls', '--format', '{{.Replicas}}'])).stdout.trim() === '3/3');
  const hub = `${lab.prefix}-hub`;
  const m1 = await ip('m1');
  await until('mesh answers', async () => (await run('ip', ['netns', 'exec', hub, 'curl', '-sf', '-m', '2', `http://${m1}:30000/`], { allowFail: true })).code === 0);
  // A task container on m1 and its gateway-bridge address (eth1 inside it).
  const cid = (await d('m1', ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=micro'])).stdout.trim().split('\n')[0];
  const addrs = (await d('m1', ['exec', cid, 'ip', '-4', '-o', 'addr'])).stdout;
  const gw = /inet (172\.18\.\d+\.\d+)\//.exec(addrs)?.[1];
  if (!gw) throw new Error(`no gateway address in ${addrs}`);
  const direct = await wrk(`${lab.prefix}-m-m1`, `http://${gw}:8000/`);
  const mesh = await wrk(hub, `http://${m1}:30000/`);
  const result = { seconds, tool: 'wrk -t1 -c8', page: 'micro / (CGI)', requestsPerSecond: { directToContainer: direct, throughMesh: mesh }, ratioMeshToDirect: +(mesh / direct).toFixed(2) };
  console.log(JSON.stringify(result, null, 2));
  fs.mkdirSync('bench/results', { recursive: true });
  fs.writeFileSync(`bench/results/mesh-swarm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, JSON.stringify(result, null, 2) + '\n');
} finally {
  for (const m of MACHINES) await lab.docker(m, ['swarm', 'leave', '--force'], { allowFail: true }).catch(() => undefined);
  await lab.prune();
  for (const id of nodeIds) {
    for (const ns of fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${sandboxPrefix(id)}-`))) await run('ip', ['netns', 'delete', ns], { allowFail: true });
  }
}
