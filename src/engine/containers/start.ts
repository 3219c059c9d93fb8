import fs from 'node:fs';
import path from 'node:path';
import { ApiError, conflict, noSuchContainer, notModified } from '../../util/errors.js';
import type { ImageStore } from '../images/store.js';
import type { VolumeStore } from '../volumes/store.js';
import type { ContainerNetworks, EtcOptions } from './container-networks.js';
import type { HealthWatch } from './health-watch.js';
import { checkBindPropagation, prepareMounts, releaseMounts } from './mounts.js';
import { saveRecord, saveRecordAsync, type ContainerRecord } from './record.js';
import { extraHostsEntries, mountRootfs, unmountRootfs, writeEtcFilesAsync } from './rootfs.js';
import { conmonCreate, processIs } from './runtime.js';
import { containerSpec } from './spec.js';
import type { ContainerTable } from './table.js';

/**
 * Runs between `runc create` and `runc start`: the container's namespaces exist (reach them
 * through `/proc/<pid>/ns/…`) but its process has not started. A throw fails the start.
 */
export type StartHook = (rec: ContainerRecord, pid: number) => Promise<void>;

/** Milliseconds per step of a start or teardown, for the log line. */
function stopwatch(t: Record<string, number>): (step: string) => void {
  let t0 = performance.now();
  return (step) => {
    const n = performance.now();
    t[step] = Math.round(n - t0);
    t0 = n;
  };
}

/**
 * A container's run, made and undone: rootfs and mounts, the OCI bundle, conmon + `runc create`,
 * networks, start hooks, `runc start`; and the teardown that reverses all of it.
 */
export class ContainerStarter {
  readonly hooks: StartHook[] = [];

  constructor(
    private readonly table: ContainerTable,
    private readonly images: ImageStore,
    private readonly volumes: VolumeStore,
    private readonly networks: ContainerNetworks,
    private readonly health: HealthWatch,
    /** Called when a failed start of an auto-remove container should remove it. */
    private readonly removeLater: (id: string) => void,
  ) {}

  /** Starts a container that is not running; the caller holds its lock. */
  async startLocked(rec: ContainerRecord): Promise<void> {
    this.checkStartable(rec);
    const t: Record<string, number> = {};
    let pid = 0;
    try {
      pid = await this.run(rec, stopwatch(t));
    } catch (e) {
      throw await this.failed(rec, e);
    }
    rec.state = {
      ...rec.state,
      Status: 'running',
      Pid: pid,
      ExitCode: 0,
      Error: '',
      StartedAt: new Date().toISOString(),
      OOMKilled: false,
      Health: undefined,
    };
    rec.manuallyStopped = false;
    await saveRecordAsync(this.table.paths(rec.id).record, rec);
    this.health.watch(rec);
    this.table.log.info({ id: rec.id, pid, ms: t }, 'container started');
    this.table.event(rec, 'start');
  }

  private checkStartable(rec: ContainerRecord): void {
    if (!this.table.records.has(rec.id)) throw noSuchContainer(rec.id);
    if (rec.state.Status === 'running') throw notModified();
    if (rec.state.Status === 'paused') throw conflict('cannot start a paused container, try unpause instead');
    if (rec.state.Status === 'removing')
      throw conflict(`container ${rec.id} is marked for removal and cannot be started`);
  }

  /** The steps of a start; returns the container's init PID. */
  private async run(rec: ContainerRecord, lap: (step: string) => void): Promise<number> {
    const id = rec.id;
    const p = this.table.paths(id);
    const hostname = rec.config.Hostname || id.slice(0, 12);
    const img = await this.images.resolve(rec.imageId);
    await this.clearEarlierRun(id);
    await mountRootfs(img.layerDirs, p);
    await prepareMounts(this.volumes, rec, p.rootfs);
    checkBindPropagation(rec);
    lap('mount');
    const etc = await this.writeBundle(rec, hostname);
    const pid = await conmonCreate({
      id,
      name: rec.name.slice(1),
      bundle: p.bundle,
      runDir: p.run,
      pidFile: p.pidFile,
      conmonPidFile: p.conmonPid,
      exitDir: this.table.exitsDir,
      logPath: p.log,
      runcRoot: this.table.runc.root,
      tty: rec.config.Tty === true,
      stdin: rec.config.OpenStdin === true,
      stdinOnce: rec.config.StdinOnce === true,
      stderrFile: p.conmonStderr,
    });
    rec.conmonPid = readPid(p.conmonPid);
    lap('create');
    await this.networks.wire(rec, pid, hostname, etc);
    lap('network');
    for (const hook of this.hooks) await hook(rec, pid);
    await this.table.runc.start(id, pid);
    lap('start');
    return pid;
  }

