import fs from 'node:fs';
import path from 'node:path';
import { ApiError, badRequest, conflict, notModified, serverError } from '../../util/errors.js';
import { dirSize, type VolumeStore } from '../volumes/store.js';
import type { ContainerNetworks } from './container-networks.js';
import type { Execs } from './exec.js';
import { validName } from './names.js';
import { forgetRecord, saveRecord, saveRecordAsync, type ContainerRecord } from './record.js';
import { parentPid, parseSignal } from './signals.js';
import type { ContainerStarter } from './start.js';
import { hasProcess, type ContainerTable } from './table.js';
import { applyUpdate, runcUpdateArgs, type UpdateConfig } from './update.js';

/** What the lifecycle works with besides the table. */
export interface LifecycleParts {
  table: ContainerTable;
  volumes: VolumeStore;
  networks: ContainerNetworks;
  starter: ContainerStarter;
  execs: Execs;
  /** Whether a restart by policy waits for its delay (counts as live, as dockerd's "restarting"). */
  restartPending(id: string): boolean;
}

/** `docker start / stop / kill / restart / pause / unpause / rename / update / rm / container prune`. */
export class ContainerLifecycle {
  private readonly table: ContainerTable;

  constructor(private readonly parts: LifecycleParts) {
    this.table = parts.table;
  }

  start(ref: string): Promise<void> {
    const rec = this.table.get(ref);
    return this.table.locked(rec.id, () => this.parts.starter.startLocked(rec));
  }

