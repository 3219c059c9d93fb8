import fs from 'node:fs';
import path from 'node:path';

/** One audited API call. Never a body, never a query string: they can carry secret values. */
export interface AuditEntry {
  time: string;
  /** The caller as identify() names them. */
  client: string;
  serial?: string;
  role?: string;
  method: string;
  /** The path without the query string and API version prefix. */
  path: string;
  /** What the call acts on: the route's id or name (a container, service, secret name…). */
  object?: string;
  status: number;
  outcome: 'ok' | 'denied' | 'failed' | 'stream';
}

/**
 * The audit log: JSON lines in `<data root>/audit/audit.log`, rotated when it would pass
 * `maxBytes` (audit.log.1 … audit.log.<keep>, oldest dropped). Appends are synchronous so the
 * order on disk is the order of the calls and a crash loses nothing already answered.
 */
export class AuditLog {
  readonly file: string;

  constructor(
    dir: string,
    private readonly maxBytes = 10 * 1024 * 1024,
    private readonly keep = 5,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'audit.log');
  }

  record(entry: AuditEntry): void {
    const line = JSON.stringify(entry) + '\n';
    let size = 0;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      /* first entry */
    }
    if (size > 0 && size + Buffer.byteLength(line) > this.maxBytes) this.rotate();
    fs.appendFileSync(this.file, line, { mode: 0o600 });
  }

  private rotate(): void {
    fs.rmSync(`${this.file}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) {
      if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
    }
    fs.renameSync(this.file, `${this.file}.1`);
  }
}
