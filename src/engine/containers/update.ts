/** `docker update`: which resource and restart-policy changes are accepted, and the `runc update` that applies them. */
import { badRequest } from '../../util/errors.js';
import type { HostConfig } from './record.js';

/** The UpdateConfig fields of the Engine API that shoal acts on. */
export interface UpdateConfig {
  Memory?: number;
  MemorySwap?: number;
  MemoryReservation?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  PidsLimit?: number | null;
  RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
  [k: string]: unknown;
}

const RESOURCE_KEYS = ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'CpusetMems', 'PidsLimit'] as const;
const MIN_MEMORY = 6 * 1024 * 1024;

/** The host config after the update; throws Docker's 400s for bad combinations. Zero/absent means "unchanged". */
export function applyUpdate(h: HostConfig, u: UpdateConfig): HostConfig {
  const next: HostConfig = { ...h };
  const set = (k: string) => u[k] !== undefined && u[k] !== null && u[k] !== 0 && u[k] !== '';
  if (set('Memory') && (u.Memory as number) < MIN_MEMORY) throw badRequest('Minimum memory limit allowed is 6MB');
  if (set('NanoCpus') && set('CpuQuota')) throw badRequest('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (set('NanoCpus') && (h.CpuQuota as number | undefined)) throw badRequest('Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set');
  if (set('CpuQuota') && (h.NanoCpus as number | undefined)) throw badRequest('Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set');
  const memory = set('Memory') ? (u.Memory as number) : (h.Memory as number | undefined);
  const swap = set('MemorySwap') ? (u.MemorySwap as number) : (h.MemorySwap as number | undefined);
  if (memory && swap && swap > 0 && memory > swap) {
    throw badRequest(set('MemorySwap')
      ? 'Minimum memoryswap limit should be larger than memory limit, see usage'
      : 'Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
  }
  for (const k of RESOURCE_KEYS) if (set(k)) next[k] = u[k];
  if (u.RestartPolicy && u.RestartPolicy.Name !== undefined && u.RestartPolicy.Name !== '') {
    const name = u.RestartPolicy.Name;
    if (!['no', 'always', 'unless-stopped', 'on-failure'].includes(name)) throw badRequest(`invalid restart policy '${name}'`);
    const max = u.RestartPolicy.MaximumRetryCount ?? 0;
    if (name !== 'on-failure' && max !== 0) throw badRequest(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
    if (max < 0) throw badRequest('invalid restart policy: maximum retry count cannot be negative');
    if (h.AutoRemove && name !== 'no') throw badRequest('Restart policy cannot be updated because AutoRemove is enabled for the container');
    next.RestartPolicy = { Name: name, MaximumRetryCount: max };
  }
  return next;
}

/** `runc update` flags for the resources this update sets (only those: runc keeps the rest). */
export function runcUpdateArgs(u: UpdateConfig): string[] {
  const a: string[] = [];
  const n = (v: unknown) => typeof v === 'number' && v !== 0;
  if (n(u.Memory)) a.push('--memory', String(u.Memory));
  if (n(u.MemorySwap)) a.push('--memory-swap', String(u.MemorySwap));
  if (n(u.MemoryReservation)) a.push('--memory-reservation', String(u.MemoryReservation));
  if (n(u.NanoCpus)) a.push('--cpu-period', '100000', '--cpu-quota', String(Math.max(1000, Math.round(((u.NanoCpus as number) / 1e9) * 100_000))));
  if (n(u.CpuPeriod)) a.push('--cpu-period', String(u.CpuPeriod));
  if (n(u.CpuQuota)) a.push('--cpu-quota', String(u.CpuQuota));
  if (n(u.CpuShares)) a.push('--cpu-share', String(u.CpuShares));
  if (typeof u.CpusetCpus === 'string' && u.CpusetCpus) a.push('--cpuset-cpus', u.CpusetCpus);
  if (typeof u.CpusetMems === 'string' && u.CpusetMems) a.push('--cpuset-mems', u.CpusetMems);
  if (n(u.PidsLimit)) a.push('--pids-limit', String(u.PidsLimit));
  return a;
}
