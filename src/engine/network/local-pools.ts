import { formatSubnet, overlaps, parseIp, parseSubnet } from '../../net/ipv4.js';

/**
 * Docker's default address pools for local (bridge) networks, in the order it hands them out
 * (libnetwork ipamutils): 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 … 192.168.240.0/20.
 */
export function defaultLocalPools(): string[] {
  const out: string[] = [];
  for (let b = 17; b <= 31; b++) out.push(`172.${b}.0.0/16`);
  for (let c = 0; c < 256; c += 16) out.push(`192.168.${c}.0/20`);
  return out;
}

/** The first default pool overlapping none of the subnets in use; undefined when all are taken. */
export function chooseLocalSubnet(inUse: string[]): string | undefined {
  const used = inUse.map(parseSubnet);
  return defaultLocalPools().find((p) => !used.some((u) => overlaps(parseSubnet(p), u)));
}

/** The first host address of a subnet: the bridge's gateway unless the user gives one. */
export function firstHost(subnet: string): string {
  const s = parseSubnet(subnet);
  return formatSubnet({ base: s.base + 1, prefixLen: 32 }).replace(/\/32$/, '');
}

/** Whether `cidr` is a well-formed IPv4 subnet (`a.b.c.d/len`). */
export function validSubnet(cidr: string): boolean {
  try {
    parseSubnet(cidr);
    return true;
  } catch {
    return false;
  }
}

export function validIp(ip: string): boolean {
  try {
    parseIp(ip);
    return true;
  } catch {
    return false;
  }
}
