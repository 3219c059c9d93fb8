/**
 * `docker stats`: one sample of a container's cgroup counters (v1 or v2, whichever the host
 * mounts), its processes and its network interfaces, in the Engine API's StatsJSON shape.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ContainerRecord } from './record.js';

const CG = '/sys/fs/cgroup';
const isV2 = () => fs.existsSync(path.join(CG, 'cgroup.controllers'));
/** The `/proc/stat` tick rate: USER_HZ is 100 on every Linux dockerd supports. */
const TICK_NS = 1e9 / 100;
export const ZERO_READ = '0001-01-01T00:00:00Z';

const readText = (f: string): string | undefined => {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};
const readNum = (f: string): number | undefined => {
  const t = readText(f)?.trim();
  if (t === undefined || t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
};
/** `key value` lines (memory.stat, cpu.stat, cpuacct.stat). */
const readKv = (f: string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const line of (readText(f) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
};

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface ContainerStats {
  name: string;
  id: string;
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: Record<string, BlkioEntry[] | null>;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: {
    usage?: number;
    max_usage?: number;
    stats?: Record<string, number>;
    limit?: number;
    failcnt?: number;
  };
  networks?: Record<string, Record<string, number>>;
}

const zeroCpu = (): CpuStats => ({
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
});

/** What `docker stats` shows for a container that does not run: zeros, no read time. */
export function emptyStats(rec: ContainerRecord): ContainerStats {
  return {
    name: rec.name,
    id: rec.id,
    read: ZERO_READ,
    preread: ZERO_READ,
    pids_stats: {},
    blkio_stats: {
      io_service_bytes_recursive: null,
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: zeroCpu(),
    precpu_stats: zeroCpu(),
    memory_stats: {},
  };
}

/** All CPUs' busy+idle time since boot in nanoseconds, as dockerd's system_cpu_usage. */
function systemCpuUsage(): number {
  const line = (readText('/proc/stat') ?? '').split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const ticks = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number)
    .reduce((a, b) => a + b, 0);
  return ticks * TICK_NS;
}

/** Interfaces of the network namespace `pid` lives in, loopback left out as dockerd does. */
function networks(pid: number): Record<string, Record<string, number>> | undefined {
  const text = readText(`/proc/${pid}/net/dev`);
  if (!text) return undefined;
  const out: Record<string, Record<string, number>> = {};
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    out[m[1]] = {
      rx_bytes: f[0],
      rx_packets: f[1],
      rx_errors: f[2],
      rx_dropped: f[3],
      tx_bytes: f[8],
      tx_packets: f[9],
      tx_errors: f[10],
      tx_dropped: f[11],
    };
  }
  return out;
}

/** blkio `MAJ:MIN Op value` lines (v1) as BlkioStatEntry rows. */
function blkioV1(file: string): BlkioEntry[] | null {
  const rows: BlkioEntry[] = [];
  for (const line of (readText(file) ?? '').split('\n')) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) rows.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3], value: Number(m[4]) });
  }
  return rows.length ? rows : null;
}

/** io.stat (v2) rows as dockerd maps them: rbytes/wbytes → Read/Write service bytes. */
function blkioV2(file: string): BlkioEntry[] | null {
  const rows: BlkioEntry[] = [];
  for (const line of (readText(file) ?? '').split('\n')) {
    const [dev, ...kv] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    for (const pair of kv) {
      const [k, v] = pair.split('=');
      const op = k === 'rbytes' ? 'read' : k === 'wbytes' ? 'write' : undefined;
      if (op) rows.push({ major: Number(m[1]), minor: Number(m[2]), op, value: Number(v) });
    }
  }
  return rows.length ? rows : null;
}

/** One sample of a running container; `cgroupsPath` is the spec's linux.cgroupsPath. */
export function sampleStats(rec: ContainerRecord, cgroupsPath: string, prev?: ContainerStats): ContainerStats {
  const s = emptyStats(rec);
  s.read = new Date().toISOString();
  if (prev) {
    s.preread = prev.read;
    s.precpu_stats = prev.cpu_stats;
  }
  const hostMem = os.totalmem();
  const online = os.cpus().length;
  if (isV2()) {
    const dir = path.join(CG, cgroupsPath);
    const cpu = readKv(path.join(dir, 'cpu.stat'));
    s.cpu_stats = {
      cpu_usage: {
        total_usage: (cpu.usage_usec ?? 0) * 1000,
        usage_in_kernelmode: (cpu.system_usec ?? 0) * 1000,
        usage_in_usermode: (cpu.user_usec ?? 0) * 1000,
      },
      system_cpu_usage: systemCpuUsage(),
      online_cpus: online,
      throttling_data: {
        periods: cpu.nr_periods ?? 0,
        throttled_periods: cpu.nr_throttled ?? 0,
        throttled_time: (cpu.throttled_usec ?? 0) * 1000,
      },
    };
    const limit = readNum(path.join(dir, 'memory.max'));
    s.memory_stats = {
      usage: readNum(path.join(dir, 'memory.current')) ?? 0,
      stats: readKv(path.join(dir, 'memory.stat')),
      limit: limit && limit < hostMem ? limit : hostMem,
    };
    s.pids_stats = { current: readNum(path.join(dir, 'pids.current')), limit: readNum(path.join(dir, 'pids.max')) };
    s.blkio_stats.io_service_bytes_recursive = blkioV2(path.join(dir, 'io.stat'));
  } else {
    const sub = (ctl: string, f: string) => path.join(CG, ctl, cgroupsPath, f);
    const acct = readKv(sub('cpuacct', 'cpuacct.stat'));
    const percpu = (readText(sub('cpuacct', 'cpuacct.usage_percpu')) ?? '')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    const thr = readKv(sub('cpu', 'cpu.stat'));
    s.cpu_stats = {
      cpu_usage: {
        total_usage: readNum(sub('cpuacct', 'cpuacct.usage')) ?? 0,
        percpu_usage: percpu,
        usage_in_kernelmode: (acct.system ?? 0) * TICK_NS,
        usage_in_usermode: (acct.user ?? 0) * TICK_NS,
      },
      system_cpu_usage: systemCpuUsage(),
      online_cpus: online,
      throttling_data: {
        periods: thr.nr_periods ?? 0,
        throttled_periods: thr.nr_throttled ?? 0,
        throttled_time: thr.throttled_time ?? 0,
      },
    };
    const limit = readNum(sub('memory', 'memory.limit_in_bytes'));
    s.memory_stats = {
      usage: readNum(sub('memory', 'memory.usage_in_bytes')) ?? 0,
      max_usage: readNum(sub('memory', 'memory.max_usage_in_bytes')),
      failcnt: readNum(sub('memory', 'memory.failcnt')),
      stats: readKv(sub('memory', 'memory.stat')),
      // An unlimited v1 cgroup reads as ~2^63: dockerd shows the host's memory instead.
      limit: limit && limit < hostMem ? limit : hostMem,
    };
    s.pids_stats = { current: readNum(sub('pids', 'pids.current')), limit: readNum(sub('pids', 'pids.max')) };
    for (const [k, f] of [
      ['io_service_bytes_recursive', 'blkio.throttle.io_service_bytes_recursive'],
      ['io_serviced_recursive', 'blkio.throttle.io_serviced_recursive'],
    ] as const)
      s.blkio_stats[k] = blkioV1(sub('blkio', f));
  }
  s.num_procs = 0;
  if (rec.hostConfig.NetworkMode !== 'host' && rec.state.Pid) s.networks = networks(rec.state.Pid);
  return s;
}
