import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { badRequest, conflict, notFound } from '../../util/errors.js';
import { newHexId } from '../../util/ids.js';
import { STDERR, STDOUT, streamWriter } from '../../net/streams.js';
import type { ContainerTable } from './table.js';
import { RUNC } from './runtime.js';
import { groupAddOf, processSpec } from './spec.js';
import { DetachWatcher, parseDetachKeys } from './detach-keys.js';

/** `POST /containers/{id}/exec` body. */
export interface ExecConfig {
  Cmd?: string[];
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Privileged?: boolean;
  DetachKeys?: string;
}

export interface ExecInstance {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  started: boolean;
  exitCode: number | null;
  pid: number;
  /** Resolves when the process ended. */
  done?: Promise<void>;
}

/** Exec instances: created, then started once (runc exec in the running container), then inspected for the exit code. */
export class Execs {
  private readonly table = new Map<string, ExecInstance>();

  constructor(private readonly m: ContainerTable) {}

  /** Exec IDs of a container, for its inspect (null when none, as dockerd shows it). */
  idsOf(containerId: string): string[] | null {
    const ids = [...this.table.values()].filter((e) => e.containerId === containerId).map((e) => e.id);
    return ids.length ? ids : null;
  }

  /** A removed container's execs go with it. */
  forgetContainer(containerId: string): void {
    for (const [id, e] of this.table) if (e.containerId === containerId) this.table.delete(id);
  }

  create(ref: string, cfg: ExecConfig): string {
    const rec = this.m.get(ref);
    if (!cfg.Cmd || cfg.Cmd.length === 0) throw badRequest('No exec command specified');
    if (cfg.DetachKeys) parseDetachKeys(cfg.DetachKeys, 'escape keys');
    if (rec.state.Status === 'paused')
      throw conflict(`Container ${rec.id} is paused, unpause the container before exec`);
    if (rec.state.Status !== 'running') throw conflict(`Container ${rec.id} is not running`);
    const id = newHexId();
    this.table.set(id, {
      id,
      containerId: rec.id,
      config: cfg,
      running: false,
      started: false,
      exitCode: null,
      pid: 0,
    });
    this.m.event(rec, `exec_create: ${cfg.Cmd.join(' ')}`, { execID: id });
    return id;
  }

  get(id: string): ExecInstance {
    const e = this.table.get(id);
    if (!e) throw notFound(`No such exec instance: ${id}`);
    return e;
  }

