/** IPv4 address arithmetic: the pure part of IPAM, shared by the bridge and the lab. */

export interface Subnet {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefixLen: number;
}

export function parseIp(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`invalid IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new Error(`invalid IPv4 address: ${ip}`);
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses `a.b.c.d/len`; the address is masked down to the network address. */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m || Number(m[2]) > 32) throw new Error(`invalid subnet: ${cidr} (want a.b.c.d/len)`);
  const prefixLen = Number(m[2]);
  return { base: (parseIp(m[1]) & maskOf(prefixLen)) >>> 0, prefixLen };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIp(s.base)}/${s.prefixLen}`;
}

function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** Number of addresses in the subnet, network and broadcast included. */
export function subnetSize(s: Subnet): number {
  return 2 ** (32 - s.prefixLen);
}

/** The address `index` places into the subnet (index 1 = first host). */
export function hostAt(s: Subnet, index: number): string {
  if (index < 0 || index >= subnetSize(s)) throw new Error(`index ${index} outside ${formatSubnet(s)}`);
  return formatIp(s.base + index);
}

export function indexOf(s: Subnet, ip: string): number {
  const n = parseIp(ip);
  const i = n - s.base;
  if (i < 0 || i >= subnetSize(s)) throw new Error(`${ip} is not in ${formatSubnet(s)}`);
  return i;
}

export function contains(s: Subnet, ip: string): boolean {
  const i = parseIp(ip) - s.base;
  return i >= 0 && i < subnetSize(s);
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const aEnd = a.base + subnetSize(a);
  const bEnd = b.base + subnetSize(b);
  return a.base < bEnd && b.base < aEnd;
}

/** Docker's MAC for an address: 02:42 followed by the four address bytes (172.17.0.2 → 02:42:ac:11:00:02). */
export function macFromIp(ip: string): string {
  const n = parseIp(ip);
  const bytes = [0x02, 0x42, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
