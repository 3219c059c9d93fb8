import path from 'node:path';
import { badRequest } from '../../util/errors.js';

/**
 * What a container asks to mount (`-v`, `--mount`, VOLUME in the image), turned into Docker's
 * mount points (moby daemon/volume/mounts linux_parser). Pure: no volume is created here.
 */

/** `HostConfig.Mounts[]` as the Engine API takes it (swagger Mount). */
export interface ApiMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; CreateMountpoint?: boolean; [k: string]: unknown } | null;
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string> | null;
    DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null;
    Subpath?: string;
  } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
  [k: string]: unknown;
}

/** One mount of a container, resolved at create and kept in its record (moby MountPoint). */
export interface MountPoint {
  Type: 'bind' | 'volume' | 'tmpfs';
  /** The volume's name (volume mounts; generated for anonymous ones). */
  Name?: string;
  /** Host path: the bind source, the volume's `_data`; '' for tmpfs. */
  Source: string;
  Destination: string;
  Driver?: string;
  /** As given after the second colon of `-v` ('' for `--mount`). */
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** Copy the image's content at Destination into the volume while the volume is empty. */
  CopyData?: boolean;
  /** Created for this container (no name given): `docker rm -v` removes it. */
  Anonymous?: boolean;
  /** tmpfs: `size=`, `mode=` as mount options. */
  TmpfsOptions?: string[];
  /** `--tmpfs` mounts: dockerd keeps them out of inspect's Mounts. */
  Unlisted?: boolean;
  /** `bind-nonrecursive`: mounts below the source stay out. */
  NonRecursive?: boolean;
  /** A bind whose missing host path is created at start (dockerd does that for `-v`, and for `--mount` with CreateMountpoint). */
  CreateSource?: boolean;
  /** Volume to create when missing: its driver options and labels (`--mount` volume-opt / volume-label). */
  DriverOpts?: Record<string, string>;
  Labels?: Record<string, string>;
}

const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const PROPAGATION = new Set(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared']);
const COPY_MODES = new Set(['nocopy']);
const CONSISTENCY = new Set(['consistent', 'cached', 'delegated', 'default']);

/** moby linuxValidMountMode: comma-separated, at most one of each kind. */
export function validMountMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = [0, 0, 0, 0, 0];
  for (const o of mode.split(',')) {
    const kind = [RW_MODES, LABEL_MODES, PROPAGATION, COPY_MODES, CONSISTENCY].findIndex((s) => s.has(o));
    if (kind < 0) return false;
    counts[kind]++;
  }
  return counts.every((c) => c <= 1);
}

/** Go's path.Clean: normalized, no trailing slash. */
function cleanPath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const invalidSpec = (raw: string) => `invalid volume specification: '${raw}'`;
const mountConfigError = (type: string | undefined, msg: string) =>
  badRequest(`invalid mount config for type "${type ?? ''}": ${msg}`);

/** A `-v` / `Binds` entry: `/host:/ctr[:mode]`, `name:/ctr[:mode]`, or `/ctr` (anonymous volume). */
export function parseBind(raw: string, volumeDriver = ''): MountPoint {
  const arr = raw.split(':');
  if (arr[0] === '' || arr.length > 3) throw badRequest(invalidSpec(raw));
  let source = '';
  let target: string;
  let mode = '';
  if (arr.length === 1) target = arr[0];
  else {
    // `/ctr:ro` is a destination with a mode, which a volume cannot have.
    if (arr.length === 2 && validMountMode(arr[1])) throw badRequest(invalidSpec(raw));
    [source, target, mode = ''] = arr;
  }
  if (!validMountMode(mode)) throw badRequest(`invalid mode: ${mode}`);
  const opts = mode ? mode.split(',') : [];
  const spec: ApiMount = {
    Type: path.isAbsolute(source) ? 'bind' : 'volume',
    Source: source,
    Target: target,
    ReadOnly: opts.includes('ro'),
  };
  if (spec.Type === 'volume') {
    spec.VolumeOptions = {
      NoCopy: opts.includes('nocopy'),
      ...(volumeDriver ? { DriverConfig: { Name: volumeDriver } } : {}),
    };
  }
  const prop = opts.find((o) => PROPAGATION.has(o));
  if (prop) spec.BindOptions = { Propagation: prop };
  let mp: MountPoint;
  try {
    mp = parseMount(spec, () => true);
  } catch (e) {
    throw badRequest(`${invalidSpec(raw)}: ${(e as Error).message}`);
  }
  // dockerd's setBindModeIfNull: a named volume given with -v shows mode "z".
  return {
    ...mp,
    Mode: mode || (mp.Type === 'volume' && source ? 'z' : ''),
    ...(mp.Type === 'bind' ? { CreateSource: true } : {}),
  };
}

