import fs from 'node:fs';
import { STDERR, STDOUT } from '../../net/streams.js';

/** One line of conmon's k8s-file log: `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`. */
export interface LogEntry {
  /** RFC 3339 with nanoseconds, in UTC with `Z` as Docker prints it. */
  time: string;
  ms: number;
  stream: typeof STDOUT | typeof STDERR;
  /** The text, with its newline unless the line was partial (P). */
  data: Buffer;
}

function parseLine(line: string): LogEntry | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a < 0 || b < 0) return undefined;
  const rawTime = line.slice(0, a);
  const stream = line.slice(a + 1, b) === 'stderr' ? STDERR : STDOUT;
  const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
  const text = c < 0 ? '' : line.slice(c + 1);
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(rawTime);
  if (!m) return undefined;
  const frac = m[2] ?? '';
  const ms = Date.parse(`${m[1]}${frac.slice(0, 4)}${m[3]}`);
  const time = m[3] === 'Z' || m[3] === '+00:00' ? `${m[1]}${frac}Z` : new Date(ms).toISOString();
  return { time, ms, stream, data: Buffer.from(tag.startsWith('P') ? text : text + '\n') };
}

/** Reads whole lines from `offset`; returns the entries and the offset after the last whole line. */
export function readLog(file: string | number, offset = 0): { entries: LogEntry[]; offset: number } {
  let fd: number;
  try {
    fd = typeof file === 'number' ? file : fs.openSync(file, 'r');
  } catch {
    return { entries: [], offset };
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return { entries: [], offset: size < offset ? 0 : offset };
    const buf = Buffer.alloc(size - offset);
    fs.readSync(fd, buf, 0, buf.length, offset);
    const end = buf.lastIndexOf(0x0a);
    if (end < 0) return { entries: [], offset };
    const entries: LogEntry[] = [];
    for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
      const e = parseLine(line);
      if (e) entries.push(e);
    }
    return { entries, offset: offset + end + 1 };
  } finally {
    if (typeof file !== 'number') fs.closeSync(fd);
  }
}

export function logSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

export interface FollowOptions {
  /** Start here (bytes); the current end for attach. */
  offset: number;
  /** Called for each new entry; false pauses nothing (writes are buffered by the socket). */
  onEntry: (e: LogEntry) => void;
  /** Checked after a read found nothing new: true ends the follow. */
  done: () => boolean;
  /** Aborts from outside (client went away). */
  signal: AbortSignal;
  everyMs?: number;
}

/** Tails the log file until `done()` says the writer is gone and everything was read. */
export async function followLog(file: string, o: FollowOptions): Promise<void> {
  let offset = o.offset;
  const every = o.everyMs ?? 100;
  // Held open: an auto-removed container's log is unlinked right after its exit, still unread.
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return;
  }
  try {
    while (!o.signal.aborted) {
      // `done` is read before the file, so a line written just before exit is never lost.
      const finished = o.done();
      const r = readLog(fd, offset);
      offset = r.offset;
      for (const e of r.entries) o.onEntry(e);
      if (r.entries.length === 0 && finished) return;
      if (r.entries.length === 0) await new Promise((res) => setTimeout(res, every));
    }
  } finally {
    fs.closeSync(fd);
  }
}
