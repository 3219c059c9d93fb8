import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunOptions, type RunResult } from '../../src/util/run.js';
import { purgeDaemonState } from '../../src/engine/containers/purge.js';
import { daemonArgs, ping, type DaemonPlaces } from '../../src/lab/daemon.js';
import { cutPower } from '../../src/lab/sweep.js';
import { daemonPaths, defaultConfig } from '../../src/engine/config.js';
import { createNetns, deleteNetns, inNetns, uniqueName } from './netns.js';
import { startProcess, stopProcess, waitFor } from './process.js';

export { ping };

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DOCKER = '/usr/local/bin/docker';
export const TEST_ROOT = '/tmp/shoal-test';

export interface DaemonOptions {
  /** Names the netns and directory: `<prefix>-<random>`. */
  prefix?: string;
  /** Reuse an existing namespace (not deleted by destroy). */
  ns?: string;
  insecureRegistries?: string[];
  labels?: string[];
  /** Further shoald flags. */
  extraArgs?: string[];
  /**
   * Mount a tmpfs of this size (mount's size=, e.g. '200m') over the data root before the first
   * start, so a test can fill the daemon's disk; unmounted by destroy().
   */
  dataRootTmpfs?: string;
}

export interface TestDaemon extends DaemonPlaces {
  /** `unix://…`, for DOCKER_HOST. */
  host: string;
  pid: number | undefined;
  docker(args: string[], opts?: RunOptions): Promise<RunResult>;
  inNs(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult>;
  start(): Promise<void>;
  kill9(): Promise<void>;
  /**
   * A power cut: the daemon and everything it started killed, runc state and mounts gone, the
   * exec root emptied (as /run is at boot); the data root stays. start() then boots afresh.
   */
  powerCut(): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A fresh shoald in its own network namespace, driven through the real docker CLI.
 * shoald enters only the netns (nsenter --net), not a new mount namespace as `ip netns exec`
 * would, so its overlay mounts stay visible to clean-up.
 */
export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const name = uniqueName(opts.prefix ?? 'shtest');
  const ownNs = !opts.ns;
  const ns = opts.ns ?? (await createNetns(name));
  const dir = path.join(TEST_ROOT, name);
  const dataRoot = path.join(dir, 'data');
  const execRoot = path.join(dir, 'exec');
  const socket = path.join(dir, 'shoal.sock');
  fs.mkdirSync(dir, { recursive: true });
  const host = `unix://${socket}`;

  if (opts.dataRootTmpfs) {
    fs.mkdirSync(dataRoot, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${opts.dataRootTmpfs},mode=0711`, `${name}-data`, dataRoot]);
  }

  const d: TestDaemon = {
    name,
    ns,
    dir,
    dataRoot,
    execRoot,
    socket,
    host,
    pid: undefined,
    docker: (args, o = {}) =>
      run(DOCKER, args, {
        ...o,
        env: { ...process.env, DOCKER_HOST: host, DOCKER_CLI_HINTS: 'false', ...(o.env ?? {}) },
      }),
    inNs: (cmd, args, o) => inNetns(ns, cmd, args, o),
    async start() {
      // Overlay sandboxes named after this daemon, so destroy() finds them.
      const args = daemonArgs({
        ns,
        socket,
        dataRoot,
        execRoot,
        hostname: name,
        sandboxPrefix: `${name}-sb`,
        insecureRegistries: opts.insecureRegistries,
        labels: opts.labels,
        extraArgs: opts.extraArgs,
      });
      const child = startProcess('nsenter', args, path.join(dir, 'shoald.log'));
      d.pid = child.pid;
      await waitFor(
        `shoald ${name} to answer /_ping (log: ${dir}/shoald.log)`,
        async () => {
          if (child.exitCode !== null)
            throw new Error(
              `shoald exited with ${child.exitCode}: ${fs.readFileSync(path.join(dir, 'shoald.log'), 'utf8').slice(-2000)}`,
            );
          return ping(socket);
        },
        30_000,
      );
    },
    async kill9() {
      await stopProcess(d.pid, 'SIGKILL');
      d.pid = undefined;
    },
    async powerCut() {
      await d.kill9();
      // The daemon's and conmon's command lines name this directory; containers die with runc delete.
      await cutPower(
        { dirs: [dir], netnsInodes: [] },
        daemonPaths({ ...defaultConfig(), dataRoot, execRoot }).runcRoot,
        dir,
      );
      fs.rmSync(execRoot, { recursive: true, force: true });
    },
    async stop() {
      await stopProcess(d.pid, 'SIGTERM', 10_000);
      d.pid = undefined;
    },
    async destroy() {
      await d.stop();
      // SHOAL_KEEP_LOGS=<dir>: keep the daemon's log for a post-mortem.
      if (process.env.SHOAL_KEEP_LOGS) {
        fs.mkdirSync(process.env.SHOAL_KEEP_LOGS, { recursive: true });
        fs.copyFileSync(path.join(dir, 'shoald.log'), path.join(process.env.SHOAL_KEEP_LOGS, `${name}.log`));
        const etcdLog = path.join(dataRoot, 'swarm/etcd.log');
        if (fs.existsSync(etcdLog))
          fs.copyFileSync(etcdLog, path.join(process.env.SHOAL_KEEP_LOGS, `${name}.etcd.log`));
      }
      await purgeDaemonState({ dataRoot, execRoot });
      if (opts.dataRootTmpfs) await run('umount', ['-l', dataRoot], { allowFail: true });
      for (const sb of (fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []).filter((n) =>
        n.startsWith(`${name}-sb-`),
      ))
        await deleteNetns(sb);
      if (ownNs) await deleteNetns(ns);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await d.start();
  } catch (e) {
    await d.destroy();
    throw e;
  }
  return d;
}
