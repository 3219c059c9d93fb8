import fs from 'node:fs';
import os from 'node:os';
import { badRequest } from '../../util/errors.js';

/** `SIGTERM`, `TERM`, `15` → the number runc and the kernel use. Docker's 400 for anything else. */
export function parseSignal(s: string): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n > 0 && n < 65) return n;
  } else {
    const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as NodeJS.Signals;
    const n = os.constants.signals[name];
    if (n !== undefined) return n;
  }
  throw badRequest(`Invalid signal: ${s}`);
}

/** The parent of `pid` from /proc (undefined when it is gone). */
export function parentPid(pid: number): number | undefined {
  try {
    const m = /^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
