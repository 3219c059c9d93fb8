import fs from 'node:fs';
import { ApiError, badRequest } from '../../util/errors.js';
import { nftApply, SELF } from '../network/ip.js';
import { DEFAULT_BRIDGE, NFT_TABLE } from '../network/names.js';
import { SerialQueue } from '../../util/serial-queue.js';

/** `HostConfig.PortBindings` as the API sends it: `{"8000/tcp": [{"HostIp": "", "HostPort": "8080"}]}`. */
export type PortBindings = Record<string, { HostIp?: string; HostPort?: string }[] | null>;

/** One published port of a running container, resolved (random host ports chosen). */
export interface PublishedPort {
  containerPort: number;
  proto: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
}

const CHAINS = { pre: 'ports_prerouting', out: 'ports_output', post: 'ports_postrouting' } as const;
/** Docker's ephemeral range for `-p 8000` and `-P`. */
const RANDOM_FROM = 32768;
const RANDOM_TO = 60999;

function parseKey(key: string): { port: number; proto: 'tcp' | 'udp' } {
  const [p, proto = 'tcp'] = key.split('/');
  const port = Number(p);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || (proto !== 'tcp' && proto !== 'udp'))
    throw badRequest(`invalid port specification: "${key}"`);
  return { port, proto };
}

/** Checks the bindings' syntax at create time. */
export function validatePortBindings(b: unknown): void {
  if (b === undefined || b === null) return;
  if (typeof b !== 'object' || Array.isArray(b)) throw badRequest('invalid port bindings');
  for (const [key, list] of Object.entries(b as PortBindings)) {
    parseKey(key);
    for (const h of list ?? []) {
      if (h.HostPort && !/^\d+$/.test(h.HostPort)) throw badRequest(`invalid port specification: "${h.HostPort}"`);
      if (h.HostIp && !/^\d+\.\d+\.\d+\.\d+$/.test(h.HostIp)) throw badRequest(`invalid IP address: ${h.HostIp}`);
    }
  }
}

/**
 * Published ports of containers on the default bridge: DNAT from the daemon's addresses to the
 * container's, as Docker's iptables rules do (without docker-proxy). One nftables transaction
 * rewrites the chains from the full set, so they always match the running containers.
 */
export class PortPublisher {
  private readonly byContainer = new Map<string, { ip: string; ports: PublishedPort[] }>();
  private readonly queue = new SerialQueue();
  /** The bridges containers publish from: the default one, and user-defined ones when there are. */
  bridges: () => { device: string; subnet: string }[] = () => [
    { device: DEFAULT_BRIDGE.device, subnet: DEFAULT_BRIDGE.subnet },
  ];

  /** Picks host ports (random ones for empty HostPort) and refuses ones already taken. */
  resolve(
    containerId: string,
    bindings: PortBindings | undefined,
    exposed: string[],
    publishAll: boolean,
  ): PublishedPort[] {
    const want: { key: string; hostIp: string; hostPort: string }[] = [];
    for (const [key, list] of Object.entries(bindings ?? {}))
      for (const h of list ?? [{}]) want.push({ key, hostIp: h.HostIp || '0.0.0.0', hostPort: h.HostPort ?? '' });
    if (publishAll)
      for (const key of exposed)
        if (!want.some((w) => w.key === key)) want.push({ key, hostIp: '0.0.0.0', hostPort: '' });
    const taken = new Set<string>();
    for (const [id, c] of this.byContainer)
      if (id !== containerId) for (const p of c.ports) taken.add(`${p.proto}/${p.hostPort}`);
    const out: PublishedPort[] = [];
    for (const w of want) {
      const { port, proto } = parseKey(w.key);
      let hostPort = Number(w.hostPort);
      if (!w.hostPort) {
        hostPort = RANDOM_FROM;
        while (taken.has(`${proto}/${hostPort}`) && hostPort <= RANDOM_TO) hostPort++;
        if (hostPort > RANDOM_TO) throw new ApiError(500, 'no free host port left for publishing');
      } else if (taken.has(`${proto}/${hostPort}`)) {
        throw new ApiError(
          500,
          `driver failed programming external connectivity on endpoint: Bind for ${w.hostIp}:${hostPort} failed: port is already allocated`,
        );
      }
      taken.add(`${proto}/${hostPort}`);
      out.push({ containerPort: port, proto, hostIp: w.hostIp, hostPort });
    }
    return out;
  }

  /** Publishes `ports` of a container at `ip` (replacing what it had). */
  publish(containerId: string, ip: string, ports: PublishedPort[]): Promise<void> {
    if (ports.length === 0 && !this.byContainer.has(containerId)) return Promise.resolve();
    this.byContainer.set(containerId, { ip, ports });
    return this.apply();
  }

  /** Remembers an adopted container's ports without writing (one `apply` follows). */
  restore(containerId: string, ip: string, ports: PublishedPort[]): void {
    if (ports.length) this.byContainer.set(containerId, { ip, ports });
  }

  unpublish(containerId: string): Promise<void> {
    if (!this.byContainer.delete(containerId)) return Promise.resolve();
    return this.apply();
  }

  published(containerId: string): PublishedPort[] {
    return this.byContainer.get(containerId)?.ports ?? [];
  }

  /** Rewrites the chains; also called once at open so a restarted daemon owns what is there. */
  apply(): Promise<void> {
    return this.queue.run(() => this.write());
  }

  private async write(): Promise<void> {
    const t = `${NFT_TABLE.family} ${NFT_TABLE.name}`;
    const lines = [
      `add table ${t}`,
      `add chain ${t} ${CHAINS.pre} { type nat hook prerouting priority dstnat; policy accept; }`,
      `add chain ${t} ${CHAINS.out} { type nat hook output priority -100; policy accept; }`,
      `add chain ${t} ${CHAINS.post} { type nat hook postrouting priority srcnat; policy accept; }`,
      `flush chain ${t} ${CHAINS.pre}`,
      `flush chain ${t} ${CHAINS.out}`,
      `flush chain ${t} ${CHAINS.post}`,
    ];
    for (const { ip, ports } of this.byContainer.values()) {
      for (const p of ports) {
        const dst = p.hostIp === '0.0.0.0' ? 'fib daddr type local' : `ip daddr ${p.hostIp}`;
        const rule = `${dst} ${p.proto} dport ${p.hostPort} dnat to ${ip}:${p.containerPort}`;
        lines.push(`add rule ${t} ${CHAINS.pre} ${rule}`, `add rule ${t} ${CHAINS.out} ${rule}`);
      }
    }
    // Replies must come back through us: from loopback (route_localnet) and hairpin from the bridge itself.
    const bridges = this.bridges();
    for (const b of bridges) {
      lines.push(`add rule ${t} ${CHAINS.post} ct status dnat ip saddr 127.0.0.0/8 oifname "${b.device}" masquerade`);
      lines.push(`add rule ${t} ${CHAINS.post} ct status dnat ip saddr ${b.subnet} oifname "${b.device}" masquerade`);
    }
    lines.push('');
    await nftApply(SELF, lines.join('\n'));
    for (const b of bridges) {
      try {
        fs.writeFileSync(`/proc/sys/net/ipv4/conf/${b.device}/route_localnet`, '1\n');
      } catch {
        /* bridge not there (tests of pure logic) */
      }
    }
  }
}
