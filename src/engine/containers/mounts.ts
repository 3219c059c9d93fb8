import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../util/run.js';
import { resolveInRoot } from './files.js';
import type { Logger } from '../../util/log.js';
import { ApiError, badRequest } from '../../util/errors.js';
import { newHexId } from '../../util/ids.js';
import type { VolumeStore } from '../volumes/store.js';
import { containerMountPoints, type MountPoint } from '../volumes/mounts.js';
import { copyImageContent } from '../volumes/copy-up.js';
import type { ContainerConfig, ContainerRecord, HostConfig } from './record.js';

/**
 * A container's mounts over its life: resolved at create (volumes made), mounted and filled
 * before each start, released at each stop. The parsing rules are in ../volumes/mounts.ts.
 */

/**
 * Every mount of a new container, with its volumes: named ones created when missing, anonymous
 * ones made with a new name (pushed to `made`, so a failed create can drop them). Nothing is
 * created unless every volume would be accepted.
 */
export function resolveMountPoints(
  volumes: VolumeStore,
  hostConfig: HostConfig,
  configVolumes: ContainerConfig['Volumes'],
  imageVolumes: Record<string, unknown> | undefined,
  lookup: (ref: string) => ContainerRecord,
  made: string[],
): MountPoint[] {
  const mps = containerMountPoints(
    {
      binds: hostConfig.Binds,
      mounts: hostConfig.Mounts,
      configVolumes,
      imageVolumes,
      volumeDriver: typeof hostConfig.VolumeDriver === 'string' ? hostConfig.VolumeDriver : '',
      tmpfs: hostConfig.Tmpfs,
      inherited: volumesFrom(hostConfig.VolumesFrom, lookup),
    },
    fs.existsSync,
  );
  const named = mps.map((mp) => (mp.Type === 'volume' && !mp.Name ? { ...mp, Name: newHexId(), Anonymous: true } : mp));
  for (const mp of named)
    if (mp.Type === 'volume') volumes.check({ name: mp.Name!, driver: mp.Driver, options: mp.DriverOpts });
  return named.map((mp) => {
    if (mp.Type !== 'volume') return mp;
    const v = volumes.create({
      name: mp.Name,
      anonymous: mp.Anonymous,
      driver: mp.Driver,
      options: mp.DriverOpts,
      labels: mp.Labels,
    });
    if (mp.Anonymous) made.push(v.Name);
    const { DriverOpts: _o, Labels: _l, ...rest } = mp;
    return { ...rest, Source: v.Mountpoint, Driver: v.Driver };
  });
}

/** `--volumes-from NAME[:ro|:rw]`: that container's mounts, read-only or read-write as asked (else as it has them). */
function volumesFrom(refs: unknown, lookup: (ref: string) => ContainerRecord): MountPoint[] {
  if (refs === undefined || refs === null) return [];
  if (!Array.isArray(refs)) throw badRequest('invalid VolumesFrom: must be a list');
  return refs.flatMap((ref: unknown) => {
    const [name, mode = ''] = String(ref).split(':');
    if (!['', 'ro', 'rw'].includes(mode)) throw badRequest(`invalid mode: ${mode}`);
    // Its mount points (not its --tmpfs); the anonymous volumes stay its owner's to remove.
    return (lookup(name).mountPoints ?? [])
      .filter((mp) => !mp.Unlisted)
      .map(({ Anonymous: _a, ...mp }) => ({ ...mp, RW: mode === '' ? mp.RW : mode === 'rw' }));
  });
}

/** Before the runtime sees the spec: volumes mounted (when they need it) and filled from the image, `-v` bind sources made. */
export async function prepareMounts(volumes: VolumeStore, rec: ContainerRecord, rootfs: string): Promise<void> {
  for (const mp of rec.mountPoints ?? []) {
    if (mp.Type === 'bind' && mp.CreateSource && !fs.existsSync(mp.Source))
      fs.mkdirSync(mp.Source, { recursive: true, mode: 0o755 });
    if (mp.Type !== 'volume' || !mp.Name) continue;
    const data = await volumes.mount(mp.Name, rec.id);
    volumes.onEvent('mount', mp.Name, {
      container: rec.id,
      destination: mp.Destination,
      driver: mp.Driver ?? 'local',
      propagation: mp.Propagation,
      'read/write': String(mp.RW),
    });
    if (mp.CopyData) await copyImageContent(rootfs, mp.Destination, data);
  }
}

