import fs from 'node:fs';
import path from 'node:path';
import { readJsonFile, writeJsonFileAtomic } from '../engine/network/state-file.js';
import { labPaths, machinePaths } from './settings.js';

/** What the lab remembers about itself; the prefix and subnet are fixed once the lab exists. */
export interface LabRecord {
  prefix: string;
  subnet: string;
  /** The lab registry's process, while it runs. */
  registryPid?: number;
}

/** What the lab remembers about one machine, so `ls` and `start` work from any later command. */
export interface MachineRecord {
  name: string;
  /** Host index in the lab subnet; names the hub end of its veth. */
  index: number;
  address: string;
  ns: string;
  hubVeth: string;
  created: string;
  /** Desired state: false after `stop`. */
  running: boolean;
  /** Cut off the lab network by `disconnect`; kept across stop/start. */
  disconnected: boolean;
  /** The daemon's process while it runs. */
  pid?: number;
  /** Engine labels (`k=v`), given to its daemon on every boot (docker-machine's --engine-label). */
  engineLabels?: string[];
  /** More insecure registries than the lab's own, on every boot. */
  insecureRegistries?: string[];
  /** shoald flags as `flag=value` or `flag` (docker-machine's --engine-opt), on every boot. */
  engineOpts?: string[];
}

const MACHINE_FILE = 'machine.json';

export function readLab(labDir: string): LabRecord | undefined {
  return readJsonFile<LabRecord>(labPaths(labDir).state);
}

export function writeLab(labDir: string, rec: LabRecord): void {
  writeJsonFileAtomic(labPaths(labDir).state, rec);
}

export function readMachine(labDir: string, name: string): MachineRecord | undefined {
  return readJsonFile<MachineRecord>(path.join(machinePaths(labDir, name).dir, MACHINE_FILE));
}

export function writeMachine(labDir: string, rec: MachineRecord): void {
  writeJsonFileAtomic(path.join(machinePaths(labDir, rec.name).dir, MACHINE_FILE), rec);
}

/** Every machine with a record, sorted by name; directories without one (a create that crashed early) are skipped. */
export function listMachines(labDir: string): MachineRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(labPaths(labDir).machines);
  } catch {
    return [];
  }
  return names.sort().flatMap((n) => {
    const rec = readMachine(labDir, n);
    return rec ? [rec] : [];
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates `file` holding `content` only if it does not exist, never visible half-written (link is atomic). */
function createExclusive(file: string, content: string): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true }); // a prune may have removed the lab meanwhile
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, content);
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function readPid(file: string): number | undefined {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes a lock whose holder died. Only one process breaks it at a time (holding `<lock>.break`),
 * and only after checking again that the same dead process still holds it, so two waiters can
 * never both remove a lock and one of them remove the other's fresh one.
 */
function breakStaleLock(lock: string, deadHolder: number): void {
  const breaker = `${lock}.break`;
  try {
    if (Date.now() - fs.statSync(breaker).mtimeMs > 10_000) fs.rmSync(breaker, { force: true }); // its breaker died too
  } catch {
    /* no breaker */
  }
  if (!createExclusive(breaker, String(process.pid))) return;
  try {
    if (readPid(lock) === deadHolder) fs.rmSync(lock, { force: true });
  } finally {
    fs.rmSync(breaker, { force: true });
  }
}

/**
 * Runs `fn` holding the lab's lock file, so two `shoal machine` commands never hand out the same
 * address or tear down what the other is building. A lock left by a dead process is taken over.
 */
export async function withLabLock<T>(labDir: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const lock = labPaths(labDir).lock;
  fs.mkdirSync(labDir, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  while (!createExclusive(lock, String(process.pid))) {
    const holder = readPid(lock);
    if (holder !== undefined && !pidAlive(holder)) {
      breakStaleLock(lock, holder);
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the lab in ${labDir} is busy (locked by process ${holder})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
