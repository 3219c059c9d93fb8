import { formatSubnet, hostAt, indexOf, parseSubnet, subnetSize, type Subnet } from '../../net/ipv4.js';

/** What an address pool remembers; saved as JSON so a restarted daemon never hands an address out twice. */
export interface PoolState {
  subnet: string;
  /** Addresses never handed out (the gateway). */
  reserved: string[];
  /** owner (a container ID, a machine name) → address */
  allocated: Record<string, string>;
  /** Index of the last address handed out: allocation goes round the pool rather than reusing a just-freed address at once. */
  last: number;
  /** Dynamic addresses only from this part of the subnet (`--ip-range`); claims may use all of it. */
  range?: string;
}

export class PoolExhaustedError extends Error {}
export class AddressInUseError extends Error {}

/** Allocation of the host addresses of one IPv4 subnet (network and broadcast addresses excluded). */
export class AddressPool {
  private readonly subnet: Subnet;
  private readonly state: PoolState;

  constructor(state: PoolState) {
    this.subnet = parseSubnet(state.subnet);
    this.state = {
      ...state,
      subnet: formatSubnet(this.subnet),
      reserved: [...state.reserved],
      allocated: { ...state.allocated },
    };
  }

  static empty(subnet: string, reserved: string[] = [], range?: string): AddressPool {
    return new AddressPool({ subnet, reserved, allocated: {}, last: 0, ...(range ? { range } : {}) });
  }

  /** The owner's address: the one it has, else the next free one after the last handed out. */
  allocate(owner: string): string {
    const had = this.state.allocated[owner];
    if (had) return had;
    const size = subnetSize(this.subnet);
    // /31 and /32 have no network/broadcast address to skip (RFC 3021); a bridge never uses them but the math stays right.
    let first = size <= 2 ? 0 : 1;
    let lastHost = size <= 2 ? size - 1 : size - 2;
    if (this.state.range) {
      const r = parseSubnet(this.state.range);
      first = Math.max(first, r.base - this.subnet.base);
      lastHost = Math.min(lastHost, r.base - this.subnet.base + subnetSize(r) - 1);
    }
    const taken = new Set(
      [...this.state.reserved, ...Object.values(this.state.allocated)].map((ip) => indexOf(this.subnet, ip)),
    );
    const span = lastHost - first + 1;
    // `last` may lie outside a range (a claim): the walk then starts at the range's beginning.
    const from = this.state.last >= first && this.state.last <= lastHost ? this.state.last : first - 1;
    for (let step = 1; step <= span; step++) {
      const i = first + ((((from - first + step) % span) + span) % span);
      if (taken.has(i)) continue;
      const ip = hostAt(this.subnet, i);
      this.state.allocated[owner] = ip;
      this.state.last = i;
      return ip;
    }
    throw new PoolExhaustedError(`no free address left in ${this.state.subnet}`);
  }

  /** Gives the owner exactly `ip` (a user's `--ip`); throws when it is outside the subnet or taken. */
  claim(owner: string, ip: string): string {
    if (this.state.allocated[owner] === ip) return ip;
    indexOf(this.subnet, ip);
    const taken = [
      ...this.state.reserved,
      ...Object.entries(this.state.allocated)
        .filter(([o]) => o !== owner)
        .map(([, a]) => a),
    ];
    if (taken.includes(ip)) throw new AddressInUseError('Address already in use');
    this.state.allocated[owner] = ip;
    return ip;
  }

  /** Frees the owner's address; false when it had none. */
  release(owner: string): boolean {
    if (!(owner in this.state.allocated)) return false;
    delete this.state.allocated[owner];
    return true;
  }

  addressOf(owner: string): string | undefined {
    return this.state.allocated[owner];
  }

  owners(): string[] {
    return Object.keys(this.state.allocated);
  }

  toJSON(): PoolState {
    return { ...this.state, reserved: [...this.state.reserved], allocated: { ...this.state.allocated } };
  }
}
