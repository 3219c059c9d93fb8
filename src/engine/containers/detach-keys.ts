import { badRequest } from '../../util/errors.js';

/** Docker's default detach sequence: ctrl-p, ctrl-q. */
export const DEFAULT_DETACH_KEYS = Buffer.from([0x10, 0x11]);

/** moby/term's names for control bytes 0 to 31: ctrl-@, ctrl-a … ctrl-z, ctrl-[, ctrl-\, ctrl-], ctrl-^, ctrl-_. */
const CTRL = ['@', ...'abcdefghijklmnopqrstuvwxyz', '[', '\\', ']', '^', '_'].map((c) => `ctrl-${c}`);

/**
 * `--detach-keys` / `detachKeys` (`ctrl-p,ctrl-q`, `a,ctrl-x`) as the bytes to watch for, as
 * moby/term ToBytes reads it; empty means Docker's default. A bad key is a 400 with dockerd's words.
 */
export function parseDetachKeys(spec: string | undefined | null, what = 'detach keys'): Buffer {
  if (!spec) return DEFAULT_DETACH_KEYS;
  const out: number[] = [];
  for (const key of spec.split(',')) {
    if (key.length === 1) {
      out.push(key.charCodeAt(0));
      continue;
    }
    const code = CTRL.indexOf(key);
    if (code < 0) throw badRequest(`Invalid ${what} (${spec}) provided`);
    out.push(code);
  }
  return Buffer.from(out);
}

/**
 * Watches a TTY's input for the detach sequence, as moby/term's escape proxy: bytes that may be
 * the start of it are held back, then either the whole sequence arrived (detach) or they are
 * passed on with what follows.
 */
export class DetachWatcher {
  private held = 0;

  constructor(private readonly keys: Buffer) {}

  /** The bytes to pass on, and whether the sequence completed (nothing after it is passed). */
  push(chunk: Buffer): { pass: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const c of chunk) {
      if (c === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) {
          this.held = 0;
          return { pass: Buffer.from(out), detach: true };
        }
        continue;
      }
      // Not the sequence after all: what was held goes through, then this byte starts afresh.
      for (let i = 0; i < this.held; i++) out.push(this.keys[i]);
      this.held = 0;
      if (c === this.keys[0]) {
        this.held = 1;
        if (this.keys.length === 1) return { pass: Buffer.from(out), detach: true };
      } else out.push(c);
    }
    return { pass: Buffer.from(out), detach: false };
  }
}
