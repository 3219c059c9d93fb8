import { runBatched, shQuote } from '../../util/batch-run.js';
import { run } from '../../util/run.js';

/** A place `ip` and `nft` commands run in: this process's own netns, a named netns, or a process's netns. */
export type NetnsTarget = { kind: 'self' } | { kind: 'named'; name: string } | { kind: 'pid'; pid: number };

export const SELF: NetnsTarget = { kind: 'self' };

function wrap(target: NetnsTarget, cmd: string, args: string[]): [string, string[]] {
  switch (target.kind) {
    case 'self':
      return [cmd, args];
    case 'named':
      return ['nsenter', [`--net=/run/netns/${target.name}`, '--', cmd, ...args]];
    case 'pid':
      return ['nsenter', ['-t', String(target.pid), '-n', '--', cmd, ...args]];
  }
}

/** Runs `ip -batch -` with the commands; stops at the first failing one and throws. */
export async function ipBatch(target: NetnsTarget, commands: string[]): Promise<void> {
  if (commands.length === 0) return;
  const [cmd, args] = wrap(target, 'ip', ['-batch', '-']);
  // Batched with other helper runs: many containers wired at once cost one spawn.
  await runBatched(cmd, args, { input: commands.join('\n') + '\n' });
}

/**
 * Several `ip -batch` runs, in order, as one batched item (one sh for all of them): stops at
 * the first that fails and throws its error. A veth's host side and container side are two
 * netns, hence two runs, but need not be two trips.
 */
export async function ipBatches(steps: { target: NetnsTarget; commands: string[] }[]): Promise<void> {
  await runBatched('/bin/sh', ['-c', ipBatchesScript(steps)]);
}

/** The sh script of `ipBatches`: each run's commands in a quoted here-document, `set -e` between. */
export function ipBatchesScript(steps: { target: NetnsTarget; commands: string[] }[]): string {
  const parts = ['set -e'];
  steps.forEach((s, i) => {
    if (s.commands.length === 0) return;
    const [cmd, args] = wrap(s.target, 'ip', ['-batch', '-']);
    const body = s.commands.join('\n');
    if (body.split('\n').includes(`IP_EOF_${i}`)) throw new Error('ip batch contains its delimiter');
    parts.push(`${[cmd, ...args].map(shQuote).join(' ')} <<'IP_EOF_${i}'\n${body}\nIP_EOF_${i}`);
  });
  return parts.join('\n') + '\n';
}

/** `ip -json …`, parsed; an empty list when the object does not exist (allowMissing). */
export async function ipJson<T>(target: NetnsTarget, args: string[], allowMissing = false): Promise<T[]> {
  const [cmd, a] = wrap(target, 'ip', ['-json', ...args]);
  const r = await run(cmd, a, { allowFail: allowMissing });
  if (r.code !== 0) return [];
  return r.stdout.trim() ? (JSON.parse(r.stdout) as T[]) : [];
}

/** Applies one nftables transaction (`nft -f -`): all of it or nothing. */
export async function nftApply(target: NetnsTarget, script: string): Promise<void> {
  const [cmd, args] = wrap(target, 'nft', ['-f', '-']);
  await runBatched(cmd, args, { input: script });
}

/** Runs any program in the target netns. */
export function inNetns(target: NetnsTarget, cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}) {
  const [c, a] = wrap(target, cmd, args);
  return run(c, a, opts);
}

export interface IpLink {
  ifname: string;
  ifindex: number;
  operstate?: string;
  flags?: string[];
  address?: string;
  master?: string;
}

export interface IpAddrInfo {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
