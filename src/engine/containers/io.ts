import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';
import { badRequest } from '../../util/errors.js';
import { STDERR, STDOUT, streamWriter } from '../../net/streams.js';
import type { ContainerManager } from './manager.js';
import { followLog, logSize, readLog, type LogEntry } from './logs.js';
import { attachId } from './runtime.js';
import { DetachWatcher, parseDetachKeys } from './detach-keys.js';

export interface LogOptions {
  stdout: boolean;
  stderr: boolean;
  follow: boolean;
  timestamps: boolean;
  /** Unix seconds (fractions allowed); 0 = from the start. */
  since: number;
  until: number;
  /** Last N lines; undefined = all. */
  tail?: number;
}

/** Docker's `since`/`until` query values: unix seconds with optional fraction, or RFC 3339. */
export function parseTimeParam(v: string | null): number {
  if (!v) return 0;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw badRequest(`invalid value for time: ${v}`);
  return ms / 1000;
}

function writerFor(out: Writable, tty: boolean, o: { stdout: boolean; stderr: boolean; timestamps: boolean }) {
  const write = streamWriter(out, tty);
  return (e: LogEntry) => {
    if (e.stream === STDOUT && !o.stdout) return;
    if (e.stream === STDERR && !o.stderr) return;
    write(e.stream, o.timestamps ? Buffer.concat([Buffer.from(e.time + ' '), e.data]) : e.data);
  };
}

/** `docker logs`: the log file as Docker frames it; with `follow`, until the container stops or the client leaves. */
export async function streamLogs(
  m: ContainerManager,
  ref: string,
  o: LogOptions,
  out: Writable,
  signal: AbortSignal,
): Promise<void> {
  const rec = m.get(ref);
  const file = m.paths(rec.id).log;
  const seq = m.exits(rec.id);
  const running = rec.state.Status === 'running' || rec.state.Status === 'paused';
  const write = writerFor(out, rec.config.Tty === true, o);
  const { entries, offset } = readLog(file, 0);
  let picked = entries.filter((e) => (!o.since || e.ms >= o.since * 1000) && (!o.until || e.ms <= o.until * 1000));
  if (o.tail !== undefined) picked = o.tail <= 0 ? [] : picked.slice(-o.tail);
  for (const e of picked) write(e);
  if (!o.follow || !running || o.until) return;
  await followLog(file, {
    offset,
    onEntry: (e) => {
      if (!o.since || e.ms >= o.since * 1000) write(e);
    },
    done: () => m.exits(rec.id) !== seq || !m.find(rec.id),
    signal,
  });
}

export interface AttachOptions {
  stream: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  logs: boolean;
  /** `detachKeys` of the request; Docker's ctrl-p,ctrl-q when unset. Watched for only with a TTY, as dockerd does. */
  detachKeys?: string;
}

/**
 * `docker attach` and the attach of a foreground `docker run`: output is read from the log
 * conmon writes (from now on, or from the start with `logs`), until the container's next exit;
 * stdin goes to conmon's attach socket (a SEQPACKET socket, reached through socat).
 */
export async function attach(m: ContainerManager, ref: string, o: AttachOptions, io: Duplex): Promise<void> {
  const rec = m.get(ref);
  const p = m.paths(rec.id);
  const seq = m.exits(rec.id);
  const start = logSize(p.log);
  const write = writerFor(io, rec.config.Tty === true, { ...o, timestamps: false });
  const ac = new AbortController();
  io.on('close', () => ac.abort());
  io.on('error', () => ac.abort());
  const watcher = rec.config.Tty === true ? new DetachWatcher(parseDetachKeys(o.detachKeys)) : undefined;
  if (o.logs) {
    const entries = readLog(p.log, 0).entries;
    // Clients such as docker-py read the 101 answer through a buffered reader and then take the
    // raw socket: output sent right behind the header would sit unread in that buffer. dockerd
    // never sends it that soon; neither do we.
    if (entries.length) await new Promise((r) => setTimeout(r, 100));
    for (const e of entries) write(e);
  }
  if (o.stdin && rec.config.OpenStdin)
    forwardStdin(m, rec.id, path.join(p.run, attachId(rec.id), 'attach'), io, seq, ac, watcher);
  else io.resume();
  if (o.stream && !ac.signal.aborted) {
    await followLog(p.log, {
      offset: o.logs ? logSize(p.log) : start,
      onEntry: write,
      done: () => m.exits(rec.id) !== seq || !m.find(rec.id),
      signal: ac.signal,
    });
  }
  io.end();
  // A detach ends the session for good: nothing more is read from the client.
  if (ac.signal.aborted) io.destroy();
}

/** Waits for the container to be running (attach comes before start in `docker run -i`), then pipes stdin in. */
function forwardStdin(
  m: ContainerManager,
  id: string,
  socket: string,
  io: Duplex,
  seq: number,
  ac: AbortController,
  watcher?: DetachWatcher,
): void {
  const signal = ac.signal;
  const pending: Buffer[] = [];
  let ended = false;
  let sink: Writable | undefined;
  io.on('data', (raw: Buffer) => {
    if (signal.aborted) return;
    let b = raw;
    let detach = false;
    if (watcher) ({ pass: b, detach } = watcher.push(raw));
    if (b.length) sink ? sink.write(b) : pending.push(b);
    // The detach keys end this attach; the container runs on with its stdin open.
    if (detach) ac.abort();
  });
  io.on('end', () => {
    ended = true;
    sink?.end();
  });
  io.resume(); // reading the request body may have paused the socket explicitly
  const connect = () => {
    if (signal.aborted || m.exits(id) !== seq || !m.find(id)) return;
    if (!m.isRunning(id) || !fs.existsSync(socket)) {
      setTimeout(connect, 50);
      return;
    }
    // type=5: SOCK_SEQPACKET, which node's net module cannot open.
    const child = spawn('socat', ['-', `UNIX-CONNECT:${socket},type=5`], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => undefined);
    child.stdin.on('error', () => undefined);
    signal.addEventListener('abort', () => child.kill());
    sink = child.stdin;
    for (const b of pending.splice(0)) sink.write(b);
    if (ended) sink.end();
  };
  connect();
}
