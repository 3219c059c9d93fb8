import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandError, run, type RunResult } from './run.js';

/** One program run of a batch: argv, and what goes to its stdin (nothing when absent). */
export interface BatchItem {
  cmd: string;
  args: readonly string[];
  input?: string;
}

/** A word for sh, taken literally. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The sh script that runs every item at once (each in the background) and waits for all:
 * item i's stdout, stderr and exit code land in `<dir>/<i>.out`, `.err`, `.rc`. Input goes
 * through a quoted here-document (nothing in it is expanded), which ends it with a newline.
 */
export function batchScript(
  items: BatchItem[],
  dir: string,
  delimiter = `SHOAL_EOF_${randomBytes(6).toString('hex')}`,
): string {
  const lines = [`d=${shQuote(dir)}`];
  items.forEach((it, i) => {
    const argv = [it.cmd, ...it.args].map(shQuote).join(' ');
    if (it.input === undefined) {
      lines.push(`{ ${argv} </dev/null; echo $? >"$d/${i}.rc"; } >"$d/${i}.out" 2>"$d/${i}.err" &`);
      return;
    }
    if (it.input.split('\n').includes(delimiter)) throw new Error('batch input contains the here-document delimiter');
    const body = it.input.endsWith('\n') ? it.input : it.input + '\n';
    lines.push(
      `{ ${argv} <<'${delimiter}'`,
      body + delimiter,
      ` echo $? >"$d/${i}.rc"; } >"$d/${i}.out" 2>"$d/${i}.err" &`,
    );
  });
  lines.push('wait', '');
  return lines.join('\n');
}

/** Reads back what `batchScript` left for item i; no exit code file means it never finished. */
export function batchResult(dir: string, i: number): RunResult {
  const read = (ext: string) => {
    try {
      return fs.readFileSync(path.join(dir, `${i}.${ext}`), 'utf8');
    } catch {
      return undefined;
    }
  };
  const rc = Number.parseInt(read('rc') ?? '', 10);
  return { code: Number.isFinite(rc) ? rc : null, stdout: read('out') ?? '', stderr: read('err') ?? '' };
}

interface Pending extends BatchItem {
  allowFail: boolean;
  resolve(r: RunResult): void;
  reject(e: unknown): void;
}

/**
 * Runs short helper programs (ip, mount, runc start…) many to one `sh` process. Node's spawn
 * blocks the event loop for milliseconds each (fork of a large process, then a wait until the
 * child has exec'd); with tens of containers starting at once that serialises the daemon. A
 * call made while `maxBatches` batches are running, or in the same turn as others, waits and
 * goes with the next batch: one spawn for all of them, and they run concurrently in it.
 */
export class CommandBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private swept = false;
  /** sh processes started so far (diagnostics, tests). */
  batches = 0;

  constructor(
    private readonly maxBatches = 3,
    private readonly maxItems = 64,
  ) {}

  run(
    cmd: string,
    args: readonly string[],
    opts: { input?: string | Buffer; allowFail?: boolean } = {},
  ): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const input = opts.input === undefined ? undefined : opts.input.toString();
      this.queue.push({ cmd, args, input, allowFail: opts.allowFail === true, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxBatches || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      // flush settles every item itself; only removing its temp dir can throw (the next sweep removes it).
      this.flush().catch(() => undefined);
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= this.maxBatches || this.queue.length === 0) return;
    const items = this.queue.splice(0, this.maxItems);
    this.inFlight++;
    this.batches++;
    this.schedule();
    let dir: string | undefined;
    try {
      if (!this.swept) sweepStaleBatchDirs();
      this.swept = true;
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-batch-${process.pid}-`));
      const r = await run('/bin/sh', ['-c', batchScript(items, dir)], { allowFail: true });
      items.forEach((it, i) => {
        const res = batchResult(dir!, i);
        if (res.code === null && !res.stderr) res.stderr = r.stderr;
        if (res.code !== 0 && !it.allowFail)
          it.reject(new CommandError([it.cmd, ...it.args].join(' '), res.code, res.stderr, res.stdout));
        else it.resolve(res);
      });
    } catch (e) {
      for (const it of items) it.reject(e);
    } finally {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      this.inFlight--;
      this.schedule();
    }
  }
}

/** Batch directories left by a process that died mid-batch (kill -9): its PID is gone. */
function sweepStaleBatchDirs(): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(os.tmpdir());
  } catch {
    /* none */
  }
  for (const n of names) {
    const m = /^shoal-batch-(\d+)-/.exec(n);
    if (!m || fs.existsSync(`/proc/${m[1]}`)) continue;
    fs.rmSync(path.join(os.tmpdir(), n), { recursive: true, force: true });
  }
}

/** The daemon's batcher for helper programs on hot paths (container start/stop, network wiring). */
export const batcher = new CommandBatcher(8, 32);

/** `run`'s contract (exit code 0 or a CommandError, unless allowFail), through the shared batcher. */
export function runBatched(
  cmd: string,
  args: readonly string[],
  opts: { input?: string | Buffer; allowFail?: boolean } = {},
): Promise<RunResult> {
  return batcher.run(cmd, args, opts);
}
