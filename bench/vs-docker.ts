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
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../src/util/run.js';
import { startDaemon, DOCKER, REPO_ROOT, TEST_ROOT, ping, type TestDaemon } from '../test/helpers/daemon.js';
import { createNetns, deleteNetns, uniqueName } from '../test/helpers/netns.js';
import { stopProcess, waitFor } from '../test/helpers/process.js';
import { api, printTable, writeReport } from './report.js';

const IMAGE = 'micro:1.0.0';

export interface EngineTimes {
  createTo50Ms: number;
  scaleTo0Ms: number;
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

/** The workload, identical on both engines. */
async function workload(e: Engine, replicas: number): Promise<EngineTimes> {
  const name = 'benchmicro';
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
    IMAGE,
  ]);
  if (c.code !== 0) throw new Error(`service create: ${c.stderr}`);
  await waitFor(
    `${replicas}/${replicas} running`,
    async () => (await runningTasks(e.socket, name)) >= replicas,
    300_000,
    100,
  );
  const createTo50Ms = Date.now() - t0;
  const t1 = Date.now();
  const s = await e.docker(['service', 'scale', '-d', `${name}=0`]);
  if (s.code !== 0) throw new Error(`service scale: ${s.stderr}`);
  await waitFor('0 running', async () => (await runningTasks(e.socket, name)) === 0, 300_000, 100);
  const scaleTo0Ms = Date.now() - t1;
  await e.docker(['service', 'rm', name]);
  return { createTo50Ms, scaleTo0Ms };
}

async function buildMicro(dir: string): Promise<string> {
  const out = path.join(dir, 'micro.tar');
  await run(process.execPath, [path.join(REPO_ROOT, 'dist/examples/micro/build.js'), '--format', 'save', '-o', out]);
  return out;
}

async function ensureDockerd(): Promise<void> {
  if ((await run('sh', ['-c', 'command -v dockerd'], { allowFail: true })).code === 0) return;
  // Only the package; no init system runs here, and we never start its service.
  const r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'docker.io'], {
    allowFail: true,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.code !== 0) throw new Error(`apt-get install docker.io: ${r.stderr.slice(-2000)}`);
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
  const name = uniqueName('bvsdk');
  const dir = path.join(TEST_ROOT, name);
  fs.mkdirSync(dir, { recursive: true });
  const ns = await createNetns(name);
  const socket = path.join(dir, 'docker.sock');
  const log = path.join(dir, 'dockerd.log');
  let pid: number | undefined;
  try {
    // An address for swarm to advertise (dockerd wants a non-loopback one).
    await run('ip', ['-n', ns, 'link', 'add', 'bvs0', 'type', 'veth', 'peer', 'name', 'bvs1']);
    await run('ip', ['-n', ns, 'link', 'set', 'bvs1', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', '10.231.0.1/24', 'dev', 'bvs0']);
    await run('ip', ['-n', ns, 'link', 'set', 'bvs0', 'up']);
    const fd = fs.openSync(log, 'a');
    const child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        '--',
        'dockerd',
        '--data-root',
        path.join(dir, 'data'),
        '--exec-root',
        path.join(dir, 'exec'),
        '-H',
        `unix://${socket}`,
        '--pidfile',
        path.join(dir, 'docker.pid'),
        '--bridge=none',
        '--iptables=false',
        '--ip6tables=false',
        '--ip-masq=false',
      ],
      { stdio: ['ignore', fd, fd], detached: true },
    );
    fs.closeSync(fd);
    child.unref();
    pid = child.pid;
    await waitFor(
      `dockerd to answer (log: ${log})`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`dockerd exited with ${child.exitCode}: ${fs.readFileSync(log, 'utf8').slice(-3000)}`);
        return ping(socket);
      },
      60_000,
    );
    const docker = (args: string[]) =>
      run(DOCKER, args, {
        allowFail: true,
        env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CLI_HINTS: 'false' },
      });
    const l = await docker(['load', '-i', tar]);
    if (l.code !== 0) throw new Error(`docker load (dockerd): ${l.stderr}`);
    const i = await docker(['swarm', 'init', '--advertise-addr', '10.231.0.1']);
    if (i.code !== 0) throw new Error(`swarm init (dockerd): ${i.stderr}`);
    return await fn({ socket, docker });
  } finally {
    if (pid) {
      await run(DOCKER, ['swarm', 'leave', '--force'], {
        allowFail: true,
        env: { ...process.env, DOCKER_HOST: `unix://${socket}` },
      });
      // dockerd stops its containers and its own containerd on SIGTERM.
      await stopProcess(pid, 'SIGTERM', 30_000);
    }
    await run('sh', ['-c', `grep ' ${dir}' /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l`], {
      allowFail: true,
    });
    await deleteNetns(ns);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function vsDocker(replicas = 50): Promise<VsDockerResult> {
  const dir = fs.mkdtempSync(path.join('/tmp', 'bvs-'));
  const prof = process.env.SHOAL_BENCH_PROFILE;
  if (prof) {
    // shoald (started by the test helper) records a CPU profile: see bench/sim/cpu-profile.ts.
    fs.mkdirSync(prof, { recursive: true });
    process.env.SHOAL_BENCH_PROFILE = path.resolve(prof);
    process.env.NODE_OPTIONS =
      `${process.env.NODE_OPTIONS ?? ''} --import=${path.join(REPO_ROOT, 'dist/bench/sim/cpu-profile.js')}`.trim();
  }
  try {
    const tar = await buildMicro(dir);
    const shoal = await withShoal(tar, (e) => workload(e, replicas));
    let docker: EngineTimes | { error: string };
    if (process.env.SHOAL_BENCH_SHOAL_ONLY) docker = { error: 'skipped (SHOAL_BENCH_SHOAL_ONLY)' };
    else
      try {
        await ensureDockerd();
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
