import type { Network } from '../../cluster/types.js';
import { formatSubnet, hostAt, indexOf, overlaps, parseSubnet, subnetSize, type Subnet } from '../../net/ipv4.js';

/**
 * Cluster-wide address management for swarm networks: subnets carved from the cluster's
 * default address pool (10.0.0.0/8 in /24s unless `swarm init --default-addr-pool`), and
 * addresses within one network's subnet for VIPs and task attachments. Every pass rebuilds
 * the used sets from the store, so two objects never hold the same subnet or address.
 */
export class SubnetPool {
  private readonly taken: Subnet[] = [];

  constructor(
    private readonly pools: string[],
    private readonly size: number,
    networks: Network[],
  ) {
    for (const n of networks)
      for (const c of n.IPAMOptions?.Configs ?? n.Spec.IPAMOptions?.Configs ?? []) if (c.Subnet) this.take(c.Subnet);
  }

  take(cidr: string): void {
    try {
      this.taken.push(parseSubnet(cidr));
    } catch {
      /* not IPv4: ignore */
    }
  }

  next(): string {
    for (const pool of this.pools) {
      const p = parseSubnet(pool);
      const step = 2 ** (32 - this.size);
      for (let base = p.base; base + step <= p.base + subnetSize(p); base += step) {
        const s: Subnet = { base, prefixLen: this.size };
        if (this.taken.some((t) => overlaps(t, s))) continue;
        this.taken.push(s);
        return formatSubnet(s);
      }
    }
    throw new Error(
      'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
    );
  }
}

/** Addresses of one network: the gateway is the first host, the rest are handed out lowest first. */
export class AddressPool {
  private readonly subnet: Subnet;
  private readonly used = new Set<number>();

  constructor(
    readonly cidr: string,
    gateway?: string,
  ) {
    this.subnet = parseSubnet(cidr);
    this.used.add(0);
    this.used.add(subnetSize(this.subnet) - 1);
    this.used.add(gateway ? indexOf(this.subnet, gateway) : 1);
  }

  /** Marks an address (CIDR or bare) as used; addresses outside the subnet are ignored. */
  mark(addr: string): void {
    try {
      this.used.add(indexOf(this.subnet, addr.split('/')[0]));
    } catch {
      /* outside this subnet */
    }
  }

  has(addr: string): boolean {
    try {
      return this.used.has(indexOf(this.subnet, addr.split('/')[0]));
    } catch {
      return false;
    }
  }

  /** Every address taken (marked ones included). */
  get full(): boolean {
    return this.used.size >= subnetSize(this.subnet);
  }

  /** The next free address in CIDR form (`10.0.1.5/24`). */
  allocate(): string {
    const n = subnetSize(this.subnet);
    for (let i = 1; i < n - 1; i++) {
      if (this.used.has(i)) continue;
      this.used.add(i);
      return `${hostAt(this.subnet, i)}/${this.subnet.prefixLen}`;
    }
    throw new Error(`no available IPv4 addresses on network ${this.cidr}`);
  }
}

/** The gateway Docker gives a swarm network: the subnet's first host. */
export function defaultGateway(cidr: string): string {
  return hostAt(parseSubnet(cidr), 1);
}
