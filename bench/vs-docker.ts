/**
 * Real containers, shoal against Docker, in the same run: one node each, a service of 50
 * replicas of the micro image (loaded from examples/micro's `docker save` archive), time from
 * `docker service create` until 50/50 running, then `docker service scale =0` until none
 * runs. Both are driven by the same docker CLI and polled the same way (Engine API
 * /services?status=true every 100 ms).
 *
 * Docker is Debian's docker.io (dockerd 20.10), installed here if missing and never started as
 * a system service: we run `dockerd` ourselves in a netns of our own with its own data root,
 * exec root, socket and pidfile, and stop it by PID.
 *
 *   node dist/bench/vs-docker.js [replicas=50]    (root)
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../src/util/run.js';
import { startDaemon, REPO_ROOT, type TestDaemon } from '../test/helpers/daemon.js';
import { startDockerd } from '../test/helpers/dockerd.js';
import { waitFor } from '../test/helpers/process.js';
import { api, printTable, writeReport } from './report.js';
import { profileChildrenIfAsked } from './sim/profile-children.js';

const IMAGE = 'micro:1.0.0';

export interface EngineTimes {
  createTo50Ms: number;
  scaleTo0Ms: number;
  /** `scale =0` → the service's containers all removed from the node (asked for with `untilGone`). */
  scaleTo0GoneMs?: number;
}

export interface WorkloadOptions {
  /** The service's `--stop-signal` (SIGKILL: stopped at once, as the runtime floor does). */
  stopSignal?: string;
  /** After scale to 0, also wait until no container of the service is left on the node. */
  untilGone?: boolean;
  /** Poll interval (default 100 ms). */
  pollMs?: number;
  /**
   * First a 1-replica service, run and removed: the node's one-time swarm set-up (its ingress
   * sandbox, made once the first task arrives) is done before the clock starts.
   */
  warmUp?: boolean;
}

export interface VsDockerResult {
  replicas: number;
  stopGracePeriod: string;
  shoal: EngineTimes;
  docker: EngineTimes | { error: string };
  ratioCreate?: number;
  ratioScale0?: number;
}

interface Engine {
  socket: string;
  docker(args: string[]): ReturnType<typeof run>;
}

async function runningTasks(socket: string, name: string): Promise<number> {
  const r = await api(
    socket,
    'GET',
    `/v1.41/services?status=true&filters=${encodeURIComponent(JSON.stringify({ name: { [name]: true } }))}`,
  );
  const s = (JSON.parse(r.body) as { Spec: { Name: string }; ServiceStatus?: { RunningTasks: number } }[]).find(
    (x) => x.Spec.Name === name,
  );
  return s?.ServiceStatus?.RunningTasks ?? 0;
}

async function serviceContainers(socket: string, name: string): Promise<number> {
  const f = encodeURIComponent(JSON.stringify({ label: { [`com.docker.swarm.service.name=${name}`]: true } }));
  const r = await api(socket, 'GET', `/v1.41/containers/json?all=1&filters=${f}`);
  return (JSON.parse(r.body) as unknown[]).length;
}

/** The workload, identical on both engines. */
async function workload(e: Engine, replicas: number, opts: WorkloadOptions = {}): Promise<EngineTimes> {
  if (opts.warmUp) await warmUp(e);
  const name = 'benchmicro';
  const until = (what: string, cond: () => Promise<boolean>) => waitFor(what, cond, 300_000, opts.pollMs ?? 100);
  const t0 = Date.now();
  const c = await e.docker([
    'service',
    'create',
    '-d',
    '--quiet',
    '--no-resolve-image',
    '--name',
    name,
    '--replicas',
    String(replicas),
    '--stop-grace-period',
    '1s',
    ...(opts.stopSignal ? ['--stop-signal', opts.stopSignal] : []),
    IMAGE,
  ]);
  if (c.code !== 0) throw new Error(`service create: ${c.stderr}`);
  await until(`${replicas}/${replicas} running`, async () => (await runningTasks(e.socket, name)) >= replicas);
  const createTo50Ms = Date.now() - t0;
  const t1 = Date.now();
  const s = await e.docker(['service', 'scale', '-d', `${name}=0`]);
  if (s.code !== 0) throw new Error(`service scale: ${s.stderr}`);
  await until('0 running', async () => (await runningTasks(e.socket, name)) === 0);
  const scaleTo0Ms = Date.now() - t1;
  let scaleTo0GoneMs: number | undefined;
  if (opts.untilGone) {
    await until('no container left', async () => (await serviceContainers(e.socket, name)) === 0);
    scaleTo0GoneMs = Date.now() - t1;
  }
  await e.docker(['service', 'rm', name]);
  return { createTo50Ms, scaleTo0Ms, ...(scaleTo0GoneMs === undefined ? {} : { scaleTo0GoneMs }) };
}

async function warmUp(e: Engine): Promise<void> {
  // SIGKILL: micro's httpd ignores SIGTERM, and the warm-up need not wait out a grace period.
  const c = await e.docker([
    'service',
    'create',
    '-d',
    '--quiet',
    '--no-resolve-image',
    '--name',
    'warmup',
    '--stop-signal',
    'SIGKILL',
    IMAGE,
  ]);
  if (c.code !== 0) throw new Error(`service create warmup: ${c.stderr}`);
  await waitFor('warm-up running', async () => (await runningTasks(e.socket, 'warmup')) === 1, 120_000, 100);
  await e.docker(['service', 'rm', 'warmup']);
  await waitFor('warm-up gone', async () => (await serviceContainers(e.socket, 'warmup')) === 0, 120_000, 100);
}

