import fs from 'node:fs';
import path from 'node:path';
import { badRequest } from '../../util/errors.js';
import type { ContainerRecord } from './record.js';
import { ociMounts } from '../volumes/mounts.js';

/** Docker's default capability set for unprivileged containers. */
const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const MASKED = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: Record<string, string[]>;
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges?: boolean;
}

/** Rows of a colon-separated file (passwd, group) in the container's rootfs; none when it is missing. */
function readDb(rootfs: string, f: string): string[][] {
  try {
    return fs
      .readFileSync(path.join(rootfs, f), 'utf8')
      .split('\n')
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/**
 * `user`, `uid`, `user:group`, `uid:gid` looked up in the container's own /etc/passwd and
 * /etc/group; the additional groups are the user's memberships in /etc/group plus `groupAdd`
 * (`--group-add`, names or IDs), as dockerd's getUser.
 */
export function resolveUser(
  rootfs: string,
  spec: string | undefined,
  groupAdd: string[] = [],
): { uid: number; gid: number; additionalGids?: number[] } {
  const [u, g] = (spec ?? '').split(':');
  let uid = 0;
  let gid = 0;
  let userName = u === '' ? 'root' : u;
  if (u === '') {
    // root
  } else if (/^\d+$/.test(u)) {
    uid = Number(u);
    const row = readDb(rootfs, 'etc/passwd').find((r) => r[2] === u);
    if (row) {
      gid = Number(row[3]);
      userName = row[0];
    }
  } else {
    const row = readDb(rootfs, 'etc/passwd').find((r) => r[0] === u);
    if (!row) throw badRequest(`unable to find user ${u}: no matching entries in passwd file`);
    uid = Number(row[2]);
    gid = Number(row[3]);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = readDb(rootfs, 'etc/group').find((r) => r[0] === g);
      if (!row) throw badRequest(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(row[2]);
    }
  }
  const groups = readDb(rootfs, 'etc/group');
  const extra: number[] = groups
    .filter((r) => r.length >= 4 && r[3].split(',').includes(userName))
    .map((r) => Number(r[2]));
  for (const ga of groupAdd) {
    if (/^\d+$/.test(ga)) extra.push(Number(ga));
    else {
      const row = groups.find((r) => r[0] === ga);
      if (!row) throw badRequest(`Unable to find group ${ga}: no matching entries in group file`);
      extra.push(Number(row[2]));
    }
  }
  const additionalGids = [...new Set(extra.filter((n) => Number.isInteger(n) && n !== gid))];
  return additionalGids.length ? { uid, gid, additionalGids } : { uid, gid };
}

/** `-v /host:/ctr[:ro]` binds of records made before mount points were resolved at create (volumes: ../volumes/mounts.ts). */
export function bindMounts(binds: string[] | null | undefined): OciMount[] {
  return (binds ?? []).map((b) => {
    const [src, dst, mode = ''] = b.split(':');
    if (!src || !dst || !src.startsWith('/'))
      throw badRequest(`invalid volume specification: '${b}' (only host-path binds are supported)`);
    const opts = ['rbind', mode.split(',').includes('ro') ? 'ro' : 'rw'];
    return { destination: dst, type: 'bind', source: src, options: opts };
  });
}

/** `HostConfig.Mounts` (`--mount`) of such older records: bind and tmpfs. */
export interface ApiMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export function apiMounts(mounts: unknown): OciMount[] {
  if (mounts === undefined || mounts === null) return [];
  if (!Array.isArray(mounts)) throw badRequest('invalid mount config: Mounts must be a list');
  return (mounts as ApiMount[]).map((m) => {
    if (!m.Target || !m.Target.startsWith('/'))
      throw badRequest(
        `invalid mount config for type "${m.Type}": invalid mount path: '${m.Target ?? ''}' mount path must be absolute`,
      );
    if (m.Type === 'bind') {
      if (!m.Source || !m.Source.startsWith('/'))
        throw badRequest(
          `invalid mount config for type "bind": invalid mount path: '${m.Source ?? ''}' mount path must be absolute`,
        );
      if (!fs.existsSync(m.Source))
        throw badRequest(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
      return { destination: m.Target, type: 'bind', source: m.Source, options: ['rbind', m.ReadOnly ? 'ro' : 'rw'] };
    }
    if (m.Type === 'tmpfs') {
      const o = ['nosuid', 'nodev', ...(m.ReadOnly ? ['ro'] : [])];
      if (m.TmpfsOptions?.SizeBytes) o.push(`size=${m.TmpfsOptions.SizeBytes}`);
      o.push(`mode=${(m.TmpfsOptions?.Mode ?? 0o1777).toString(8)}`);
      return { destination: m.Target, type: 'tmpfs', source: 'tmpfs', options: o };
    }
    throw badRequest(`mount type "${m.Type}" is not supported`);
  });
}

/** The process a container (or an exec in it) runs. */
export function processSpec(
  rootfs: string,
  args: string[],
  env: string[],
  opts: { tty: boolean; user?: string; cwd?: string; privileged?: boolean; groupAdd?: string[] },
): OciProcess {
  const caps = opts.privileged ? undefined : DEFAULT_CAPS;
  return {
    terminal: opts.tty,
    user: resolveUser(rootfs, opts.user, opts.groupAdd),
    args,
    env,
    cwd: opts.cwd || '/',
    ...(caps ? { capabilities: { bounding: caps, effective: caps, permitted: caps } } : {}),
    noNewPrivileges: false,
  };
}

/** The kernel's range of cpu.shares (cgroup v1); runc refuses a value the kernel would clamp. */
const MIN_CPU_SHARES = 2;
const MAX_CPU_SHARES = 262144;

/** As dockerd's adaptContainerSettings: shares out of the kernel's range are brought into it. */
export function clampCpuShares(shares: number): number {
  return Math.min(MAX_CPU_SHARES, Math.max(MIN_CPU_SHARES, shares));
}

/** `--memory`, `--cpus`, `--cpu-shares`, `--pids-limit` as cgroup limits. */
function resources(h: ContainerRecord['hostConfig'], privileged: boolean): Record<string, unknown> {
  const num = (v: unknown) => (typeof v === 'number' && v > 0 ? v : undefined);
  const r: Record<string, unknown> = { devices: [{ allow: privileged, access: 'rwm' }] };
  const memory = num(h.Memory);
  if (memory) r.memory = { limit: memory };
  const cpu: Record<string, number> = {};
  const nano = num(h.NanoCpus);
  if (nano) Object.assign(cpu, { period: 100_000, quota: Math.max(1000, Math.round((nano / 1e9) * 100_000)) });
  else if (num(h.CpuQuota)) Object.assign(cpu, { period: num(h.CpuPeriod) ?? 100_000, quota: h.CpuQuota });
  const shares = num(h.CpuShares);
  if (shares) cpu.shares = clampCpuShares(shares);
  if (Object.keys(cpu).length) r.cpu = cpu;
  // `--cpu-rt-period/--cpu-rt-runtime` (cgroup v1 cpu.rt_*), checked at create.
  const rtPeriod = num(h.CpuRealtimePeriod);
  const rtRuntime = num(h.CpuRealtimeRuntime);
  if (rtPeriod) cpu.realtimePeriod = rtPeriod;
  if (rtRuntime) cpu.realtimeRuntime = rtRuntime;
  const pids = num(h.PidsLimit);
  if (pids) r.pids = { limit: pids };
  return r;
}

/** `HostConfig.GroupAdd` as given (names or IDs). */
export function groupAddOf(h: ContainerRecord['hostConfig']): string[] {
  return Array.isArray(h.GroupAdd) ? (h.GroupAdd as unknown[]).map(String) : [];
}

/** What Docker adds to a container's environment: HOSTNAME first, TERM for a TTY. */
function processEnv(env: string[], hostname: string, tty: boolean): string[] {
  const has = (k: string) => env.some((e) => e.startsWith(`${k}=`));
  return [...(has('HOSTNAME') ? [] : [`HOSTNAME=${hostname}`]), ...env, ...(tty && !has('TERM') ? ['TERM=xterm'] : [])];
}

/** Links' variables first, the container's own `Env` winning over them, as dockerd's CreateDaemonEnvironment. */
function withLinkEnv(linkEnv: string[], env: string[]): string[] {
  const own = new Set(env.map((e) => e.split('=')[0]));
  return [...linkEnv.filter((e) => !own.has(e.split('=')[0])), ...env];
}

function rootfsPropagation(rec: ContainerRecord): { rootfsPropagation?: string } {
  const props = (rec.mountPoints ?? []).filter((mp) => mp.Type === 'bind').map((mp) => mp.Propagation);
  if (props.some((p) => p === 'shared' || p === 'rshared')) return { rootfsPropagation: 'shared' };
  if (props.some((p) => p === 'slave' || p === 'rslave')) return { rootfsPropagation: 'rslave' };
  return {};
}

/** The container's cgroup, below each controller's root (v1) or the unified root (v2). */
export function cgroupsPathOf(id: string): string {
  // Container IDs are random, so the path never collides between daemons on one host.
  return `/shoal/${id}`;
}

/** The OCI runtime spec (config.json) runc gets for a container. */
export function containerSpec(
  rec: ContainerRecord,
  p: { rootfs: string; hosts: string; hostname: string; resolvConf: string },
  hostname: string,
  linkEnv: string[] = [],
): object {
  const c = rec.config;
  const privileged = rec.hostConfig.Privileged === true;
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/sys',
      type: 'sysfs',
      source: 'sysfs',
      options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'],
    },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
    { destination: '/etc/hosts', type: 'bind', source: p.hosts, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hostname', type: 'bind', source: p.hostname, options: ['rbind', 'rprivate'] },
    { destination: '/etc/resolv.conf', type: 'bind', source: p.resolvConf, options: ['rbind', 'rprivate'] },
    ...(rec.mountPoints
      ? ociMounts(rec.mountPoints)
      : [...bindMounts(rec.hostConfig.Binds), ...apiMounts(rec.hostConfig.Mounts)]),
  ];
  return {
    ociVersion: '1.0.2-dev',
    process: processSpec(
      p.rootfs,
      [rec.path, ...rec.args],
      processEnv(withLinkEnv(linkEnv, c.Env ?? []), hostname, c.Tty === true),
      { tty: c.Tty === true, user: c.User, cwd: c.WorkingDir, privileged, groupAdd: groupAddOf(rec.hostConfig) },
    ),
    root: { path: p.rootfs, readonly: false },
    hostname,
    mounts,
    linux: {
      cgroupsPath: cgroupsPathOf(rec.id),
      resources: resources(rec.hostConfig, privileged),
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      // A shared (or slave) bind needs the root to propagate so too, as dockerd sets it.
      ...rootfsPropagation(rec),
      ...(privileged ? {} : { maskedPaths: MASKED, readonlyPaths: READONLY }),
    },
  };
}
