/**
 * Debian's dockerd (docker.io, 20.10) as a reference engine: installed if missing and never
 * started as a system service. Each one runs in a network namespace with its own data root,
 * exec root, socket and pidfile, and is stopped by PID. Its bridge and iptables rules (when
 * enabled) live inside that namespace, as iptables and bridges are per network namespace.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run, type RunOptions, type RunResult } from '../../src/util/run.js';
import { DOCKER, TEST_ROOT, ping } from './daemon.js';
import { createNetns, deleteNetns, uniqueName } from './netns.js';
import { startProcess, stopProcess, waitFor } from './process.js';

export interface DockerdOptions {
  prefix?: string;
  /** A namespace made by the caller (kept on destroy); by default the daemon gets its own. */
  ns?: string;
  /** More dockerd flags, e.g. `--bridge=none --iptables=false`. */
  extraArgs?: string[];
}

export interface TestDockerd {
  name: string;
  ns: string;
  dir: string;
  socket: string;
  /** `unix://…`, for DOCKER_HOST. */
  host: string;
  pid: number | undefined;
  docker(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** Leaves any swarm, stops dockerd (and its containers, its containerd) by PID, removes its files. */
  destroy(): Promise<void>;
}

export async function ensureDockerd(): Promise<void> {
  if ((await run('sh', ['-c', 'command -v dockerd'], { allowFail: true })).code === 0) return;
  // Only the package; no init system runs here, and we never start its service.
  const r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'docker.io'], {
    allowFail: true,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.code !== 0) throw new Error(`apt-get install docker.io: ${r.stderr.slice(-2000)}`);
}

export async function startDockerd(opts: DockerdOptions = {}): Promise<TestDockerd> {
  await ensureDockerd();
  const name = uniqueName(opts.prefix ?? 'dkd');
  const dir = path.join(TEST_ROOT, name);
  fs.mkdirSync(dir, { recursive: true });
  const ownNs = !opts.ns;
  const ns = opts.ns ?? (await createNetns(name));
  const socket = path.join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const log = path.join(dir, 'dockerd.log');
  const docker = (args: string[], o: RunOptions = {}) =>
    run(DOCKER, args, {
      ...o,
      env: { ...process.env, DOCKER_HOST: host, DOCKER_CLI_HINTS: 'false', ...(o.env ?? {}) },
    });
  const d: TestDockerd = {
    name,
    ns,
    dir,
    socket,
    host,
    pid: undefined,
    docker,
    async destroy() {
      if (d.pid) {
        await docker(['swarm', 'leave', '--force'], { allowFail: true });
        // dockerd stops its containers and its own containerd on SIGTERM.
        await stopProcess(d.pid, 'SIGTERM', 30_000);
        d.pid = undefined;
      }
      await run(
        'sh',
        ['-c', `grep -E ' ${dir}[/ ]' /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l`],
        { allowFail: true },
      );
      if (ownNs) await deleteNetns(ns);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const child = startProcess(
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
      host,
      '--pidfile',
      path.join(dir, 'docker.pid'),
      ...(opts.extraArgs ?? []),
    ],
    log,
  );
  d.pid = child.pid;
  try {
    await waitFor(
      `dockerd to answer (log: ${log})`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`dockerd exited with ${child.exitCode}: ${fs.readFileSync(log, 'utf8').slice(-3000)}`);
        return ping(socket);
      },
      60_000,
    );
  } catch (e) {
    await d.destroy();
    throw e;
  }
  return d;
}
