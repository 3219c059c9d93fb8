import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { badRequest, conflict, notFound, serverError } from '../../util/errors.js';
import { newHexId } from '../../util/ids.js';
import { run } from '../../util/run.js';
import { readJsonFile, writeJsonFileAtomic } from '../network/state-file.js';
import { isMounted } from '../containers/rootfs.js';

/** Docker's name rule for local volumes (names.RestrictedNameChars). */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
/** Set on volumes created without a name (moby AnonymousLabel). */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
/** The local driver's options (moby volume/local validOpts; `size` needs quota support this daemon lacks). */
const VALID_OPTS = new Set(['type', 'o', 'device', 'size']);
const REQUIRED_OPTS: Record<string, string[]> = { device: ['type'], type: ['device'], o: ['device', 'type'] };

/** What the daemon remembers of a volume (its data lives in `<dataRoot>/volumes/<name>/_data`). */
interface VolumeRecord {
  name: string;
  driver: 'local';
  createdAt: string;
  labels: Record<string, string> | null;
  options: Record<string, string> | null;
}

/** `GET /volumes/{name}` (swagger Volume). */
export interface VolumeView {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string> | null;
  Scope: 'local';
  Options: Record<string, string> | null;
}

export interface CreateVolumeOptions {
  /** None: an anonymous volume with a new 64-hex name. */
  name?: string;
  /** A name chosen by the daemon for a container's anonymous volume (gets the anonymous label). */
  anonymous?: boolean;
  driver?: string;
  labels?: Record<string, string> | null;
  options?: Record<string, string> | null;
}

/** Docker's filter match: exact, else the value as a regular expression. */
function matches(pattern: string, value: string): boolean {
  if (pattern === value) return true;
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return false;
  }
}

function labelMatches(labels: Record<string, string> | null, want: string): boolean {
  const i = want.indexOf('=');
  const l = labels ?? {};
  return i < 0 ? want in l : l[want.slice(0, i)] === want.slice(i + 1);
}

function boolFilter(key: string, v: string): boolean {
  if (['true', '1'].includes(v.toLowerCase())) return true;
  if (['false', '0'].includes(v.toLowerCase())) return false;
  throw badRequest(`invalid filter '${key}=${v}'`);
}

/**
 * The node's named volumes, local driver only, as dockerd keeps them: a directory per volume
 * under the data root, metadata in one file so volumes survive a daemon restart. Volumes with
 * `type`/`device`/`o` options are mounted while a container uses them.
 */
export class VolumeStore {
  private readonly volumes = new Map<string, VolumeRecord>();
  /** Containers running with each volume mounted (a volume with mount options is mounted while any is). */
  private readonly active = new Map<string, Set<string>>();
  /** Containers that refer to a volume, in Docker's "volume is in use - [IDs]". */
  private refs: (name: string) => string[] = () => [];
  /** `docker events` of type volume (create, destroy, mount, unmount, prune), wired by the engine. */
  onEvent: (action: string, name: string, attributes: Record<string, string>) => void = () => undefined;
  readonly root: string;
  private readonly metaFile: string;

  private constructor(
    dataRoot: string,
    private readonly log: Logger,
  ) {
    this.root = path.join(dataRoot, 'volumes');
    this.metaFile = path.join(this.root, 'metadata.json');
  }

  static open(dataRoot: string, log: Logger): VolumeStore {
    const s = new VolumeStore(dataRoot, log);
    fs.mkdirSync(s.root, { recursive: true, mode: 0o701 });
    const saved = readJsonFile<{ volumes: VolumeRecord[] }>(s.metaFile);
    for (const v of saved?.volumes ?? []) {
      if (fs.existsSync(s.dataPath(v.name))) s.volumes.set(v.name, v);
    }
    // As the local driver at boot: a volume directory the metadata missed (a crash between the two) is still a volume.
    for (const e of fs.readdirSync(s.root, { withFileTypes: true })) {
      if (!e.isDirectory() || s.volumes.has(e.name) || !NAME.test(e.name) || !fs.existsSync(s.dataPath(e.name)))
        continue;
      const born = fs
        .statSync(path.join(s.root, e.name))
        .ctime.toISOString()
        .replace(/\.\d+Z$/, 'Z');
      s.volumes.set(e.name, { name: e.name, driver: 'local', createdAt: born, labels: null, options: null });
    }
    return s;
  }

  /** Set by the container manager: which containers refer to a volume. */
  /** Containers that mount the volume. */
  users(name: string): string[] {
    return this.refs(name);
  }

