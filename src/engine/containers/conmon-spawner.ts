import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ConmonFiles } from './conmon-spawn.js';
import type { SpawnReply, SpawnRequest } from './conmon-spawner-child.js';

const CHILD = fileURLToPath(new URL('./conmon-spawner-child.js', import.meta.url));

/**
 * Spawns conmon from a small helper process started on first use. `spawn` from the daemon
 * forks the daemon (its whole address space): ~10 ms of blocked event loop per container at
 * 160 MiB, in series when a service's tasks start together; the helper forks a fraction of
 * that, off the daemon's event loop. The helper holds nothing: if it dies, the calls in flight
 * fail (their containers fail to start, as a failed conmon would) and the next call starts a
 * new one.
 */
export class ConmonSpawner {
  private child?: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { resolve(pid: number): void; reject(e: Error): void }>();

  create(args: string[], files: ConmonFiles): Promise<number> {
    const child = this.ensure();
    const seq = ++this.seq;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.hold();
      child.send({ seq, args, ...files } satisfies SpawnRequest, (err) => {
        if (err) this.settle({ seq, error: `conmon spawner: ${err.message}` });
      });
    });
  }

  private ensure(): ChildProcess {
    if (this.child?.connected) return this.child;
    // No inherited flags (--inspect, --cpu-prof): the helper is a plain Node process.
    const child = fork(CHILD, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
    child.on('message', (m: SpawnReply) => this.settle(m));
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
      for (const seq of [...this.pending.keys()]) this.settle({ seq, error: 'conmon spawner exited' });
    });
    child.on('error', () => undefined);
    this.child = child;
    return child;
  }

  private settle(m: SpawnReply): void {
    const p = this.pending.get(m.seq);
    if (!p) return;
    this.pending.delete(m.seq);
    if ('pid' in m) p.resolve(m.pid);
    else p.reject(new Error(m.error));
    this.hold();
  }

  /** The helper keeps this process alive only while a call waits for it. */
  private hold(): void {
    const c = this.child;
    if (!c) return;
    if (this.pending.size) {
      c.ref();
      c.channel?.ref();
    } else {
      c.unref();
      c.channel?.unref();
    }
  }
}

/** The process's one spawner. */
export const conmonSpawner = new ConmonSpawner();