  /**
   * A previous run's state, if a crash left any (teardown removes it otherwise). Its conmon
   * must be gone before we go on, or its late exit file would pass for this run's.
   */
  private async clearEarlierRun(id: string): Promise<void> {
    if (!fs.existsSync(path.join(this.table.runc.root, id))) return;
    const old = readPid(this.table.paths(id).conmonPid);
    await this.table.runc.delete(id);
    for (let i = 0; i < 60 && processIs(old, 'conmon'); i++) await new Promise((r) => setTimeout(r, 50));
  }

  /** /etc files, links, the OCI spec, the run directory without an earlier exit. */
  private async writeBundle(rec: ContainerRecord, hostname: string): Promise<EtcOptions> {
    const id = rec.id;
    const p = this.table.paths(id);
    const links = this.networks.resolveLinks(rec);
    const etc: EtcOptions = {
      domainname: rec.config.Domainname || undefined,
      extra: [...extraHostsEntries(rec.hostConfig.ExtraHosts), ...links.hosts],
    };
    this.networks.rememberEtc(id, etc);
    // On the thread pool, together: 50 starts at once otherwise queue on the event loop's own syscalls.
    await writeEtcFilesAsync(p, hostname, etc);
    const spec = containerSpec(rec, p, hostname, links.env) as { linux: { namespaces: { type: string }[] } };
    if ((rec.hostConfig.NetworkMode ?? 'default') === 'host')
      spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
    await Promise.all([
      fs.promises.writeFile(p.spec, JSON.stringify(spec)),
      fs.promises.mkdir(p.run, { recursive: true }),
      fs.promises.rm(path.join(this.table.exitsDir, id), { force: true }),
    ]);
    await fs.promises.rm(path.join(p.run, 'exit'), { force: true });
    return etc;
  }

  /** Undoes the half-made run and records why; returns the error the caller sees (Docker's codes). */
  private async failed(rec: ContainerRecord, e: unknown): Promise<unknown> {
    const msg = runtimeMessage(e);
    this.table.log.warn({ id: rec.id, err: msg }, 'container failed to start');
    await this.teardown(rec);
    const notFound = /executable file not found|no such file or directory/.test(msg);
    const denied = /permission denied/.test(msg);
    rec.state.Error = msg;
    rec.state.ExitCode = notFound ? 127 : denied ? 126 : 128;
    saveRecord(this.table.paths(rec.id).record, rec);
    if (rec.hostConfig.AutoRemove) this.removeLater(rec.id);
    if (e instanceof ApiError) return e;
    return new ApiError(
      notFound || denied ? 400 : 500,
      `failed to create task for container: failed to create shim task: OCI runtime create failed: ${msg}: unknown`,
    );
  }

  /** Undoes a run: runc state, network endpoint, rootfs mount. Safe to repeat. */
  async teardown(rec: ContainerRecord, t: Record<string, number> = {}): Promise<void> {
    const lap = stopwatch(t);
    this.health.stop(rec.id);
    await this.networks.unpublish(rec);
    lap('ports');
    if (!this.table.runc.removeStopped(rec.id)) await this.table.runc.delete(rec.id);
    lap('runcDelete');
    await this.networks.disconnectAll(rec.id);
    lap('network');
    await unmountRootfs(this.table.paths(rec.id).rootfs);
    lap('umount');
    await releaseMounts(this.volumes, rec, this.table.log);
    rec.conmonPid = undefined;
  }
}

export function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** runc's message without its log prefix noise. */
function runtimeMessage(e: unknown): string {
  const msg = (e as Error).message ?? String(e);
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(msg);
  return (m ? m[1] : msg).replace(/\\"/g, '"').trim();
}
