import fs from 'node:fs';
import path from 'node:path';

/** One line of a daemon's audit log (<data root>/audit/audit.log, JSON). */
export type AuditEntry = Record<string, unknown>;

/** Every entry of the audit log of the daemon whose data root is `dataRoot`, oldest first. */
export function auditEntries(dataRoot: string): AuditEntry[] {
  return fs
    .readFileSync(path.join(dataRoot, 'audit', 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry);
}
