import fs from 'node:fs';
import path from 'node:path';
import { runBatched } from '../../util/batch-run.js';
import { run } from '../../util/run.js';
import { CONMON } from './conmon-spawn.js';
import { conmonSpawner } from './conmon-spawner.js';

export const RUNC = '/usr/sbin/runc';
export { CONMON };

export interface RuncState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
}

/** runc with this daemon's own state root, so daemons on one host never see each other's containers. */
export class Runc {
  constructor(readonly root: string) {}

  private args(...a: string[]): string[] {
    return ['--root', this.root, ...a];
  }

  async state(id: string): Promise<RuncState | undefined> {
    const r = await run(RUNC, this.args('state', id), { allowFail: true });
    if (r.code !== 0) return undefined;
    return JSON.parse(r.stdout) as RuncState;
  }

  async list(): Promise<string[]> {
    const r = await run(RUNC, this.args('list', '-q'), { allowFail: true });
    return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : [];
  }

  /**
   * Starts a created container the way `runc start` does, without a runc process: its init
   * waits to open `exec.fifo` for writing; reading the fifo lets it exec the user's program,
   * and removing it marks the container running for runc. Falls back to `runc start` when
   * the fifo is not there (or not ours to read). `lives` says whether the init still runs
   * (/proc; a test gives its own to order the race with a short program).
   */
  async start(id: string, initPid?: number, lives: (pid: number) => boolean = processLives): Promise<void> {
    const fifo = path.join(this.root, id, 'exec.fifo');
    let fd: number;
    try {
      fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch {
      await runBatched(RUNC, this.args('start', id));
      return;
    }
    try {
      const buf = Buffer.alloc(16);
      // The init writes one byte once it sees a reader (it may not have opened its end yet:
      // an empty read then means "not yet" as long as it lives).
      const readByte = (): boolean => {
        try {
          return fs.readSync(fd, buf, 0, buf.length, null) > 0;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          return false;
        }
      };
      for (let waited = 0; ; waited += 2) {
        if (readByte()) break;
        // A short program (`cat`) may have been started and ended between the read and this
        // check: its init's byte is then in the fifo, and the start succeeded.
        if (initPid !== undefined && !lives(initPid)) {
          if (readByte()) break;
          throw new Error('container process is already dead');
        }
        if (waited > 30_000) throw new Error('timed out waiting for the container process to start');
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.rmSync(fifo, { force: true });
  }

  /** Sends a signal to the container's init; `all` reaches every process in it. */
  async kill(id: string, signal: string | number, all = false): Promise<void> {
    await runBatched(RUNC, this.args('kill', ...(all ? ['--all'] : []), id, String(signal)));
  }

  /** `runc update` with flags; resolves with its result (the caller words the error). */
  update(id: string, flags: string[]) {
    return run(RUNC, this.args('update', ...flags, id), { allowFail: true });
  }

  async pause(id: string): Promise<void> {
    await run(RUNC, this.args('pause', id));
  }

  async resume(id: string): Promise<void> {
    await run(RUNC, this.args('resume', id));
  }

  /** PIDs of every process in the container. */
  async ps(id: string): Promise<number[]> {
    const r = await run(RUNC, this.args('ps', '--format', 'json', id));
    return (JSON.parse(r.stdout || '[]') as number[] | null) ?? [];
  }

  /**
   * What `runc delete` does for a container whose init has exited (no hooks are ever set):
   * removes its cgroups and its state directory, without a runc process. False when it cannot
   * be sure (init alive, a cgroup still busy, unreadable state): then use `delete`.
   */
  removeStopped(id: string): boolean {
    const dir = path.join(this.root, id);
    let st: { init_process_pid: number; init_process_start: number; cgroup_paths?: Record<string, string> };
    try {
      st = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as typeof st;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(dir);
    }
    if (processStartTime(st.init_process_pid) === st.init_process_start) return false;
    for (const cg of new Set(Object.values(st.cgroup_paths ?? {}))) {
      try {
        fs.rmdirSync(cg);
      } catch (e) {
        // cpu and cpuacct are often one hierarchy under two names.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    return true;
  }

  async delete(id: string): Promise<void> {
    await runBatched(RUNC, this.args('delete', '--force', id), { allowFail: true });
  }

  /** argv for `runc exec` with a process spec file; the caller wires its stdio. */
  execArgs(id: string, processFile: string, tty: boolean): string[] {
    return this.args('exec', ...(tty ? ['--tty'] : []), '--process', processFile, id);
  }
}

export interface ConmonOptions {
  id: string;
  name: string;
  bundle: string;
  runDir: string;
  pidFile: string;
  conmonPidFile: string;
  exitDir: string;
  logPath: string;
  runcRoot: string;
  tty: boolean;
  stdin: boolean;
  /** Close the container's stdin when the first attached client detaches (`docker run -i`). */
  stdinOnce: boolean;
  stderrFile: string;
}

/**
 * Starts conmon, which runs `runc create` and then lives on as the container's parent: it
 * holds stdio, writes the k8s-file log and the exit code. Resolves with the container's init
 * PID once it is created (not started), read from conmon's sync pipe.
 */
export function conmonCreate(o: ConmonOptions): Promise<number> {
  const args = [
    '--api-version',
    '1',
    '-c',
    o.id,
    '-u',
    attachId(o.id),
    '-n',
    o.name,
    '-r',
    RUNC,
    '-b',
    o.bundle,
    '-p',
    o.pidFile,
    '-P',
    o.conmonPidFile,
    '--exit-dir',
    o.exitDir,
    '-0',
    o.runDir,
    '--socket-dir-path',
    o.runDir,
    '-l',
    `k8s-file:${o.logPath}`,
    '--log-level',
    'error',
    // One fork only: conmon stays our child, so this daemon reaps it (no zombie when it ends).
    '--sync',
    '--runtime-arg',
    '--root',
    '--runtime-arg',
    o.runcRoot,
    ...(o.tty ? ['-t'] : []),
    ...(o.stdin ? ['-i', ...(o.stdinOnce ? [] : ['--leave-stdin-open'])] : []),
  ];
  // From a small helper process: forking this daemon (hundreds of MiB) blocked its event loop
  // ~10 ms per container, one after the other, when a service's tasks start together.
  return conmonSpawner.create(args, { stderrFile: o.stderrFile, conmonPidFile: o.conmonPidFile });
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks, as runc records it); undefined when gone. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** True while `pid` exists and is not a zombie. */
function processLives(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** True when `pid` is a live process whose command is `name` (guards against PID reuse). */
export function processIs(pid: number | undefined, name: string): boolean {
  if (!pid) return false;
  try {
    const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return comm === name && state !== 'Z';
  } catch {
    return false;
  }
}

/** conmon's `-u`: names the attach socket's directory, kept short because socket paths are limited to 108 bytes. */
export function attachId(id: string): string {
  return id.slice(0, 12);
}
