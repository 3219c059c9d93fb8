import fs from 'node:fs';
import path from 'node:path';
import { withFile } from '../../util/errors.js';

/** Reads a JSON state file; undefined when it does not exist yet. */
export function readJsonFile<T>(file: string): T | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(raw) as T;
}

/** Writes `value` as JSON to a new file (mode 0600) and fsyncs it: the first half of an atomic replace. */
export function writeJsonSynced(file: string, value: unknown): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    // writeFileSync loops until all is written; one writeSync may write only part.
    fs.writeFileSync(fd, JSON.stringify(value, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces a JSON state file atomically: a crash leaves either the old or the new content,
 * never half of one (write a temp file, fsync it, rename over, fsync the directory). Without
 * `syncDir` the rename itself may be lost in a crash (the old content stays): enough for
 * records rewritten on every state change, as Docker's own atomic writes do.
 */
export function writeJsonFileAtomic(file: string, value: unknown, opts: { syncDir?: boolean } = {}): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeJsonSynced(tmp, value);
    fs.renameSync(tmp, file);
  } catch (e) {
    // A failed write (ENOSPC) leaves the old file as it was and no temp file behind.
    fs.rmSync(tmp, { force: true });
    throw withFile(e, file);
  }
  if (opts.syncDir === false) return;
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}
