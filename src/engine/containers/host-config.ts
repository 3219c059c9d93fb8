import fs from 'node:fs';
import { ApiError, badRequest } from '../../util/errors.js';
import type { HostConfig } from './record.js';

/**
 * HostConfig checks and defaults at create, as dockerd 20.10 makes them (daemon/create.go,
 * verifyContainerSettings, mergeAndVerifyLogConfig): what shoal cannot honour is refused with
 * dockerd's message rather than stored and ignored.
 */

/** The only OCI runtime here; dockerd 20.10's default name for it. */
export const DEFAULT_RUNTIME = 'runc';
/** The kernel's PID_MAX_LIMIT: pids.max refuses more, so runc would fail on it. */
export const MAX_PIDS_LIMIT = 4 * 1024 * 1024;

/** Log drivers shoal writes (conmon's json log file serves all of them); `none` keeps no log in dockerd. */
const LOG_DRIVERS = new Set(['json-file', 'local', 'none']);
/** json-file's options (moby daemon/logger/jsonfilelog ValidateLogOpt). */
const JSON_FILE_OPTS = new Set([
  'max-file',
  'max-size',
  'compress',
  'labels',
  'labels-regex',
  'env',
  'env-regex',
  'tag',
]);

export interface LogConfig {
  Type: string;
  Config: Record<string, string>;
}

/** `LogConfig` with dockerd's default driver; an unknown driver or option is a 400 with dockerd's words. */
export function normalizeLogConfig(v: unknown): LogConfig {
  const given = (v ?? {}) as { Type?: unknown; Config?: unknown };
  if (typeof given !== 'object' || Array.isArray(given))
    throw badRequest('json: cannot unmarshal into Go struct field HostConfig.LogConfig of type container.LogConfig');
  const type = typeof given.Type === 'string' && given.Type !== '' ? given.Type : 'json-file';
  const config =
    given.Config && typeof given.Config === 'object' ? { ...(given.Config as Record<string, string>) } : {};
  // dockerd asks its plugin store for drivers it has not built in; there are no plugins here.
  if (!LOG_DRIVERS.has(type)) throw badRequest(`error looking up logging plugin ${type}: plugin "${type}" not found`);
  if (type === 'json-file') {
    for (const k of Object.keys(config))
      if (!JSON_FILE_OPTS.has(k)) throw badRequest(`unknown log opt '${k}' for json-file log driver`);
  }
  return { Type: type, Config: config };
}

/** Real-time CPU scheduling needs the cgroup v1 cpu controller's rt files (CONFIG_RT_GROUP_SCHED). */
function cpuRealtimeSupported(): boolean {
  return (
    fs.existsSync('/sys/fs/cgroup/cpu/cpu.rt_runtime_us') ||
    fs.existsSync('/sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us')
  );
}

/**
 * The create-time checks and defaults of a new container's HostConfig; returns the HostConfig
 * to store (LogConfig and Runtime filled in as dockerd shows them).
 */
export function verifyHostConfig(h: HostConfig): HostConfig {
  const out: HostConfig = { ...h, LogConfig: normalizeLogConfig(h.LogConfig) };
  const runtime = typeof h.Runtime === 'string' && h.Runtime !== '' ? h.Runtime : DEFAULT_RUNTIME;
  if (runtime !== DEFAULT_RUNTIME) throw badRequest(`Unknown runtime specified ${runtime}`);
  out.Runtime = runtime;
  // Values runc cannot take, refused before anything is stored (as `docker update` does): current
  // dockerd's validateResources for shares; pids.max refuses more than the kernel's PID_MAX_LIMIT.
  if (num(h.CpuShares) < 0) throw badRequest(`invalid CPU shares (${h.CpuShares}): value must be a positive integer`);
  if (num(h.PidsLimit) > MAX_PIDS_LIMIT)
    throw badRequest(`invalid PidsLimit (${h.PidsLimit}): the kernel allows at most ${MAX_PIDS_LIMIT}`);
  const period = num(h.CpuRealtimePeriod);
  const rt = num(h.CpuRealtimeRuntime);
  if ((period > 0 || rt > 0) && !cpuRealtimeSupported()) {
    throw badRequest(
      period > 0
        ? 'Your kernel does not support cgroup cpu real-time period'
        : 'Your kernel does not support cgroup cpu real-time runtime',
    );
  }
  if (period !== 0 && rt !== 0 && rt > period) throw badRequest('cpu-rt-runtime cannot be higher than cpu-rt-period');
  const groups = h.GroupAdd;
  if (
    groups !== undefined &&
    groups !== null &&
    (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string'))
  ) {
    throw badRequest('json: cannot unmarshal into Go struct field HostConfig.GroupAdd of type []string');
  }
  // overlay2 takes storage options only on xfs with project quotas; shoal's layers never have them.
  if (h.StorageOpt && typeof h.StorageOpt === 'object' && Object.keys(h.StorageOpt).length) {
    throw new ApiError(500, "--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
  }
  return out;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