  /** StopSignal (default SIGTERM), then SIGKILL after `timeoutSec` (default: StopTimeout or 10; -1 waits forever). */
  async stop(ref: string, timeoutSec?: number): Promise<void> {
    const t = this.table;
    const rec = t.get(ref);
    // Also cancels a pending restart by policy.
    rec.manuallyStopped = true;
    // Off the event loop: a scale-down stops many containers at once.
    await saveRecordAsync(t.paths(rec.id).record, rec).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    });
    // A start in flight (a restart by policy, say) finishes first, then is stopped.
    await t.locked(rec.id, async () => undefined);
    rec.manuallyStopped = true; // that start cleared it
    if (!hasProcess(rec)) throw notModified();
    await this.thaw(rec);
    const timeout = timeoutSec ?? rec.config.StopTimeout ?? 10;
    const sig = parseSignal(rec.config.StopSignal || 'SIGTERM');
    t.event(rec, 'kill', { signal: String(sig) });
    await this.signal(rec, sig);
    if (await t.waitNotRunning(rec.id, timeout < 0 ? undefined : timeout * 1000)) return t.event(rec, 'stop');
    t.log.info({ id: rec.id, timeoutSec: timeout }, 'container ignored its stop signal; killing');
    await this.signal(rec, 9);
    if (!(await t.waitNotRunning(rec.id, 30_000))) throw serverError(`container ${rec.id} did not exit after SIGKILL`);
    t.event(rec, 'stop');
  }

  /** `docker pause` / `unpause`: the freezer cgroup, through runc. */
  async pause(ref: string): Promise<void> {
    const rec = this.table.get(ref);
    await this.table.locked(rec.id, async () => {
      if (rec.state.Status === 'paused') throw conflict(`Container ${rec.id} is already paused`);
      if (rec.state.Status !== 'running') throw conflict(`Container ${rec.id} is not running`);
      await this.table.runc.pause(rec.id);
      rec.state.Status = 'paused';
      saveRecord(this.table.paths(rec.id).record, rec);
      this.table.event(rec, 'pause');
    });
  }

  async unpause(ref: string): Promise<void> {
    const rec = this.table.get(ref);
    await this.table.locked(rec.id, async () => {
      if (rec.state.Status !== 'paused') throw conflict(`Container ${rec.id} is not paused`);
      await this.table.runc.resume(rec.id);
      rec.state.Status = 'running';
      saveRecord(this.table.paths(rec.id).record, rec);
      this.table.event(rec, 'unpause');
    });
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const rec = this.table.get(ref);
    const sig = parseSignal(signal);
    if (!hasProcess(rec)) throw conflict(`Cannot kill container: ${ref}: Container ${rec.id} is not running`);
    if (sig === 9) await this.thaw(rec);
    this.table.event(rec, 'kill', { signal: String(sig) });
    await this.table.runc.kill(rec.id, sig, sig === 9);
    if (sig === 9) await this.table.waitNotRunning(rec.id, 30_000);
  }

  async restart(ref: string, timeoutSec?: number): Promise<void> {
    const rec = this.table.get(ref);
    if (hasProcess(rec))
      await this.stop(rec.id, timeoutSec).catch((e) => {
        if (!(e instanceof ApiError && e.status === 304)) throw e;
      });
    await this.start(rec.id).catch((e) => {
      if (!(e instanceof ApiError && e.status === 304)) throw e;
    });
    rec.restartCount++;
    saveRecord(this.table.paths(rec.id).record, rec);
    this.table.event(rec, 'restart');
  }

  /** `docker rename`. */
  rename(ref: string, newName: string): void {
    const t = this.table;
    const rec = t.get(ref);
    const name = validName(newName);
    if (name === rec.name) throw conflict(`Renaming a container with the same name as its current name`);
    const owner = t.names.get(name);
    if (owner)
      throw conflict(
        `Conflict. The container name "${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    t.names.delete(rec.name);
    t.names.set(name, rec.id);
    const oldName = rec.name;
    rec.name = name;
    saveRecord(t.paths(rec.id).record, rec);
    t.event(rec, 'rename', { oldName });
    this.parts.networks.userBridges?.refreshDns();
  }

  /** `docker update`: new limits and restart policy, stored and (resources) applied to a running container. */
  update(ref: string, u: UpdateConfig): Promise<{ Warnings: string[] }> {
    const rec = this.table.get(ref);
    return this.table.locked(rec.id, async () => {
      if (rec.state.Status === 'removing' || rec.state.Status === 'dead')
        throw badRequest(`Cannot update container ${rec.id}: container is marked for removal and cannot be "update"`);
      const { next, warnings } = applyUpdate(rec.id, rec.hostConfig, u);
      const args = runcUpdateArgs(u);
      if (hasProcess(rec) && args.length) {
        const r = await this.table.runc.update(rec.id, args);
        if (r.code !== 0) throw serverError(`Cannot update container ${rec.id}: ${(r.stderr || r.stdout).trim()}`);
      }
      rec.hostConfig = next;
      saveRecord(this.table.paths(rec.id).record, rec);
      this.table.event(rec, 'update');
      return { Warnings: warnings };
    });
  }

  /** `docker container prune`: every stopped container; the space is their writable layers', as dockerd counts it. */
  async prune(): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    for (const r of this.table.all()) {
      if (hasProcess(r) || this.parts.restartPending(r.id) || r.state.Status === 'removing') continue;
      const size = dirSize(this.table.paths(r.id).upper);
      try {
        await this.remove(r.id);
      } catch (e) {
        // Started or removed meanwhile: not this prune's to take.
        if (e instanceof ApiError && (e.status === 409 || e.status === 404)) continue;
        throw e;
      }
      deleted.push(r.id);
      space += size;
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: space };
  }

  /** dockerd 20.10's refusal to remove a live container without force (daemon/delete.go). */
  private removeRunningError(rec: ContainerRecord) {
    const state = this.parts.restartPending(rec.id) && !hasProcess(rec) ? 'restarting' : rec.state.Status;
    const procedure =
      state === 'paused'
        ? 'Unpause and then stop the container before attempting removal or force remove'
        : 'Stop the container before attempting removal or force remove';
    return conflict(`You cannot remove a ${state} container ${rec.id}. ${procedure}`);
  }

  /** `docker rm [-f]`: a running container needs `force` (then SIGKILL). */
  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const t = this.table;
    const rec = t.get(ref);
    // Waiting for a restart by policy counts as running, as dockerd's "restarting" state does.
    if (!opts.force && (hasProcess(rec) || this.parts.restartPending(rec.id))) throw this.removeRunningError(rec);
    if (hasProcess(rec)) {
      await this.thaw(rec);
      await this.signal(rec, 9);
      if (!(await t.waitNotRunning(rec.id, 30_000)))
        throw serverError(`container ${rec.id} did not exit after SIGKILL`);
    }
    await t.locked(rec.id, async () => {
      if (!t.records.has(rec.id)) return;
      // An exit handled meanwhile may have scheduled a restart by policy: still live, as in dockerd.
      if (hasProcess(rec) || (!opts.force && this.parts.restartPending(rec.id))) throw this.removeRunningError(rec);
      rec.state.Status = 'removing';
      await this.parts.starter.teardown(rec);
      await this.forget(rec);
      // `rm -v`: the container's anonymous volumes go with it; named ones stay.
      if (opts.volumes) {
        for (const mp of rec.mountPoints ?? []) {
          if (mp.Anonymous && mp.Name)
            await this.parts.volumes
              .remove(mp.Name)
              .catch((e) => t.log.warn({ err: e, volume: mp.Name }, 'removing anonymous volume failed'));
        }
      }
    });
    t.emitter.emit(`removed:${rec.id}`);
  }

  /** A removed container's files and every trace of it in memory. */
  private async forget(rec: ContainerRecord): Promise<void> {
    const t = this.table;
    const p = t.paths(rec.id);
    // On the thread pool: a removal burst must not hold the event loop (unlink per file).
    await Promise.all([p.dir, p.run].map((d) => fs.promises.rm(d, { recursive: true, force: true })));
    forgetRecord(p.record);
    fs.rmSync(path.join(t.exitsDir, rec.id), { force: true });
    t.records.delete(rec.id);
    this.parts.networks.forget(rec.id);
    if (t.names.get(rec.name) === rec.id) t.names.delete(rec.name);
    this.parts.execs.forgetContainer(rec.id);
    t.log.info({ id: rec.id }, 'container removed');
    t.event(rec, 'destroy');
  }

  /**
   * Signals the container's init straight from here when it is still conmon's child (no
   * `runc kill` process per stop; the check guards against a reused PID). SIGKILL to the init
   * of the container's own PID namespace ends every process in it, as `runc kill --all` would.
   */
  private async signal(rec: ContainerRecord, sig: number): Promise<void> {
    if (rec.state.Pid && rec.conmonPid && parentPid(rec.state.Pid) === rec.conmonPid) {
      try {
        process.kill(rec.state.Pid, sig);
        return;
      } catch {
        /* gone meanwhile: runc decides */
      }
    }
    await this.table.runc.kill(rec.id, sig, sig === 9).catch(() => undefined);
  }

  /** Signals reach frozen processes only once thawed. */
  private async thaw(rec: ContainerRecord): Promise<void> {
    if (rec.state.Status !== 'paused') return;
    await this.table.runc.resume(rec.id).catch(() => undefined);
    rec.state.Status = 'running';
    saveRecord(this.table.paths(rec.id).record, rec);
  }
}