async function buildMicro(dir: string): Promise<string> {
  const out = path.join(dir, 'micro.tar');
  await run(process.execPath, [path.join(REPO_ROOT, 'dist/examples/micro/build.js'), '--format', 'save', '-o', out]);
  return out;
}

async function withShoal<T>(tar: string, fn: (e: Engine) => Promise<T>): Promise<T> {
  const d: TestDaemon = await startDaemon({ prefix: 'bvs' });
  try {
    const l = await d.docker(['load', '-i', tar]);
    if (l.code !== 0) throw new Error(`docker load (shoal): ${l.stderr}`);
    const i = await d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    if (i.code !== 0) throw new Error(`swarm init (shoal): ${i.stderr}`);
    return await fn({ socket: d.socket, docker: (a) => d.docker(a) });
  } finally {
    // SHOAL_BENCH_LOG=<file>: keep shoald's log (per-container phase timings) for analysis.
    if (process.env.SHOAL_BENCH_LOG) fs.copyFileSync(path.join(d.dir, 'shoald.log'), process.env.SHOAL_BENCH_LOG);
    await d.destroy();
  }
}

async function withDockerd<T>(tar: string, fn: (e: Engine) => Promise<T>): Promise<T> {
  // Nothing here needs a bridge: no default bridge, no iptables.
  const d = await startDockerd({
    prefix: 'bvsdk',
    extraArgs: ['--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false'],
  });
  try {
    // An address for swarm to advertise (dockerd wants a non-loopback one).
    await run('ip', ['-n', d.ns, 'link', 'add', 'bvs0', 'type', 'veth', 'peer', 'name', 'bvs1']);
    await run('ip', ['-n', d.ns, 'link', 'set', 'bvs1', 'up']);
    await run('ip', ['-n', d.ns, 'addr', 'add', '10.231.0.1/24', 'dev', 'bvs0']);
    await run('ip', ['-n', d.ns, 'link', 'set', 'bvs0', 'up']);
    const l = await d.docker(['load', '-i', tar]);
    if (l.code !== 0) throw new Error(`docker load (dockerd): ${l.stderr}`);
    const i = await d.docker(['swarm', 'init', '--advertise-addr', '10.231.0.1']);
    if (i.code !== 0) throw new Error(`swarm init (dockerd): ${i.stderr}`);
    return await fn({ socket: d.socket, docker: (a) => d.docker(a) });
  } finally {
    await d.destroy();
  }
}

/** shoal alone: the workload on one shoald (bench/runtime-floor.ts runs it next to the floor). */
export async function shoalWorkload(replicas: number, opts: WorkloadOptions): Promise<EngineTimes> {
  const dir = fs.mkdtempSync(path.join('/tmp', 'bvs-'));
  profileChildrenIfAsked();
  try {
    return await withShoal(await buildMicro(dir), (e) => workload(e, replicas, opts));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function vsDocker(replicas = 50): Promise<VsDockerResult> {
  const dir = fs.mkdtempSync(path.join('/tmp', 'bvs-'));
  profileChildrenIfAsked();
  try {
    const tar = await buildMicro(dir);
    const shoal = await withShoal(tar, (e) => workload(e, replicas));
    let docker: EngineTimes | { error: string };
    if (process.env.SHOAL_BENCH_SHOAL_ONLY) docker = { error: 'skipped (SHOAL_BENCH_SHOAL_ONLY)' };
    else
      try {
        docker = await withDockerd(tar, (e) => workload(e, replicas));
      } catch (e) {
        docker = { error: (e as Error).message };
      }
    const r: VsDockerResult = { replicas, stopGracePeriod: '1s', shoal, docker };
    if ('createTo50Ms' in docker) {
      r.ratioCreate = +(docker.createTo50Ms / shoal.createTo50Ms).toFixed(2);
      r.ratioScale0 = +(docker.scaleTo0Ms / shoal.scaleTo0Ms).toFixed(2);
    }
    return r;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function printVsDocker(r: VsDockerResult): void {
  const d = r.docker;
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  printTable(`real containers, one node: service of ${r.replicas} micro replicas (stop grace ${r.stopGracePeriod})`, [
    ['', 'shoal | dockerd 20.10 | Docker/shoal'],
    [
      `create → ${r.replicas}/${r.replicas} running`,
      'error' in d
        ? `${s(r.shoal.createTo50Ms)} | ${d.error}`
        : `${s(r.shoal.createTo50Ms)} | ${s(d.createTo50Ms)} | ${r.ratioCreate}×`,
    ],
    [
      'scale to 0 → none running',
      'error' in d
        ? `${s(r.shoal.scaleTo0Ms)} | -`
        : `${s(r.shoal.scaleTo0Ms)} | ${s(d.scaleTo0Ms)} | ${r.ratioScale0}×`,
    ],
  ]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await vsDocker(Number(process.argv[2] ?? 50));
  printVsDocker(r);
  console.log(`written ${writeReport('vs-docker', r)}`);
}
