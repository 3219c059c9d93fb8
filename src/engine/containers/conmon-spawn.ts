import { spawn } from 'node:child_process';
import fs from 'node:fs';

export const CONMON = '/usr/bin/conmon';

/** Where conmon's stderr goes and where its PID is recorded (adoption and purge read it). */
export interface ConmonFiles {
  stderrFile: string;
  conmonPidFile: string;
}

/**
 * Spawns conmon with `args` (which include `--sync`) and resolves with the container's init PID
 * once `runc create` is done, read from conmon's sync pipe. The caller's process becomes
 * conmon's parent and reaps it.
 */
export function spawnConmon(args: string[], o: ConmonFiles): Promise<number> {
  const errFd = fs.openSync(o.stderrFile, 'a');
  return new Promise((resolve, reject) => {
    // fd 3 is the sync pipe; detached: conmon must outlive its parent and the daemon, even their kill -9.
    const child = spawn(CONMON, args, {
      stdio: ['ignore', 'ignore', errFd, 'pipe'],
      detached: true,
      env: { ...process.env, _OCI_SYNCPIPE: '3' },
    });
    fs.closeSync(errFd);
    child.unref();
    // With --sync conmon does not write -P itself; adoption and purge read it.
    if (child.pid) fs.writeFileSync(o.conmonPidFile, String(child.pid));
    const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    let buf = '';
    let done = false;
    // runc create normally takes well under a second; a hung one must not hold the container forever.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error('timed out waiting for conmon to create the container'));
    }, 60_000);
    const finish = (err: Error | undefined, pid?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sync.destroy();
      if (err) reject(err);
      else resolve(pid!);
    };
    sync.on('data', (b: Buffer) => {
      buf += b.toString();
      const nl = buf.indexOf('\n');
      const text = nl >= 0 ? buf.slice(0, nl) : buf;
      let msg: { data: number; message?: string };
      try {
        msg = JSON.parse(text) as typeof msg;
      } catch {
        return; // not complete yet
      }
      if (msg.data > 0) finish(undefined, msg.data);
      else finish(new Error(msg.message ?? `conmon reported ${msg.data}`));
    });
    sync.on('error', () => undefined);
    sync.on('end', () => {
      let detail = '';
      try {
        detail = fs.readFileSync(o.stderrFile, 'utf8').trim().split('\n').slice(-3).join(' ');
      } catch {
        /* none */
      }
      finish(new Error(`conmon exited before the container was created${detail ? `: ${detail}` : ''}`));
    });
    child.on('error', (e) => finish(e));
  });
}