/** A `HostConfig.Mounts` entry, checked as dockerd does (`sourceExists` for bind sources). */
export function parseMount(m: ApiMount, sourceExists: (p: string) => boolean): MountPoint {
  const type = m.Type;
  for (const [field, owner] of [
    ['BindOptions', 'bind'],
    ['VolumeOptions', 'volume'],
    ['TmpfsOptions', 'tmpfs'],
  ] as const) {
    if (m[field] && type !== owner) throw mountConfigError(type, `field ${field} must not be specified`);
  }
  const target = m.Target ?? '';
  if (!target) throw mountConfigError(type, 'field Target must not be empty');
  if (cleanPath(target) === '/') throw mountConfigError(type, "invalid specification: destination can't be '/'");
  if (!target.startsWith('/'))
    throw mountConfigError(type, `invalid mount path: '${target}' mount path must be absolute`);
  const base = { Destination: cleanPath(target), RW: !m.ReadOnly, Mode: '', Propagation: '' };
  switch (type) {
    case 'bind': {
      const src = m.Source ?? '';
      if (!src) throw mountConfigError(type, 'field Source must not be empty');
      const prop = m.BindOptions?.Propagation;
      if (prop && !PROPAGATION.has(prop)) throw mountConfigError(type, `invalid propagation mode: ${prop}`);
      if (!src.startsWith('/'))
        throw mountConfigError(type, `invalid mount path: '${src}' mount path must be absolute`);
      if (!m.BindOptions?.CreateMountpoint && !sourceExists(src))
        throw mountConfigError(type, `bind source path does not exist: ${src}`);
      return {
        ...base,
        Type: 'bind',
        Source: cleanPath(src),
        Propagation: prop || 'rprivate',
        ...(m.BindOptions?.NonRecursive ? { NonRecursive: true } : {}),
        ...(m.BindOptions?.CreateMountpoint ? { CreateSource: true } : {}),
      };
    }
    case 'volume': {
      const o = m.VolumeOptions ?? {};
      if (o.Subpath) throw mountConfigError(type, 'volume subpaths are not supported');
      return {
        ...base,
        Type: 'volume',
        Source: '',
        ...(m.Source ? { Name: m.Source } : {}),
        Driver: o.DriverConfig?.Name || 'local',
        CopyData: !o.NoCopy,
        ...(o.DriverConfig?.Options && Object.keys(o.DriverConfig.Options).length
          ? { DriverOpts: { ...o.DriverConfig.Options } }
          : {}),
        ...(o.Labels && Object.keys(o.Labels).length ? { Labels: { ...o.Labels } } : {}),
      };
    }
    case 'tmpfs': {
      if (m.Source) throw mountConfigError(type, 'field Source must not be specified');
      const t = m.TmpfsOptions ?? {};
      if (t.SizeBytes !== undefined && t.SizeBytes < 0)
        throw mountConfigError(type, `invalid tmpfs option: size must not be negative`);
      const opts: string[] = [];
      if (t.SizeBytes) opts.push(`size=${Math.floor(t.SizeBytes / 1024)}k`);
      if (t.Mode) opts.push(`mode=${(t.Mode & 0o7777).toString(8)}`);
      return { ...base, Type: 'tmpfs', Source: '', TmpfsOptions: opts };
    }
    default:
      throw mountConfigError(type, 'mount type unknown');
  }
}

/**
 * Every mount a container gets, as dockerd's registerMountPoints orders them: the image's and
 * `Config.Volumes` anonymous volumes unless a bind or mount takes the same path, then Binds, then Mounts.
 */
