import fs from 'node:fs';
import path from 'node:path';
import { readJsonFile, writeJsonSynced } from '../network/state-file.js';
import type { PublishedPort } from './ports.js';
import type { MountPoint } from '../volumes/mounts.js';

/** A container's health as `docker inspect` shows it (State.Health), kept in its record. */
export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

/** `Config` of a container as the Engine API takes and shows it (the fields shoal acts on, plus pass-through). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | string | null;
  Entrypoint?: string[] | string | null;
  Image?: string;
  Labels?: Record<string, string> | null;
  WorkingDir?: string;
  StopSignal?: string;
  StopTimeout?: number | null;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  [k: string]: unknown;
}

/** The part of `HostConfig` shoal acts on; the rest is kept and shown as given. */
export interface HostConfig {
  Binds?: string[] | null;
  NetworkMode?: string;
  AutoRemove?: boolean;
  RestartPolicy?: { Name: string; MaximumRetryCount?: number };
  Privileged?: boolean;
  [k: string]: unknown;
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  OOMKilled: boolean;
  /** Present when the container has a health check. */
  Health?: HealthState;
}

/** What the daemon remembers about one container, across restarts. */
/** What a client asked for on one network (swagger EndpointSettings): kept, and shown by inspect. */
export interface EndpointSettings {
  IPv4Address?: string;
  /** `--ip6`, as given. */
  IPv6Address?: string;
  Aliases?: string[];
  /** `--link` on a user network: `container:alias`. */
  Links?: string[];
  LinkLocalIPs?: string[];
  DriverOpts?: Record<string, string>;
  /** `network connect --mac-address` (API EndpointSettings.MacAddress). */
  MacAddress?: string;
}

export interface ContainerRecord {
  id: string;
  /** With Docker's leading slash. */
  name: string;
  created: string;
  /** The image as the user named it. */
  image: string;
  imageId: string;
  /** Final argv: entrypoint + cmd. */
  path: string;
  args: string[];
  config: ContainerConfig;
  hostConfig: HostConfig;
  state: ContainerState;
  restartCount: number;
  /** conmon's PID while the container runs (adoption after a daemon restart). */
  conmonPid?: number;
  /** Host ports published for the current run. */
  published?: PublishedPort[];
  /** Stopped by a user (`docker stop`): no restart policy applies until the next start. */
  manuallyStopped?: boolean;
  /** Networks joined with `docker network connect` beyond NetworkMode, as named then: joined again at every start. */
  connectedNetworks?: string[];
  /** `network disconnect bridge` of a default-bridge container: it starts without that endpoint until connected again. */
  leftDefaultBridge?: boolean;
  /** Per-network endpoint settings asked for (`--ip`, `--network-alias`, `network connect --alias`), by network name as given. */
  endpointSettings?: Record<string, EndpointSettings>;
  /** Binds, mounts and volumes resolved at create (records of older daemons lack it: Binds/Mounts are read then). */
  mountPoints?: MountPoint[];
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Where one container's files live. Data: the record, rootfs, log. Exec: runtime sockets, pid files. */
export function containerPaths(dataRoot: string, execRoot: string, id: string) {
  const dir = path.join(dataRoot, 'containers', id);
  const run = path.join(execRoot, 'conmon', id.slice(0, 16));
  return {
    dir,
    record: path.join(dir, 'container.json'),
    bundle: dir,
    spec: path.join(dir, 'config.json'),
    upper: path.join(dir, 'upper'),
    work: path.join(dir, 'work'),
    rootfs: path.join(dir, 'rootfs'),
    log: path.join(dir, `${id}-json.log`),
    hosts: path.join(dir, 'hosts'),
    hostname: path.join(dir, 'hostname'),
    resolvConf: path.join(dir, 'resolv.conf'),
    /** Short: unix socket paths (conmon's attach socket) must stay under 108 bytes. */
    run,
    conmonPid: path.join(run, 'conmon.pid'),
    pidFile: path.join(run, 'pid'),
    conmonStderr: path.join(run, 'conmon.err'),
  };
}

export function loadRecord(file: string): ContainerRecord | undefined {
  return readJsonFile<ContainerRecord>(file);
}

/**
 * Record writes: a temp file fsync'd, then renamed over (the file's own fsync, not the
 * directory's, as dockerd checkpoints containers). Each write has a sequence number and a
 * rename never puts an older write over a newer one, so async writes (fsync on the thread
 * pool, many containers at once) and sync ones can interleave freely.
 */
let writeSeq = 0;
const renamed = new Map<string, number>();

function install(file: string, tmp: string, seq: number): void {
  if ((renamed.get(file) ?? 0) > seq) {
    fs.rmSync(tmp, { force: true });
    return;
  }
  fs.renameSync(tmp, file);
  renamed.set(file, seq);
}

export function saveRecord(file: string, rec: ContainerRecord): void {
  const seq = ++writeSeq;
  const tmp = `${file}.${seq}.tmp`;
  try {
    writeJsonSynced(tmp, rec);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  install(file, tmp, seq);
}

/** `saveRecord` with the write and fsync off the event loop; the record is copied when called. */
export async function saveRecordAsync(file: string, rec: ContainerRecord): Promise<void> {
  const seq = ++writeSeq;
  const tmp = `${file}.${seq}.tmp`;
  const data = JSON.stringify(rec, null, 2) + '\n';
  try {
    const fh = await fs.promises.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    // A failed write (ENOSPC) leaves the old record as it was and no temp file behind.
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  install(file, tmp, seq);
}

/** Forgets a removed container's write sequence. */
export function forgetRecord(file: string): void {
  renamed.delete(file);
}

export function listRecordIds(dataRoot: string): string[] {
  const dir = path.join(dataRoot, 'containers');
  try {
    return fs.readdirSync(dir).filter((f) => /^[a-f0-9]{64}$/.test(f));
  } catch {
    return [];
  }
}