  setRefs(fn: (name: string) => string[]): void {
    this.refs = fn;
  }

  dataPath(name: string): string {
    return path.join(this.root, name, '_data');
  }

  private save(): void {
    writeJsonFileAtomic(this.metaFile, { volumes: [...this.volumes.values()] });
  }

  private view(v: VolumeRecord): VolumeView {
    return {
      Name: v.name,
      Driver: v.driver,
      Mountpoint: this.dataPath(v.name),
      CreatedAt: v.createdAt,
      Labels: v.labels,
      Scope: 'local',
      Options: v.options,
    };
  }

  find(name: string): VolumeView | undefined {
    const v = this.volumes.get(name);
    return v ? this.view(v) : undefined;
  }

  /** `docker volume inspect`: 404 "get NAME: no such volume". */
  get(name: string): VolumeView {
    const v = this.find(name);
    if (!v) throw notFound(`get ${name}: no such volume`);
    return v;
  }

  /**
   * `docker volume create`: an existing volume of that name is returned as it is (Docker's
   * create is idempotent); no name makes an anonymous volume with a 64-hex name.
   */
  create(opts: CreateVolumeOptions = {}): VolumeView {
    const anonymous = !opts.name || opts.anonymous === true;
    const name = opts.name || newHexId();
    const existing = this.check({ ...opts, name });
    if (existing) return this.view(existing);
    const options = opts.options && Object.keys(opts.options).length ? opts.options : null;
    const labels = { ...(opts.labels ?? {}), ...(anonymous ? { [ANONYMOUS_LABEL]: '' } : {}) };
    const rec: VolumeRecord = {
      name,
      driver: 'local',
      // RFC 3339 in seconds, as dockerd shows it.
      createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      labels: Object.keys(labels).length ? labels : null,
      options,
    };
    try {
      fs.mkdirSync(path.join(this.root, name), { mode: 0o701, recursive: true });
      fs.mkdirSync(this.dataPath(name), { mode: 0o755, recursive: true });
      this.volumes.set(name, rec);
      this.save();
    } catch (e) {
      // A full disk (ENOSPC) must not leave a volume that is listed but was never recorded.
      this.volumes.delete(name);
      fs.rmSync(path.join(this.root, name), { recursive: true, force: true });
      throw e;
    }
    this.log.info({ name }, 'volume created');
    this.onEvent('create', name, { driver: 'local' });
    return this.view(rec);
  }

  /** Throws what `create` would refuse, without creating anything; the volume when it exists already. */
  check(opts: CreateVolumeOptions & { name: string }): VolumeRecord | undefined {
    const name = opts.name;
    const driver = opts.driver || 'local';
    if (driver !== 'local')
      throw notFound(`create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const existing = this.volumes.get(name);
    if (existing) return existing;
    // A directory name: the kernel's limit is 255 bytes (dockerd fails later, with a 500, at mkdir).
    if (Buffer.byteLength(name) > 255)
      throw badRequest(`create ${name.slice(0, 64)}…: volume name is too long (at most 255 bytes)`);
    if (name.length === 1)
      throw badRequest(
        `create ${name}: volume name is too short, names should be at least two alphanumeric characters`,
      );
    if (!NAME.test(name)) {
      throw badRequest(
        `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    }
    const options = opts.options && Object.keys(opts.options).length ? opts.options : null;
    for (const k of Object.keys(options ?? {})) {
      if (!VALID_OPTS.has(k)) throw badRequest(`create ${name}: invalid option: "${k}"`);
    }
    if (options?.size) throw badRequest(`create ${name}: quota size requested but no quota support`);
    for (const [k, needs] of Object.entries(REQUIRED_OPTS)) {
      if (!(options && k in options)) continue;
      for (const n of needs) if (!(n in options)) throw badRequest(`create ${name}: missing required option: "${n}"`);
    }
    return undefined;
  }

  /** `docker volume ls` filters: dangling, name, driver, label. */
  list(filters: Map<string, string[]> = new Map()): VolumeView[] {
    for (const k of filters.keys())
      if (!['dangling', 'name', 'driver', 'label'].includes(k)) throw badRequest(`invalid filter '${k}'`);
    return [...this.volumes.values()].filter((v) => this.passes(v, filters)).map((v) => this.view(v));
  }

