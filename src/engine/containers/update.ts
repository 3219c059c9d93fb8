/** `docker update`: which resource and restart-policy changes are accepted, and the `runc update` that applies them. */
import { badRequest } from '../../util/errors.js';
import type { HostConfig } from './record.js';
import { MAX_PIDS_LIMIT } from './host-config.js';
import { clampCpuShares } from './spec.js';

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

const RESOURCE_KEYS = [
  'Memory',
  'MemorySwap',
  'MemoryReservation',
  'NanoCpus',
  'CpuShares',
  'CpuPeriod',
  'CpuQuota',
  'CpusetCpus',
  'CpusetMems',
  'PidsLimit',
] as const;
const MIN_MEMORY = 6 * 1024 * 1024;

const cannot = (id: string, msg: string) => badRequest(`Cannot update container ${id}: ${msg}`);

/**
 * dockerd's checks (verifyPlatformContainerResources, then Container.UpdateContainer): the
 * host config after the update plus the warnings. Zero/absent means "unchanged". `u` is adjusted
 * as dockerd adjusts it: this daemon reports no swap limit, so a memory limit goes without swap.
 */
export function applyUpdate(id: string, h: HostConfig, u: UpdateConfig): { next: HostConfig; warnings: string[] } {
  const warnings: string[] = [];
  const next: HostConfig = { ...h };
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  // dockerd (verifyPlatformContainerResources): negative shares are refused, not handed to runc.
  if (num(u.CpuShares) < 0) throw badRequest(`invalid CPU shares (${u.CpuShares}): value must be a positive integer`);
  if (num(u.PidsLimit) > MAX_PIDS_LIMIT)
    throw cannot(id, `invalid PidsLimit (${u.PidsLimit}): the kernel allows at most ${MAX_PIDS_LIMIT}`);
  const memory = num(u.Memory);
  if (memory !== 0 && memory < MIN_MEMORY) throw badRequest('Minimum memory limit allowed is 6MB');
  if (memory > 0 && u.MemorySwap !== -1) {
    warnings.push(
      'Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.',
    );
    u.MemorySwap = -1;
  }
  const swap = num(u.MemorySwap);
  if (memory > 0 && swap > 0 && swap < memory)
    throw badRequest('Minimum memoryswap limit should be larger than memory limit, see usage');
  // NanoCpus stands for CpuPeriod+CpuQuota: one kind set, the other cannot be updated.
  if (num(u.NanoCpus) > 0 && num(h.CpuPeriod) > 0)
    throw cannot(id, 'Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set');
  if (num(u.NanoCpus) > 0 && num(h.CpuQuota) > 0)
    throw cannot(id, 'Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set');
  if (num(u.CpuPeriod) > 0 && num(h.NanoCpus) > 0)
    throw cannot(id, 'Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set');
  if (num(u.CpuQuota) > 0 && num(h.NanoCpus) > 0)
    throw cannot(id, 'Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set');
  if (memory !== 0 && memory > num(h.MemorySwap) && swap === 0) {
    throw cannot(
      id,
      'Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time',
    );
  }
  for (const k of RESOURCE_KEYS) {
    const v = u[k];
    if (k === 'PidsLimit' ? v !== undefined && v !== null : v !== undefined && v !== null && v !== 0 && v !== '')
      next[k] = v;
  }
  const rp = u.RestartPolicy;
  if (rp && rp.Name) {
    if (!['no', 'always', 'unless-stopped', 'on-failure'].includes(rp.Name))
      throw badRequest(
        `invalid restart policy: unknown policy '${rp.Name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`,
      );
    const max = rp.MaximumRetryCount ?? 0;
    if (rp.Name !== 'on-failure' && max !== 0)
      throw badRequest(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
    if (max < 0) throw badRequest('invalid restart policy: maximum retry count cannot be negative');
    if (h.AutoRemove && rp.Name !== 'no')
      throw cannot(id, 'Restart policy cannot be updated because AutoRemove is enabled for the container');
    next.RestartPolicy = { Name: rp.Name, MaximumRetryCount: max };
  }
  return { next, warnings };
}

/** `runc update` flags for the resources this update sets (only those: runc keeps the rest). */
export function runcUpdateArgs(u: UpdateConfig): string[] {
  const a: string[] = [];
  const n = (v: unknown) => typeof v === 'number' && v !== 0;
  if (n(u.Memory)) a.push('--memory', String(u.Memory));
  if (n(u.MemorySwap) && (u.MemorySwap as number) > 0) a.push('--memory-swap', String(u.MemorySwap));
  if (n(u.MemoryReservation)) a.push('--memory-reservation', String(u.MemoryReservation));
  if (n(u.NanoCpus))
    a.push(
      '--cpu-period',
      '100000',
      '--cpu-quota',
      String(Math.max(1000, Math.round(((u.NanoCpus as number) / 1e9) * 100_000))),
    );
  if (n(u.CpuPeriod)) a.push('--cpu-period', String(u.CpuPeriod));
  if (n(u.CpuQuota)) a.push('--cpu-quota', String(u.CpuQuota));
  if (n(u.CpuShares)) a.push('--cpu-share', String(clampCpuShares(u.CpuShares as number)));
  if (typeof u.CpusetCpus === 'string' && u.CpusetCpus) a.push('--cpuset-cpus', u.CpusetCpus);
  if (typeof u.CpusetMems === 'string' && u.CpusetMems) a.push('--cpuset-mems', u.CpusetMems);
  // 0 and -1 both mean unlimited (dockerd's PidsLimit); runc takes -1 for that.
  if (typeof u.PidsLimit === 'number') a.push('--pids-limit', String(u.PidsLimit > 0 ? u.PidsLimit : -1));
  return a;
}
