import type { Network } from '../../cluster/types.js';

/**
 * VXLAN network identifiers of overlay networks, as libnetwork's overlay manager (ovmanager)
 * hands them out for swarmkit: one VNI per subnet; the driver option `vxlanid_list` (a
 * comma-separated list, the i-th for the i-th subnet) asks for given ones, anything else comes
 * from 4096 up. A given VNI may be any of 1..2^24-1 (the ID set starts at 0; only the automatic
 * ones start at 4096), and no two networks hold the same one.
 */

export const VNI_START = 4096;
export const VNI_END = 16777215;
export const VXLAN_ID_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

/** libnetwork's words when a VNI cannot be had (idm / bitseq). */
export const VNI_OUT_OF_RANGE = 'Requested id does not belong to the set';
export const VNI_TAKEN = 'requested bit is already allocated';

/**
 * The VNIs a network's spec asks for, in subnet order (0: any). Every entry must parse as Go's
 * strconv.Atoi does, or the whole list is refused with the driver's message.
 */
export function requestedVnis(options: Record<string, string> | undefined): number[] {
  const raw = options?.[VXLAN_ID_OPTION];
  if (raw === undefined) return [];
  return raw.split(',').map((s) => {
    if (!/^[+-]?\d+$/.test(s) || !Number.isSafeInteger(Number(s)))
      throw new Error(`invalid vxlan id value ${JSON.stringify(s)} passed`);
    return Number(s);
  });
}

/** The VNIs a network holds once allocated (its driver state). */
export function heldVnis(n: Network): number[] {
  return (n.DriverState?.Options?.[VXLAN_ID_OPTION] ?? '')
    .split(',')
    .filter(Boolean)
    .map(Number)
    .filter((v) => v > 0);
}

/** The VNIs a network has or is about to have: held ones, else those its spec asks for (ignoring bad lists). */
function claimedVnis(n: Network): number[] {
  const held = heldVnis(n);
  if (held.length) return held;
  try {
    return requestedVnis(n.Spec.DriverConfiguration?.Options).filter((v) => v > 0);
  } catch {
    return [];
  }
}

/** Why `vni` cannot be given to a network (libnetwork's words), or undefined when it can. */
function problem(vni: number, inUse: (v: number) => boolean): string | undefined {
  if (vni < 0 || vni > VNI_END) return VNI_OUT_OF_RANGE;
  if (inUse(vni)) return VNI_TAKEN;
  return undefined;
}

/** One allocation pass's view of VNIs: held ones, and those that networks still waiting ask for. */
export class VniPool {
  /** Held by allocated networks, or given out in this pass. */
  private readonly held = new Set<number>();
  /** Asked for by networks not allocated yet: automatic ones keep off them. */
  private readonly reserved = new Set<number>();
  private next = VNI_START;

  constructor(networks: Network[] = []) {
    for (const n of networks) {
      const held = heldVnis(n);
      for (const v of held.length ? held : claimedVnis(n)) (held.length ? this.held : this.reserved).add(v);
    }
  }

  /** The lowest free VNI from 4096 up. */
  allocate(): number {
    while ((this.held.has(this.next) || this.reserved.has(this.next)) && this.next <= VNI_END) this.next++;
    if (this.next > VNI_END) throw new Error('no free VXLAN ID');
    this.held.add(this.next);
    return this.next;
  }

  /** Takes a given VNI; libnetwork's reason when it cannot be had. */
  claim(vni: number): string | undefined {
    const why = problem(vni, (v) => this.held.has(v));
    if (!why) this.held.add(vni);
    return why;
  }

  release(vni: number): void {
    this.held.delete(vni);
  }
}

/**
 * The VNIs for a network's subnets: the requested ones, the rest automatic; extra entries of the
 * list are ignored, as by ovmanager. All or none: throws libnetwork's message (wrapped as
 * ovmanager does) when a requested one is out of range or held.
 */
export function allocateVnis(n: Network, subnets: string[], pool: VniPool): number[] {
  const wanted = requestedVnis(n.Spec.DriverConfiguration?.Options);
  const got: number[] = [];
  try {
    subnets.forEach((subnet, i) => {
      const v = wanted[i] ?? 0;
      if (v === 0) return got.push(pool.allocate());
      const why = pool.claim(v);
      if (why) throw new Error(`could not obtain vxlan id for pool ${subnet}: ${why}`);
      got.push(v);
    });
  } catch (e) {
    for (const v of got) pool.release(v);
    throw e;
  }
  return got;
}

/**
 * The create-time check of a new network's requested VNIs against the networks stored (swarmkit
 * only finds out in its allocator and leaves such a network unusable; refusing it at create
 * stores nothing). `subnets` as given, or one automatic subnet when none is.
 */
export function checkRequestedVnis(
  options: Record<string, string> | undefined,
  subnets: string[],
  existing: Network[],
): void {
  const wanted = requestedVnis(options);
  const inUse = new Set(existing.flatMap(claimedVnis));
  const count = Math.max(subnets.length, 1);
  for (let i = 0; i < count && i < wanted.length; i++) {
    const v = wanted[i];
    if (v === 0) continue;
    const why = problem(v, (x) => inUse.has(x) || wanted.slice(0, i).includes(x));
    if (why) throw new Error(`could not obtain vxlan id ${v}${subnets[i] ? ` for pool ${subnets[i]}` : ''}: ${why}`);
  }
}
