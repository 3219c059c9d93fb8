import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { netnsPath } from './network.js';
import { alive } from './sweep.js';

/** The compiled daemon next to this module (dist/src/cli/shoald.js). */
export const SHOALD_JS = fileURLToPath(new URL('../cli/shoald.js', import.meta.url));

/** Where a daemon lives: its name, network namespace, directories and API socket. */
export interface DaemonPlaces {
  name: string;
  ns: string;
  dir: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
}

export interface MachineDaemonSpec extends DaemonPlaces {
  log: string;
  insecureRegistries: string[];
  labels: string[];
  /** Further shoald flags (the TLS listener). */
  extraArgs?: string[];
}

/** Answers true once the Engine API on `socket` says OK to /_ping. */
export function ping(socket: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/_ping', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** True when `pid` is alive and is the daemon serving `socket` (not a process that reused the PID). */
export function isDaemon(pid: number | undefined, socket: string): boolean {
  if (!pid || !alive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`unix://${socket}`);
  } catch {
    return false;
  }
}

/** The machine's overlay sandbox namespaces: `<machine ns>-sb-<network>`. */
export function machineSandboxPrefix(machineNs: string): string {
  return `${machineNs}-sb`;
}

/** How one shoald is started: where it listens and keeps state, and what it calls its sandboxes. */
export interface DaemonLaunch {
  ns: string;
  socket: string;
  dataRoot: string;
  execRoot: string;
  hostname: string;
  /** Overlay sandboxes (kernel-wide /run/netns) are named `<sandboxPrefix>-…`, so clean-up finds them. */
  sandboxPrefix: string;
  insecureRegistries?: string[];
  labels?: string[];
  /** Further shoald flags (e.g. the TCP listener and its TLS files). */
  extraArgs?: string[];
}

/**
 * nsenter's arguments that run shoald inside the namespace `ns`. nsenter enters the network
 * namespace only: `ip netns exec` would also make a new mount namespace and hide the daemon's
 * overlay mounts from the clean-up.
 */
/**
 * V8 flags shoald runs with (bin/shoald's shebang too). A young generation of 64 MiB semi-spaces
 * instead of 16: the manager allocates a short-lived object per store event and per RPC, and
 * with the default, scavenges took a fifth of its time at 100,000 tasks (bench/README.md).
 */
export const SHOALD_NODE_FLAGS = ['--max-semi-space-size=64'];

export function daemonArgs(l: DaemonLaunch): string[] {
  const args = [
    `--net=${netnsPath(l.ns)}`,
    '--',
    process.execPath,
    ...SHOALD_NODE_FLAGS,
    '--enable-source-maps',
    SHOALD_JS,
    '-H',
    `unix://${l.socket}`,
    '--data-root',
    l.dataRoot,
    '--exec-root',
    l.execRoot,
    '--hostname',
    l.hostname,
    '--network-sandbox-prefix',
    l.sandboxPrefix,
  ];
  for (const r of l.insecureRegistries ?? []) args.push('--insecure-registry', r);
  for (const lb of l.labels ?? []) args.push('--label', lb);
  args.push(...(l.extraArgs ?? []));
  return args;
}

/**
 * Starts shoald detached inside the machine's namespace (daemonArgs). Its working directory is
 * the machine's, so a sweep finds it; its sandboxes carry the machine's namespace name, so
 * stop, rm and prune find them.
 */
export function spawnDaemon(spec: MachineDaemonSpec): { pid: number; exited: () => number | null } {
  fs.mkdirSync(spec.dir, { recursive: true });
  const args = daemonArgs({
    ...spec,
    hostname: spec.name,
    sandboxPrefix: machineSandboxPrefix(spec.ns),
    extraArgs: spec.extraArgs,
  });
  fs.rmSync(spec.socket, { force: true });
  const fd = fs.openSync(spec.log, 'a');
  const child = spawn('nsenter', args, { stdio: ['ignore', fd, fd], detached: true, cwd: spec.dir });
  fs.closeSync(fd);
  child.unref();
  if (!child.pid) throw new Error(`could not start shoald for ${spec.name}`);
  return { pid: child.pid, exited: () => child.exitCode };
}

/** Waits until the daemon answers /_ping; fails early with the log's tail when it exits. */
export async function waitForDaemon(
  spec: MachineDaemonSpec,
  exited: () => number | null,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const code = exited();
    if (code !== null) throw new Error(`shoald on ${spec.name} exited with ${code}:\n${tail(spec.log)}`);
    if (await ping(spec.socket)) return;
    if (Date.now() > deadline)
      throw new Error(`shoald on ${spec.name} did not answer /_ping within ${timeoutMs / 1000}s (log: ${spec.log})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-2000);
  } catch {
    return '';
  }
}
