import fs from 'node:fs';
import { runBatched } from '../../util/batch-run.js';

/** Mount points under `root` (deepest first), from this mount namespace's mountinfo. */
export function mountsUnder(root: string): string[] {
  const prefix = root.endsWith('/') ? root : root + '/';
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    // mountinfo escapes spaces etc. as octal; our paths have none.
    if (mp === root || mp.startsWith(prefix)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

export function isMounted(dir: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);
}

/** The container's root: overlayfs over the image's layers (lowest first) with its own upper/work dirs. */
export async function mountRootfs(
  layerDirs: string[],
  p: { upper: string; work: string; rootfs: string },
): Promise<void> {
  if (isMounted(p.rootfs)) return;
  for (const d of [p.upper, p.work, p.rootfs]) fs.mkdirSync(d, { recursive: true });
  // overlayfs takes the uppermost lowerdir first.
  const lower = [...layerDirs].reverse().join(':');
  await runBatched('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${p.upper},workdir=${p.work}`,
    p.rootfs,
  ]);
}

export async function unmountRootfs(rootfs: string): Promise<void> {
  for (const mp of mountsUnder(rootfs)) await runBatched('umount', ['-l', mp], { allowFail: true });
}

/** One more line of a container's /etc/hosts: `--add-host`, a legacy link. */
export interface HostsEntry {
  ip: string;
  names: string[];
}

export interface EtcFilesOptions {
  /** The container's own address (bridge, user network, swarm task's first network): `<ip>\t<hostname>`. */
  ip?: string;
  /** `Config.Domainname`: the own line then names `<hostname>.<domain>` first, as Docker writes it. */
  domainname?: string;
  /** More names for the own address (a swarm task's network aliases). */
  aliases?: string[];
  /** Lines before the own one (`--add-host`, links), in order. */
  extra?: HostsEntry[];
}

/** `HostConfig.ExtraHosts` (`name:ip`; an IPv6 address keeps its colons) as hosts lines. */
export function extraHostsEntries(extraHosts: unknown): HostsEntry[] {
  if (!Array.isArray(extraHosts)) return [];
  return extraHosts
    .filter((h): h is string => typeof h === 'string' && h.includes(':'))
    .map((h) => {
      const i = h.indexOf(':');
      return { ip: h.slice(i + 1), names: [h.slice(0, i)] };
    });
}

/** The text of a container's /etc/hosts, as libnetwork writes it: defaults, extra lines, then the container's own. */
export function hostsContent(hostname: string, o: EtcFilesOptions = {}): string {
  const own = o.ip
    ? [
        `${o.ip}\t${[...(o.domainname ? [`${hostname}.${o.domainname}`] : []), hostname, ...(o.aliases ?? []).filter((a) => a !== hostname)].join(' ')}`,
      ]
    : [];
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    ...(o.extra ?? []).map((e) => `${e.ip}\t${e.names.join(' ')}`),
    ...own,
    '',
  ].join('\n');
}

/** /etc/hosts, /etc/hostname, /etc/resolv.conf as Docker writes them for a container. */
export function writeEtcFiles(
  p: { hosts: string; hostname: string; resolvConf: string },
  hostname: string,
  o: EtcFilesOptions = {},
): void {
  // Written in place, never renamed: the bind mount follows the inode.
  fs.writeFileSync(p.hosts, hostsContent(hostname, o));
  fs.writeFileSync(p.hostname, hostname + '\n');
  if (!fs.existsSync(p.resolvConf)) fs.writeFileSync(p.resolvConf, resolvConf());
}

/**
 * `writeEtcFiles` on the thread pool: on a start path, where tens of containers write theirs at
 * once, the synchronous writes held the event loop for milliseconds each.
 */
export async function writeEtcFilesAsync(
  p: { hosts: string; hostname: string; resolvConf: string },
  hostname: string,
  o: EtcFilesOptions = {},
): Promise<void> {
  const writes = [
    fs.promises.writeFile(p.hosts, hostsContent(hostname, o)),
    fs.promises.writeFile(p.hostname, hostname + '\n'),
  ];
  if (!fs.existsSync(p.resolvConf)) writes.push(fs.promises.writeFile(p.resolvConf, resolvConf()));
  await Promise.all(writes);
}

/** The host's resolv.conf without loopback resolvers (unreachable from the container), as Docker filters it. */
function resolvConf(): string {
  let host = '';
  try {
    host = fs.readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    /* none */
  }
  const lines = host.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return lines.join('\n').trim() + '\n';
}
