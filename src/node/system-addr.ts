import net from 'node:net';
import { badRequest } from '../util/errors.js';
import { ipJson, SELF } from '../engine/network/ip.js';
import { DEFAULT_BRIDGE } from '../engine/network/names.js';

/**
 * The address `swarm init` advertises when given no --advertise-addr, chosen as dockerd does on
 * Linux: the one global-unicast address of the up "device" links (links with no kind: physical
 * NICs); when there are none (a container or namespace, whose eth0 is a veth), the one address
 * of any up, non-loopback link outside the subnets the daemon manages itself (its bridge).
 * More than one candidate is an error that names two of them.
 */
export interface SystemLink {
  name: string;
  /** The rtnetlink kind ('veth', 'bridge'…); undefined for a plain device. */
  kind?: string;
  up: boolean;
  loopback: boolean;
  addrs: string[];
}

interface IpAddrJson {
  ifname: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { local?: string }[];
}

export async function listSystemLinks(): Promise<SystemLink[]> {
  const links = await ipJson<IpAddrJson>(SELF, ['-details', 'addr', 'show']);
  return links.map((l) => ({
    name: l.ifname,
    kind: l.linkinfo?.info_kind,
    up: (l.flags ?? []).includes('UP'),
    loopback: (l.flags ?? []).includes('LOOPBACK'),
    addrs: (l.addr_info ?? []).map((a) => a.local ?? '').filter((a) => a !== ''),
  }));
}

/** Go's net.IP.IsGlobalUnicast: not unspecified, loopback, link-local, multicast or broadcast. */
export function isGlobalUnicast(ip: string): boolean {
  if (net.isIPv4(ip)) {
    const [a, b] = ip.split('.').map(Number);
    return !(a === 0 || a === 127 || (a === 169 && b === 254) || a >= 224);
  }
  if (net.isIPv6(ip)) {
    const l = ip.toLowerCase();
    return !(l === '::' || l === '::1' || /^fe[89ab]/.test(l) || l.startsWith('ff'));
  }
  return false;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function inSubnet(ip: string, cidr: string): boolean {
  if (!net.isIPv4(ip)) return false;
  const [base, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return Math.floor(ipv4ToInt(ip) / size) === Math.floor(ipv4ToInt(base) / size);
}

const SUFFIX = ' - specify one with --advertise-addr';

function multipleIPs(ifA: string, ifB: string, a: string, b: string): Error {
  return badRequest(
    (ifA === ifB
      ? `could not choose an IP address to advertise since this system has multiple addresses on interface ${ifA} (${a} and ${b})`
      : `could not choose an IP address to advertise since this system has multiple addresses on different interfaces (${a} on ${ifA} and ${b} on ${ifB})`) +
      SUFFIX,
  );
}

/** Picks among `links` (IPv4 preferred per link); `managedSubnets` are the daemon's own. */
export function chooseSystemAddr(
  links: SystemLink[],
  managedSubnets: readonly string[] = [DEFAULT_BRIDGE.subnet],
): string {
  const pick = (candidates: SystemLink[], skipManaged: boolean): { addr?: string; found: boolean } => {
    let chosen: { addr: string; name: string } | undefined;
    let found = false;
    for (const l of candidates) {
      let v4: string | undefined;
      let v6: string | undefined;
      const usable = l.addrs.filter(isGlobalUnicast);
      if (skipManaged && usable.some((a) => managedSubnets.some((s) => inSubnet(a, s)))) continue;
      for (const a of usable) {
        found = true;
        if (net.isIPv4(a)) {
          if (v4) throw multipleIPs(l.name, l.name, v4, a);
          v4 = a;
        } else {
          if (v6) throw multipleIPs(l.name, l.name, v6, a);
          v6 = a;
        }
      }
      const mine = v4 ?? v6;
      if (!mine) continue;
      if (chosen) throw multipleIPs(chosen.name, l.name, chosen.addr, mine);
      chosen = { addr: mine, name: l.name };
    }
    return { addr: chosen?.addr, found };
  };
  const devices = pick(
    links.filter((l) => l.up && l.kind === undefined),
    false,
  );
  if (devices.addr) return devices.addr;
  if (!devices.found) {
    const any = pick(
      links.filter((l) => l.up && !l.loopback),
      true,
    );
    if (any.addr) return any.addr;
  }
  throw badRequest("could not find the system's IP address" + SUFFIX);
}
