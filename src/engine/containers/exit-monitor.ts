import fs from 'node:fs';
import path from 'node:path';
import { saveRecordAsync, type ContainerRecord } from './record.js';
import type { HealthWatch } from './health-watch.js';
import { hasProcess, type ContainerTable } from './table.js';

/** What the exit monitor asks of the lifecycle: undo a run, start again, remove. */
export interface ExitActions {
  teardown(rec: ContainerRecord, t?: Record<string, number>): Promise<void>;
  /** Starts a stopped container; the caller holds its lock. */
  startLocked(rec: ContainerRecord): Promise<void>;
  remove(id: string, opts: { force?: boolean; volumes?: boolean }): Promise<void>;
}

/**
 * Container exits as conmon reports them, and Docker's restart policies: `always`,
 * `unless-stopped`, `on-failure[:max]`, with dockerd's back-off.
 */
export class ExitMonitor {
  private watcher?: fs.FSWatcher;
  private poller?: NodeJS.Timeout;
  private readonly exitsPending = new Set<string>();
  /** Consecutive quick restarts per container, for the restart policy's back-off. */
  private readonly backoff = new Map<string, number>();
  /** Containers with a restart by policy waiting for its delay: one at a time each. */
  private readonly restartsPending = new Set<string>();
  private closed = false;

  constructor(
    private readonly table: ContainerTable,
    private readonly health: HealthWatch,
    private readonly actions: ExitActions,
  ) {}

  /** Whether a restart by policy waits for its delay (dockerd's "restarting"). */
  restartPending(id: string): boolean {
    return this.restartsPending.has(id);
  }

  /** conmon writes `<exits>/<id>` when a container's init exits; we watch the directory (and poll, in case a watch event is lost). */
  watch(): void {
    const dir = this.table.exitsDir;
    const scan = () => {
      let files: string[] = [];
      try {
        files = fs.readdirSync(dir);
      } catch {
        /* gone during purge */
      }
      for (const f of files) this.queueExit(f);
    };
    try {
      this.watcher = fs.watch(dir, (_ev, f) => {
        if (f) this.queueExit(f.toString());
      });
      this.watcher.on('error', () => undefined);
    } catch (e) {
      this.table.log.warn({ err: e }, 'cannot watch exit directory; polling only');
    }
    this.poller = setInterval(scan, 1000);
    this.poller.unref();
    scan();
  }

  /** Stops watching and restarting (containers keep running under conmon). */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
  }

  private queueExit(id: string): void {
    if (!/^[a-f0-9]{64}$/.test(id) || this.exitsPending.has(id)) return;
    if (!fs.existsSync(path.join(this.table.exitsDir, id))) return;
    this.table.log.debug({ id }, 'exit file seen');
    this.exitsPending.add(id);
    void this.table
      .locked(id, () => this.handleExit(id))
      .catch((e) => this.table.log.error({ err: e, id }, 'exit handling failed'))
      .finally(() => this.exitsPending.delete(id));
  }

  private async handleExit(id: string): Promise<void> {
    const file = path.join(this.table.exitsDir, id);
    let code: number;
    try {
      code = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    } catch {
      return;
    }
    const rec = this.table.records.get(id);
    fs.rmSync(file, { force: true });
    if (!rec || !hasProcess(rec)) return;
    await this.markExited(rec, Number.isFinite(code) ? code : 255);
  }

  /** The container's init is gone with `code`: record it, undo the run, then auto-remove or restart by policy. */
  async markExited(rec: ContainerRecord, code: number): Promise<void> {
    const t = this.table;
    this.health.stop(rec.id);
    rec.state = { ...rec.state, Status: 'exited', Pid: 0, ExitCode: code, FinishedAt: new Date().toISOString() };
    t.event(rec, 'die', { exitCode: String(code) });
    // Waiters (stop, wait, the swarm task) learn of the exit now; the write and clean-up
    // below still hold the container's lock, so a start or remove waits for them.
    t.noteExit(rec.id);
    // A full disk (ENOSPC) must not stop the clean-up nor a daemon's start: the record on disk
    // then still says running, and the next start finds the container gone and marks it again.
    await saveRecordAsync(t.paths(rec.id).record, rec).catch((err) =>
      t.log.warn({ err, id: rec.id }, 'exited container state not saved'),
    );
    const ms: Record<string, number> = {};
    await this.actions.teardown(rec, ms);
    t.log.info({ id: rec.id, code, ms }, 'container exited');
    if (rec.hostConfig.AutoRemove) {
      setImmediate(
        () =>
          void this.actions
            .remove(rec.id, { force: true, volumes: true })
            .catch((e) => t.log.warn({ err: e, id: rec.id }, 'auto-remove failed')),
      );
    } else if (this.wantsRestart(rec)) {
      this.scheduleRestart(rec);
    }
  }

  /** Docker's restart policies: `always`, `unless-stopped`, `on-failure[:max]`; never after `docker stop`. */
  private wantsRestart(rec: ContainerRecord): boolean {
    const p = rec.hostConfig.RestartPolicy;
    if (!p || rec.manuallyStopped || this.closed) return false;
    if (p.Name === 'always' || p.Name === 'unless-stopped') return true;
    if (p.Name === 'on-failure')
      return rec.state.ExitCode !== 0 && (!p.MaximumRetryCount || rec.restartCount < p.MaximumRetryCount);
    return false;
  }

  /** Restarts with Docker's back-off: 100 ms doubling per quick failure, reset after 10 s of running. */
  private scheduleRestart(rec: ContainerRecord): void {
    if (this.restartsPending.has(rec.id)) return;
    this.restartsPending.add(rec.id);
    const ran = Date.parse(rec.state.FinishedAt) - Date.parse(rec.state.StartedAt);
    const n = ran > 10_000 ? 0 : (this.backoff.get(rec.id) ?? 0) + 1;
    this.backoff.set(rec.id, n);
    const delay = Math.min(100 * 2 ** Math.max(0, n - 1), 60_000);
    const stillWanted = () => this.table.records.has(rec.id) && !hasProcess(rec) && this.wantsRestart(rec);
    const timer = setTimeout(() => {
      this.restartsPending.delete(rec.id);
      if (!stillWanted()) return;
      void this.table
        .locked(rec.id, async () => {
          if (!stillWanted()) return;
          rec.restartCount++;
          await this.actions.startLocked(rec);
        })
        .catch((e) => this.table.log.warn({ err: e, id: rec.id }, 'restart by policy failed'));
    }, delay);
    timer.unref();
  }

  /**
   * As dockerd at boot (daemon.restore): a stopped container is started again when its policy
   * says so to a fresh restart manager, which knows nothing of an earlier `docker stop` except
   * for `unless-stopped` (so `always` comes back even after a stop; on-failure after a non-zero exit).
   */
  restartAtBoot(rec: ContainerRecord): void {
    if (rec.state.Status !== 'exited' || !rec.hostConfig.RestartPolicy) return;
    if (rec.manuallyStopped && rec.hostConfig.RestartPolicy.Name === 'unless-stopped') return;
    const stopped = rec.manuallyStopped;
    rec.manuallyStopped = false;
    if (this.wantsRestart(rec)) this.scheduleRestart(rec);
    else rec.manuallyStopped = stopped;
  }
}
