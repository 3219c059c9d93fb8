import fs from 'node:fs';
import path from 'node:path';
import { daemonPaths } from '../config.js';
import type { VolumeStore } from '../volumes/store.js';
import type { ContainerNetworks } from './container-networks.js';
import type { ExitMonitor } from './exit-monitor.js';
import type { HealthWatch } from './health-watch.js';
import { loadRecord, type ContainerRecord } from './record.js';
import { unmountRootfs } from './rootfs.js';
import { processIs } from './runtime.js';
import { hasProcess, type ContainerTable } from './table.js';

/** What restoring a daemon's containers touches. */
export interface RestoreParts {
  table: ContainerTable;
  networks: ContainerNetworks;
  volumes: VolumeStore;
  health: HealthWatch;
  exits: ExitMonitor;
  teardown(rec: ContainerRecord): Promise<void>;
}

/** Picks up containers from an earlier run of the daemon: running ones are adopted, dead ones marked exited. */
export async function restoreContainers(parts: RestoreParts): Promise<void> {
  const { table } = parts;
  for (const dir of fs.readdirSync(daemonPaths(table.config).containers)) {
    const p = table.paths(dir);
    const rec = /^[a-f0-9]{64}$/.test(dir) ? loadRecord(p.record) : undefined;
    if (!rec) {
      // A create that crashed half-way: nothing refers to it.
      await unmountRootfs(p.rootfs);
      fs.rmSync(p.dir, { recursive: true, force: true });
      continue;
    }
    table.records.set(rec.id, rec);
    table.names.set(rec.name, rec.id);
    await restoreOne(parts, rec);
  }
  for (const id of await table.runc.list()) {
    if (!table.records.has(id)) await table.runc.delete(id);
  }
  await parts.networks.ports.apply();
  for (const rec of table.records.values()) parts.exits.restartAtBoot(rec);
}

/** One recorded container: finish a removal, adopt a live one, or take a dead one's exit. */
async function restoreOne(parts: RestoreParts, rec: ContainerRecord): Promise<void> {
  const { table } = parts;
  const p = table.paths(rec.id);
  if (rec.state.Status === 'removing') {
    await parts.teardown(rec);
    fs.rmSync(p.dir, { recursive: true, force: true });
    fs.rmSync(p.run, { recursive: true, force: true });
    table.records.delete(rec.id);
    table.names.delete(rec.name);
    return;
  }
  if (!hasProcess(rec)) return;
  if (fs.existsSync(path.join(table.exitsDir, rec.id))) return; // the exit watcher handles it
  const st = await table.runc.state(rec.id);
  if (st && (st.status === 'running' || st.status === 'paused')) {
    const ip =
      parts.networks.endpoint(rec.id)?.IPAddress ?? parts.networks.userBridges?.endpointsOf(rec.id)[0]?.endpoint.ip;
    if (ip && rec.published) parts.networks.ports.restore(rec.id, ip, rec.published);
    for (const mp of rec.mountPoints ?? [])
      if (mp.Type === 'volume' && mp.Name) await parts.volumes.mount(mp.Name, rec.id).catch(() => undefined);
    table.log.info({ id: rec.id, pid: st.pid }, 'adopted running container');
    parts.health.watch(rec);
    return;
  }
  // Died while we were away and conmon is gone too (e.g. killed): take its recorded exit if any.
  let code = 255;
  try {
    code = Number.parseInt(fs.readFileSync(path.join(p.run, 'exit'), 'utf8'), 10);
  } catch {
    /* no exit file */
  }
  if (processIs(rec.conmonPid, 'conmon') && st) return; // conmon will still report it
  await parts.exits.markExited(rec, code);
}