  private passes(v: VolumeRecord, filters: Map<string, string[]>): boolean {
    for (const [k, vals] of filters) {
      if (!vals.length) continue;
      switch (k) {
        case 'dangling':
          if (!vals.some((x) => boolFilter(k, x) === (this.refs(v.name).length === 0))) return false;
          break;
        case 'name':
          if (!vals.some((x) => matches(x, v.name))) return false;
          break;
        case 'driver':
          if (!vals.some((x) => matches(x, v.driver))) return false;
          break;
        case 'label':
          if (!vals.every((x) => labelMatches(v.labels, x))) return false;
          break;
        case 'label!':
          if (vals.some((x) => labelMatches(v.labels, x))) return false;
          break;
        case 'all':
          break;
      }
    }
    return true;
  }

  /** `docker volume rm [-f]`: refused while a container refers to it; `force` ignores a missing volume. */
  async remove(name: string, force = false): Promise<void> {
    const v = this.volumes.get(name);
    if (!v) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const refs = this.refs(name);
    if (refs.length) throw conflict(`remove ${name}: volume is in use - [${refs.join(', ')}]`);
    const dir = path.join(this.root, name);
    if (isMounted(this.dataPath(name))) await run('umount', ['-l', this.dataPath(name)], { allowFail: true });
    // Data first: a crash in between leaves metadata without a directory, which open() drops.
    fs.rmSync(dir, { recursive: true, force: true });
    this.volumes.delete(name);
    this.active.delete(name);
    try {
      this.save();
    } catch (err) {
      // The data is gone, so the volume is too: open() drops a record without its directory.
      // A full disk (ENOSPC) that refuses the metadata write must not make a done removal a 500.
      this.log.warn({ err, name }, 'volume removed; its metadata is rewritten on the next change');
    }
    this.log.info({ name }, 'volume removed');
    this.onEvent('destroy', name, { driver: 'local' });
  }

  /**
   * `POST /volumes/prune`: unused local volumes without mount options. From API 1.42 only
   * anonymous ones unless the `all` filter is set; older clients (1.41) prune every unused one.
   */
  async prune(
    filters: Map<string, string[]>,
    apiVersion: string,
  ): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    for (const k of filters.keys())
      if (!['label', 'label!', 'all'].includes(k)) throw badRequest(`invalid filter '${k}'`);
    const [maj, min] = apiVersion.split('.').map(Number);
    const all = maj > 1 || min < 42 || (filters.get('all') ?? []).some((x) => boolFilter('all', x));
    const deleted: string[] = [];
    let space = 0;
    for (const v of [...this.volumes.values()]) {
      if (v.options || this.refs(v.name).length) continue;
      if (!all && !(v.labels && ANONYMOUS_LABEL in v.labels)) continue;
      if (!this.passes(v, filters)) continue;
      const size = dirSize(this.dataPath(v.name));
      try {
        await this.remove(v.name);
      } catch (e) {
        this.log.warn({ err: e, name: v.name }, 'could not prune volume');
        continue;
      }
      deleted.push(v.name);
      space += size;
    }
    this.onEvent('prune', '', { reclaimed: String(space) });
    return { VolumesDeleted: deleted, SpaceReclaimed: space };
  }

  /** The host path a container binds; mounts the volume's device first when it has mount options. */
  async mount(name: string, ref: string): Promise<string> {
    const v = this.volumes.get(name);
    if (!v) throw notFound(`get ${name}: no such volume`);
    const data = this.dataPath(name);
    const o = v.options;
    if (o && (o.type || o.device) && !isMounted(data)) {
      if (!o.device) throw serverError('missing device in volume options');
      const args = ['-t', o.type, ...(o.o ? ['-o', o.o] : []), o.device, data];
      const r = await run('mount', args, { allowFail: true });
      if (r.code !== 0)
        throw serverError(`error while mounting volume '${data}': failed to mount local volume: ${r.stderr.trim()}`);
    }
    const holders = this.active.get(name) ?? new Set<string>();
    holders.add(ref);
    this.active.set(name, holders);
    return data;
  }

  /** Drops a container's hold (false if it had none); the last one out unmounts a volume with mount options. */
  async unmount(name: string, ref: string): Promise<boolean> {
    const holders = this.active.get(name);
    if (!holders?.delete(ref)) return false;
    if (holders.size) return true;
    this.active.delete(name);
    const data = this.dataPath(name);
    if (this.volumes.get(name)?.options && isMounted(data)) await run('umount', [data], { allowFail: true });
    return true;
  }
}

/** Bytes under a directory (files only; what prune reports as reclaimed). */
export function dirSize(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirSize(p);
    else if (e.isFile()) {
      try {
        total += fs.lstatSync(p).size;
      } catch {
        /* gone */
      }
    }
  }
  return total;
}
