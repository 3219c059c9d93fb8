/** IPv6 address arithmetic (128-bit numbers as bigint), for bridges with `--ipv6`. */
import net from 'node:net';

export interface Subnet6 {
  /** Network address. */
  base: bigint;
  prefixLen: number;
}

const MAX = (1n << 128n) - 1n;

export function isIpv6(ip: string): boolean {
  return net.isIPv6(ip) && !ip.includes('%');
}

/** `fd00::1` → 128-bit number; throws on anything but a plain IPv6 address. */
export function parseIp6(ip: string): bigint {
  if (!isIpv6(ip)) throw new Error(`invalid IPv6 address: ${ip}`);
  let text = ip.toLowerCase();
  // A dotted IPv4 tail (`::ffff:1.2.3.4`) is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text, as Go's net.IP.String prints it: lowercase, the longest run (2+) of zero groups as `::`. */
export function formatIp6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an IPv6 address (`2001:0389::F00D` → `2001:389::f00d`). */
export function canonicalIp6(ip: string): string {
  return formatIp6(parseIp6(ip));
}

function mask(prefixLen: number): bigint {
  return prefixLen === 0 ? 0n : (MAX << BigInt(128 - prefixLen)) & MAX;
}

/** `fd00::/64`; the address is masked down to the network address. */
export function parseSubnet6(cidr: string): Subnet6 {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!m || Number(m[2]) > 128) throw new Error(`invalid IPv6 subnet: ${cidr}`);
  const prefixLen = Number(m[2]);
  return { base: parseIp6(m[1]) & mask(prefixLen), prefixLen };
}

export function formatSubnet6(s: Subnet6): string {
  return `${formatIp6(s.base)}/${s.prefixLen}`;
}

export function isSubnet6(cidr: string): boolean {
  try {
    parseSubnet6(cidr);
    return true;
  } catch {
    return false;
  }
}

export function size6(s: Subnet6): bigint {
  return 1n << BigInt(128 - s.prefixLen);
}

export function contains6(s: Subnet6, ip: string): boolean {
  if (!isIpv6(ip)) return false;
  const i = parseIp6(ip) - s.base;
  return i >= 0n && i < size6(s);
}

export function overlaps6(a: Subnet6, b: Subnet6): boolean {
  return a.base < b.base + size6(b) && b.base < a.base + size6(a);
}
