import { run } from '../../util/run.js';

/**
 * A network namespace commands run in, by the path of its handle (`/run/netns/x`,
 * `/proc/<pid>/ns/net`); undefined is this process's own.
 */
export type NetnsPath = string | undefined;

function wrap(ns: NetnsPath, cmd: string, args: string[]): [string, string[]] {
  return ns === undefined ? [cmd, args] : ['nsenter', [`--net=${ns}`, '--', cmd, ...args]];
}

export function exec(ns: NetnsPath, cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}) {
  const [c, a] = wrap(ns, cmd, args);
  return run(c, a, opts);
}

/** One `ip -batch -`: the namespace's share of a change set; stops at the first failing line. */
export async function ipBatch(ns: NetnsPath, lines: string[]): Promise<void> {
  if (lines.length) await exec(ns, 'ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

/**
 * One `bridge -batch -` (FDB entries: `ip` has no command for them). `force` goes on past
 * failing lines, for deletions of entries the kernel may already have dropped.
 */
export async function bridgeBatch(ns: NetnsPath, lines: string[], force = false): Promise<void> {
  if (!lines.length) return;
  await exec(ns, 'bridge', [...(force ? ['-force'] : []), '-batch', '-'], {
    input: lines.join('\n') + '\n',
    allowFail: force,
  });
}

/** One nftables transaction: all of it or none. */
export async function nftApply(ns: NetnsPath, script: string): Promise<void> {
  await exec(ns, 'nft', ['-f', '-'], { input: script });
}

/** `ip -json …` parsed; [] when the command fails (object or namespace missing). */
export async function ipJson<T>(ns: NetnsPath, args: string[]): Promise<T[]> {
  const r = await exec(ns, 'ip', ['-json', ...args], { allowFail: true });
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return JSON.parse(r.stdout) as T[];
}

export async function bridgeJson<T>(ns: NetnsPath, args: string[]): Promise<T[]> {
  const r = await exec(ns, 'bridge', ['-json', ...args], { allowFail: true });
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return JSON.parse(r.stdout) as T[];
}

export async function sysctl(ns: NetnsPath, key: string, value: string): Promise<void> {
  await sysctls(ns, { [key]: value });
}

/** Several sysctls in one process; a key the kernel lacks does not stop the others. */
export async function sysctls(ns: NetnsPath, values: Record<string, string>): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  if (args.length) await exec(ns, 'sysctl', ['-qw', ...args], { allowFail: true });
}

export interface LinkInfo {
  ifname: string;
  flags?: string[];
  address?: string;
  master?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number } };
}

export interface NeighEntry {
  dst: string;
  lladdr?: string;
  state?: string[];
}

export interface FdbEntry {
  mac: string;
  dst?: string;
  flags?: string[];
}
