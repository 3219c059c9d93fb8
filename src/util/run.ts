import { spawn, type SpawnOptions } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
    readonly stdout: string,
  ) {
    super(`${command} exited with ${code}: ${stderr.trim() || stdout.trim()}`);
  }
}

export interface RunOptions extends SpawnOptions {
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  /** Resolve instead of throwing when the exit code is not 0. */
  allowFail?: boolean;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program (never through a shell) and collects its output. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { input, allowFail, ...spawnOpts } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...spawnOpts, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code !== 0 && !allowFail) {
        reject(new CommandError([cmd, ...args].join(' '), code, result.stderr, result.stdout));
      } else {
        resolve(result);
      }
    });
    child.stdin!.on('error', () => {}); // child may exit before reading its input
    child.stdin!.end(input);
  });
}
