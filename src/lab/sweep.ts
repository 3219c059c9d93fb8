import fs from 'node:fs';
import { run } from '../util/run.js';

/**
 * Finding and removing what lab machines leave in the kernel after a stop or a crash:
 * processes (by PID only), runc containers and mounts. Everything is found from what the lab
 * made (its directory, its namespaces), never by a program's name.
 */

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signals a process and waits until it is gone, with SIGKILL after `graceMs`. */
export async function killPid(
  pid: number | undefined,
  signal: NodeJS.Signals = 'SIGKILL',
  graceMs = 5000,
): Promise<void> {
  if (!pid || !alive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(20);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    const hard = Date.now() + 5000;
    while (alive(pid) && Date.now() < hard) await sleep(20);
  }
}

function readProc(pid: number, what: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${what}`, 'utf8');
  } catch {
    return undefined;
  }
}

function linkProc(pid: number, what: string): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/${what}`);
  } catch {
    return undefined;
  }
}

/** This process and its ancestors: the command running a sweep may itself name the lab directory. */
function selfAndAncestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    const stat = readProc(pid, 'stat');
    if (!stat) break;
    // The command name in parentheses may contain spaces: the fields after the last ')' are fixed.
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return out;
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** The inode identifying a network namespace, from its bind mount under /run/netns. */
export function netnsInode(nsPath: string): number | undefined {
  try {
    return fs.statSync(nsPath).ino;
  } catch {
    return undefined;
  }
}

export interface ProcessMatch {
  /** Directories: a process whose command line or working directory lies under one matches. */
  dirs: string[];
  /** Network namespace inodes: a process living in one matches. */
  netnsInodes: number[];
}

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** An argument naming `dir` or a path under it (`/lab` does not match `/lab2`). */
export function mentions(arg: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  let at = arg.indexOf(d);
  while (at >= 0) {
    const next = arg[at + d.length];
    if (next === undefined || next === '/') return true;
    at = arg.indexOf(d, at + 1);
  }
  return false;
}

/** PIDs of the processes a lab (or one machine) left, never including the caller or its ancestors. */
export function findProcesses(match: ProcessMatch): number[] {
  const skip = selfAndAncestors();
  const inodes = new Set(match.netnsInodes);
  const found: number[] = [];
  for (const pid of allPids()) {
    if (skip.has(pid)) continue;
    const net = linkProc(pid, 'ns/net'); // "net:[4026532…]"
    const ino = net ? Number(/\[(\d+)\]/.exec(net)?.[1]) : NaN;
    if (inodes.has(ino)) {
      found.push(pid);
      continue;
    }
    const cmdline = readProc(pid, 'cmdline');
    if (cmdline === undefined) continue;
    const args = cmdline.split('\0');
    const cwd = linkProc(pid, 'cwd');
    if (match.dirs.some((d) => (cwd !== undefined && under(cwd, d)) || args.some((a) => mentions(a, d))))
      found.push(pid);
  }
  return found;
}

/** Kills every matching process, again until none is left (a dying parent may leave children behind). */
export async function killProcesses(match: ProcessMatch): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const pids = findProcesses(match);
    if (pids.length === 0) return;
    await Promise.all(pids.map((p) => killPid(p, 'SIGKILL')));
  }
}

/** Force-deletes every runc container recorded under a runc root (their processes die with them). */
export async function deleteRuncContainers(runcRoot: string): Promise<void> {
  if (!fs.existsSync(runcRoot)) return;
  const r = await run('runc', ['--root', runcRoot, 'list', '-q'], { allowFail: true });
  for (const id of r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)) {
    await run('runc', ['--root', runcRoot, 'delete', '-f', id], { allowFail: true });
  }
}

/** Mount points at or under `dir` in this mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .filter(Boolean)
    .map((l) => unescapeMount(l.split(' ')[4]));
  return [...new Set(points.filter((p) => under(p, dir)))].sort((a, b) => b.length - a.length);
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Unmounts everything under `dir`, lazily when something still holds a mount busy. */
export async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) {
      const r = await run('umount', [p], { allowFail: true });
      if (r.code !== 0) await run('umount', ['-l', p], { allowFail: true });
    }
  }
}

/**
 * What a power cut takes from a daemon that lives in `dir` (the daemon itself already killed):
 * every matching process (conmon, containers), the runc containers under `runcRoot` (their
 * processes die with them) and the mounts under `dir`. The data on disk stays.
 */
export async function cutPower(match: ProcessMatch, runcRoot: string, dir: string): Promise<void> {
  await killProcesses(match);
  await deleteRuncContainers(runcRoot);
  await killProcesses(match);
  await unmountUnder(dir);
}
