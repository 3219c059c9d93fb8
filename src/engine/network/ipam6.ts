import { AddressInUseError, PoolExhaustedError } from './ipam.js';
import { canonicalIp6, contains6, formatIp6, parseIp6, parseSubnet6, size6, type Subnet6 } from './ipv6.js';

/** What an IPv6 address pool remembers (saved with its network). Addresses in canonical text. */
export interface Pool6State {
  subnet: string;
  /** Dynamic addresses only from here (`--ip-range`); claims may use the whole subnet. */
  range?: string;
  /** Never handed out: the gateway, aux addresses. */
  reserved: string[];
  /** owner (a container ID) → address */
  allocated: Record<string, string>;
  /** Offset in the range of the last address handed out (decimal text: a bigint). */
  last: string;
}

/** How far one allocation looks for a free address; a bridge never has nearly as many endpoints. */
const MAX_PROBES = 1 << 16;

/**
 * Allocation of IPv6 addresses of one subnet: in order from the start of the range (the
 * network address itself excluded, as libnetwork's IPAM does), going round after the last one.
 */
export class AddressPool6 {
  private readonly subnet: Subnet6;
  private readonly range: Subnet6;
  private readonly state: Pool6State;

  constructor(state: Pool6State) {
    this.subnet = parseSubnet6(state.subnet);
    this.range = state.range ? parseSubnet6(state.range) : this.subnet;
    this.state = { ...state, reserved: [...state.reserved], allocated: { ...state.allocated } };
  }

  static empty(subnet: string, reserved: string[], range?: string): AddressPool6 {
    return new AddressPool6({
      subnet,
      reserved: reserved.map(canonicalIp6),
      allocated: {},
      last: '0',
      ...(range ? { range } : {}),
    });
  }

  allocate(owner: string): string {
    const had = this.state.allocated[owner];
    if (had) return had;
    const taken = new Set([...this.state.reserved, ...Object.values(this.state.allocated)]);
    const span = size6(this.range);
    let offset = BigInt(this.state.last);
    for (let probe = 0; probe < MAX_PROBES && BigInt(probe) < span; probe++) {
      offset = (offset + 1n) % span;
      const n = this.range.base + offset;
      if (n === this.subnet.base) continue;
      const ip = formatIp6(n);
      if (taken.has(ip)) continue;
      this.state.allocated[owner] = ip;
      this.state.last = offset.toString();
      return ip;
    }
    throw new PoolExhaustedError(`no free address left in ${this.state.range ?? this.state.subnet}`);
  }

  /** Exactly `ip` for the owner (`--ip6`); throws when outside the subnet or taken. */
  claim(owner: string, ip: string): string {
    if (!contains6(this.subnet, ip)) throw new Error(`${ip} is not in ${this.state.subnet}`);
    const want = canonicalIp6(ip);
    if (this.state.allocated[owner] === want) return want;
    const others = Object.entries(this.state.allocated)
      .filter(([o]) => o !== owner)
      .map(([, a]) => a);
    if ([...this.state.reserved, ...others].includes(want) || parseIp6(want) === this.subnet.base)
      throw new AddressInUseError('Address already in use');
    this.state.allocated[owner] = want;
    return want;
  }

  release(owner: string): boolean {
    if (!(owner in this.state.allocated)) return false;
    delete this.state.allocated[owner];
    return true;
  }

  toJSON(): Pool6State {
    return { ...this.state, reserved: [...this.state.reserved], allocated: { ...this.state.allocated } };
  }
}