  inspect(id: string): Record<string, unknown> {
    const e = this.get(id);
    const [entrypoint, ...args] = e.config.Cmd ?? [];
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: {
        tty: e.config.Tty === true,
        entrypoint,
        arguments: args,
        privileged: e.config.Privileged === true,
        user: e.config.User ?? '',
      },
      OpenStdin: e.config.AttachStdin === true,
      OpenStderr: e.config.AttachStderr === true,
      OpenStdout: e.config.AttachStdout === true,
      CanRemove: false,
      ContainerID: e.containerId,
      DetachKeys: e.config.DetachKeys ?? '',
      Pid: e.pid,
    };
  }

  /** Checks that the exec can start; call before hijacking so errors still carry a status. */
  check(id: string): ExecInstance {
    const e = this.get(id);
    if (e.started) throw conflict(`Exec command ${id} has already run`);
    if (!this.m.find(e.containerId) || !this.m.isRunning(e.containerId))
      throw conflict(`Container ${e.containerId} is not running`);
    return e;
  }

  /**
   * Runs the process with `runc exec` (foreground: runc relays stdio, or a TTY it allocates
   * itself with `--tty`). Output goes to `io` framed as Docker does; the exit code is kept.
   */
  start(id: string, io: Duplex | undefined, rawStream: boolean): Promise<void> {
    const e = this.check(id);
    const tty = e.config.Tty === true;
    const rec = this.m.get(e.containerId);
    const p = this.m.paths(rec.id);
    e.started = true;
    e.running = true;
    this.m.event(rec, `exec_start: ${e.config.Cmd!.join(' ')}`, { execID: id });
    const env = [...(rec.config.Env ?? [])];
    for (const kv of e.config.Env ?? []) {
      const k = kv.split('=')[0];
      const i = env.findIndex((x) => x.split('=')[0] === k);
      if (i >= 0) env[i] = kv;
      else env.push(kv);
    }
    const spec = processSpec(p.rootfs, e.config.Cmd!, env, {
      tty,
      user: e.config.User || rec.config.User,
      cwd: e.config.WorkingDir || rec.config.WorkingDir,
      privileged: e.config.Privileged || rec.hostConfig.Privileged === true,
      groupAdd: groupAddOf(rec.hostConfig),
    });
    const specFile = path.join(p.run, `exec-${id.slice(0, 16)}.json`);
    fs.writeFileSync(specFile, JSON.stringify(spec));
    const stdin = io && e.config.AttachStdin ? 'pipe' : 'ignore';
    const argv = [RUNC, ...this.m.runc.execArgs(rec.id, specFile, tty)];
    // `runc exec --tty` in the foreground wants a terminal of its own to relay: script(1) lends it one.
    const child = tty
      ? spawn(
          'script',
          ['-q', '-e', '-f', '-c', `stty raw -echo; exec ${argv.map((a) => `'${a}'`).join(' ')}`, '/dev/null'],
          {
            stdio: [stdin === 'ignore' ? 'pipe' : stdin, 'pipe', 'pipe'],
            // Raw from the start: no second CR/LF translation by script's own terminal.
            env: { ...process.env, SHELL: '/bin/sh' },
          },
        )
      : spawn(RUNC, argv.slice(1), { stdio: [stdin, 'pipe', 'pipe'] });
    e.pid = child.pid ?? 0;
    const session = { detached: false };
    const writeOut = io ? streamWriter(io, rawStream) : () => true;
    const write = (stream: number, b: Buffer) => (session.detached ? true : writeOut(stream, b));
    const crlf = tty ? new CrlfNormalizer() : undefined;
    child.stdout!.on('data', (b: Buffer) => {
      if (e.config.AttachStdout !== false) write(STDOUT, crlf ? crlf.push(b) : b);
    });
    child.stdout!.on('end', () => {
      if (crlf) write(STDOUT, crlf.flush());
    });
    let runcError = '';
    child.stderr!.on('data', (b: Buffer) => {
      // runc's own failure ("exec failed: …") arrives as a logrus line on the same pipe.
      const text = b.toString();
      const m = /level=error msg="(.*)"/.exec(text);
      if (m && /^time="/.test(text)) runcError = m[1].replace(/\\"/g, '"');
      else if (e.config.AttachStderr !== false) write(STDERR, b);
    });
    relayStdin(io, child, e, tty, session);
    io?.on('error', () => undefined);
    e.done = new Promise<void>((resolve) => {
      child.on('close', (code) => {
        let exit = code ?? 255;
        if (runcError) {
          exit = /not found|no such file/.test(runcError) ? 127 : /permission denied/.test(runcError) ? 126 : exit;
          write(STDERR, Buffer.from(`OCI runtime exec failed: ${runcError}: unknown\r\n`));
        }
        e.exitCode = exit;
        e.running = false;
        if (this.m.find(rec.id)) this.m.event(rec, 'exec_die', { execID: id, exitCode: String(exit) });
        fs.rmSync(specFile, { force: true });
        if (!session.detached) io?.end();
        resolve();
      });
      child.on('error', (err) => {
        e.exitCode = 126;
        e.running = false;
        write(STDERR, Buffer.from(`${err.message}\n`));
        io?.end();
        resolve();
      });
    });
    return e.done;
  }
}

/** The client's input to the exec'd process; with a TTY the detach keys end the session and the process runs on. */
function relayStdin(
  io: Duplex | undefined,
  child: ChildProcess,
  e: ExecInstance,
  tty: boolean,
  session: { detached: boolean },
): void {
  if (io && child.stdin && e.config.AttachStdin) {
    child.stdin.on('error', () => undefined);
    // With a TTY the detach keys end the session; the process runs on with its stdin open.
    const watcher = tty ? new DetachWatcher(parseDetachKeys(e.config.DetachKeys, 'escape keys')) : undefined;
    io.on('data', (raw: Buffer) => {
      if (session.detached) return;
      const { pass, detach } = watcher ? watcher.push(raw) : { pass: raw, detach: false };
      if (pass.length) child.stdin!.write(pass);
      if (detach) {
        session.detached = true;
        io.end();
        io.destroy();
      }
    });
    io.on('end', () => {
      if (!session.detached) child.stdin!.end();
    });
    io.resume(); // reading the request body may have paused the socket explicitly
  } else io?.resume();
}

/**
 * A terminal relayed through two ptys (script's and runc's) translates newlines once or twice
 * depending on a race inside runc. Output is normalized to one translation, as one pty gives:
 * "\n", "\r\n" and "\r\r\n" all become "\r\n". A trailing CR waits for the next chunk.
 */
export class CrlfNormalizer {
  private pendingCr = 0;

  push(b: Buffer): Buffer {
    const out: number[] = [];
    for (const c of b) {
      if (c === 0x0d) {
        this.pendingCr++;
        continue;
      }
      if (c === 0x0a) {
        out.push(0x0d, 0x0a);
      } else {
        for (; this.pendingCr > 0; this.pendingCr--) out.push(0x0d);
        out.push(c);
      }
      this.pendingCr = 0;
    }
    return Buffer.from(out);
  }

  flush(): Buffer {
    const out = Buffer.alloc(this.pendingCr, 0x0d);
    this.pendingCr = 0;
    return out;
  }
}