export function containerMountPoints(
  input: {
    binds?: string[] | null;
    mounts?: unknown;
    configVolumes?: Record<string, unknown> | null;
    imageVolumes?: Record<string, unknown> | null;
    volumeDriver?: string;
    /** `HostConfig.Tmpfs` (`--tmpfs /path:opts`): path → mount options. */
    tmpfs?: unknown;
    /** Mount points of `--volumes-from` containers, already read/write-adjusted. */
    inherited?: MountPoint[];
  },
  sourceExists: (p: string) => boolean,
): MountPoint[] {
  if (input.mounts !== undefined && input.mounts !== null && !Array.isArray(input.mounts))
    throw badRequest('invalid mount config: Mounts must be a list');
  const explicit: MountPoint[] = [];
  const seen = new Set<string>();
  const add = (mp: MountPoint) => {
    if (seen.has(mp.Destination)) throw badRequest(`Duplicate mount point: ${mp.Destination}`);
    seen.add(mp.Destination);
    explicit.push(mp);
  };
  for (const b of input.binds ?? []) add(parseBind(b, input.volumeDriver));
  for (const m of (input.mounts as ApiMount[] | undefined) ?? []) add(parseMount(m, sourceExists));
  if (
    input.tmpfs !== undefined &&
    input.tmpfs !== null &&
    (typeof input.tmpfs !== 'object' || Array.isArray(input.tmpfs))
  )
    throw badRequest('invalid tmpfs config: Tmpfs must be an object');
  for (const [dest, opts] of Object.entries((input.tmpfs as Record<string, string> | undefined) ?? {})) {
    if (!dest.startsWith('/')) throw badRequest(`invalid mount path: '${dest}' mount path must be absolute`);
    const list = String(opts ?? '')
      .split(',')
      .filter(Boolean);
    add({
      Type: 'tmpfs',
      Source: '',
      Destination: cleanPath(dest),
      Mode: '',
      RW: !list.includes('ro'),
      Propagation: '',
      TmpfsOptions: list.filter((o) => o !== 'ro' && o !== 'rw'),
      Unlisted: true,
    });
  }
  // Inherited mounts give way to the container's own (dockerd: volumes-from first, then binds override).
  for (const mp of input.inherited ?? [])
    if (!seen.has(mp.Destination)) {
      seen.add(mp.Destination);
      explicit.unshift(mp);
    }
  const anonymous: MountPoint[] = [];
  for (const dest of [...Object.keys(input.imageVolumes ?? {}), ...Object.keys(input.configVolumes ?? {})]) {
    const d = cleanPath(dest);
    if (seen.has(d)) continue;
    seen.add(d);
    const mp = parseBind(d, input.volumeDriver);
    anonymous.push(mp);
  }
  return [...anonymous, ...explicit];
}

/** OCI mounts for a container's mount points, parents before children (moby sortMounts). */
export function ociMounts(
  mps: MountPoint[],
): { destination: string; type: string; source: string; options: string[] }[] {
  const depth = (p: string) => p.split('/').filter(Boolean).length;
  return [...mps]
    .sort((a, b) => depth(a.Destination) - depth(b.Destination))
    .map((mp) => {
      if (mp.Type === 'tmpfs') {
        const opts = ['nosuid', 'nodev', 'noexec', ...(mp.RW ? [] : ['ro']), ...(mp.TmpfsOptions ?? [])];
        if (!opts.some((o) => o.startsWith('mode='))) opts.push('mode=1777');
        return { destination: mp.Destination, type: 'tmpfs', source: 'tmpfs', options: opts };
      }
      return {
        destination: mp.Destination,
        type: 'bind',
        source: mp.Source,
        options: [mp.NonRecursive ? 'bind' : 'rbind', mp.Propagation || 'rprivate', mp.RW ? 'rw' : 'ro'],
      };
    });
}

/** `Mounts` of `docker inspect` / `docker ps` (swagger MountPoint). */
export function mountPointView(mp: MountPoint): Record<string, unknown> {
  return {
    Type: mp.Type,
    ...(mp.Type === 'volume' ? { Name: mp.Name ?? '' } : {}),
    Source: mp.Source,
    Destination: mp.Destination,
    ...(mp.Type === 'volume' ? { Driver: mp.Driver ?? 'local' } : {}),
    Mode: mp.Mode,
    RW: mp.RW,
    Propagation: mp.Propagation,
  };
}
