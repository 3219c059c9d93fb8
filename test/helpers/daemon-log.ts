import fs from 'node:fs';
import path from 'node:path';
import type { TestDaemon } from './daemon.js';

/** The entries of a test daemon's JSON log (pino, in <dir>/shoald.log) with this message. */
export function logEntries(d: Pick<TestDaemon, 'dir'>, msg: string): Record<string, unknown>[] {
  return fs
    .readFileSync(path.join(d.dir, 'shoald.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

/** Agent sessions the dispatchers of these managers registered, per node ID (session IDs, in order). */
export function sessionRegistrations(managers: Pick<TestDaemon, 'dir'>[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of managers) {
    for (const l of logEntries(m, 'agent session registered'))
      out.set(l.node as string, [...(out.get(l.node as string) ?? []), l.session as string]);
  }
  for (const v of out.values()) v.sort();
  return out;
}
