import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { withFile } from './errors.js';

/**
 * Replaces `file` so a reader (or a restart after a crash or a full disk) sees the old content
 * or the new, never half: a temp file written and fsync'd, then renamed over. A failed write
 * (ENOSPC) throws, leaves the old file as it was and removes the temp file.
 */
export function writeFileAtomicSync(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    const fd = fs.openSync(tmp, 'w', mode);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw withFile(e, file);
  }
}