/** The mount (mountinfo fields) holding `file`: the longest mount point that is `file` or above it. */
function mountOf(file: string): { mountPoint: string; optional: string[] } | undefined {
  let best: { mountPoint: string; optional: string[] } | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 7) continue;
    // mountinfo escapes blanks and backslashes in octal.
    const mp = f[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const under = mp === '/' || file === mp || file.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (!under || (best && best.mountPoint.length > mp.length)) continue;
    const dash = f.indexOf('-', 6);
    best = { mountPoint: mp, optional: f.slice(6, dash < 0 ? undefined : dash) };
  }
  return best;
}

/**
 * dockerd refuses a bind with shared (or slave) propagation from a mount that cannot propagate
 * so (daemon/oci_linux.go ensureShared / ensureSharedOrSlave): the mount would not do what was asked.
 */
export function checkBindPropagation(rec: ContainerRecord): void {
  for (const mp of rec.mountPoints ?? []) {
    if (mp.Type !== 'bind' || !mp.Source) continue;
    const prop = mp.Propagation;
    const shared = prop === 'shared' || prop === 'rshared';
    const slave = prop === 'slave' || prop === 'rslave';
    if (!shared && !slave) continue;
    let real = mp.Source;
    try {
      real = fs.realpathSync(mp.Source);
    } catch {
      /* made at start (CreateSource): its parent's mount decides */
    }
    const m = mountOf(real);
    if (!m) continue;
    const isShared = m.optional.some((o) => o.startsWith('shared:'));
    const isSlave = m.optional.some((o) => o.startsWith('master:'));
    if (shared && !isShared)
      throw new ApiError(500, `path ${mp.Source} is mounted on ${m.mountPoint} but it is not a shared mount`);
    if (slave && !isShared && !isSlave)
      throw new ApiError(500, `path ${mp.Source} is mounted on ${m.mountPoint} but it is not a shared or slave mount`);
  }
}

/** After a run: the container lets go of its volumes (safe to repeat: only a held volume is released). */
export async function releaseMounts(volumes: VolumeStore, rec: ContainerRecord, log: Logger): Promise<void> {
  for (const mp of rec.mountPoints ?? []) {
    if (mp.Type !== 'volume' || !mp.Name) continue;
    const held = await volumes.unmount(mp.Name, rec.id).catch((e) => {
      log.warn({ err: e, id: rec.id }, 'volume unmount failed');
      return true;
    });
    if (held) volumes.onEvent('unmount', mp.Name, { container: rec.id, driver: mp.Driver ?? 'local' });
  }
}

/**
 * `docker cp` on a stopped container, as dockerd does it: its volumes and binds bound onto the
 * root mounted for the copy (read-only ones read-only). Returns what undoes the volume holds;
 * the bind mounts go with the root's unmount.
 */
export async function mountForCopy(
  volumes: VolumeStore,
  rec: ContainerRecord,
  rootfs: string,
): Promise<() => Promise<void>> {
  const held: string[] = [];
  const release = async () => {
    for (const name of held) await volumes.unmount(name, rec.id).catch(() => undefined);
  };
  try {
    // Shallow destinations first, so a nested one lands on top.
    const mps = [...(rec.mountPoints ?? [])]
      .filter((mp) => mp.Type !== 'tmpfs')
      .sort((a, b) => a.Destination.length - b.Destination.length);
    for (const mp of mps) {
      let source = mp.Source;
      if (mp.Type === 'volume' && mp.Name) {
        source = await volumes.mount(mp.Name, rec.id);
        held.push(mp.Name);
      }
      if (!source || !fs.existsSync(source)) continue;
      const target = resolveInRoot(rootfs, mp.Destination, true);
      if (fs.statSync(source).isDirectory()) fs.mkdirSync(target, { recursive: true });
      else if (!fs.existsSync(target)) {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, '');
      }
      await run('mount', ['--bind', source, target]);
      if (!mp.RW) await run('mount', ['-o', 'remount,bind,ro', target]);
    }
  } catch (e) {
    await release();
    throw e;
  }
  return release;
}
