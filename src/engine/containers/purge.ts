import fs from 'node:fs';
import path from 'node:path';
import { daemonPaths, type DaemonConfig } from '../config.js';
import { listRecordIds, containerPaths } from './record.js';
import { mountsUnder } from './rootfs.js';
import { Runc, processIs } from './runtime.js';
import { run } from '../../util/run.js';

/**
 * Removes every container, conmon process and mount a daemon with these roots made, even
 * after a crash (the daemon itself must already be stopped). Used by tests and `shoal machine rm/prune`.
 */
export async function purgeDaemonState(cfg: Pick<DaemonConfig, 'dataRoot' | 'execRoot'>): Promise<void> {
  const dp = daemonPaths({ ...cfg } as DaemonConfig);
  const runc = new Runc(dp.runcRoot);
  // conmon first: it would otherwise report the kills below as exits to nobody.
  const conmonPids: number[] = [];
  if (fs.existsSync(dp.conmon)) {
    for (const d of fs.readdirSync(dp.conmon)) {
      try {
        conmonPids.push(Number.parseInt(fs.readFileSync(path.join(dp.conmon, d, 'conmon.pid'), 'utf8'), 10));
      } catch {
        /* none */
      }
    }
  }
  if (fs.existsSync(dp.runcRoot)) {
    for (const id of await runc.list()) {
      await runc.kill(id, 'KILL', true).catch(() => undefined);
      await runc.delete(id);
    }
  }
  for (const pid of conmonPids) {
    if (processIs(pid, 'conmon')) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const id of listRecordIds(cfg.dataRoot)) {
    const p = containerPaths(cfg.dataRoot, cfg.execRoot, id);
    for (const mp of mountsUnder(p.dir)) await run('umount', ['-l', mp], { allowFail: true });
  }
  // Anything else mounted under either root (a crash between mount and record).
  for (const root of [cfg.dataRoot, cfg.execRoot]) {
    if (!fs.existsSync(root)) continue;
    for (const mp of mountsUnder(path.resolve(root))) await run('umount', ['-l', mp], { allowFail: true });
  }
  for (const d of [dp.containers, dp.runcRoot, dp.conmon, dp.exits]) fs.rmSync(d, { recursive: true, force: true });
}
