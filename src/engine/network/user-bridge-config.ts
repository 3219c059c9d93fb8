import { badRequest, forbidden, notFound } from '../../util/errors.js';
import { contains, overlaps, parseSubnet } from '../../net/ipv4.js';
import { AddressPool6 } from './ipam6.js';
import { canonicalIp6, contains6, formatIp6, isSubnet6, overlaps6, parseSubnet6 } from './ipv6.js';
import { chooseLocalSubnet, firstHost, validIp, validSubnet } from './local-pools.js';
import type { IPv6Config, UserNetwork } from './user-network.js';

/** One IPAM config of `POST /networks/create` (swagger IPAMConfig). */
export interface IpamConfigRequest {
  Subnet?: string;
  Gateway?: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string> | null;
}

/**
 * The IPv4 side of a new bridge network, checked as dockerd does: the user's subnet (not
 * overlapping `inUse`) or a free default pool, the range inside it, gateway and aux addresses in it.
 */
export async function ipv4Config(
  cfg: IpamConfigRequest,
  inUse: string[],
  hostRoutes: () => Promise<string[]>,
): Promise<{ subnet: string; gateway: string; aux: Record<string, string> }> {
  let subnet: string;
  if (cfg.Subnet) {
    if (!validSubnet(cfg.Subnet)) throw badRequest(`invalid CIDR address: ${cfg.Subnet}`);
    subnet = cfg.Subnet;
    const s = parseSubnet(subnet);
    if (inUse.some((u) => overlaps(parseSubnet(u), s)))
      throw forbidden('Pool overlaps with other one on this address space');
  } else {
    if (cfg.Gateway) throw badRequest('no matching subnet for gateway ' + cfg.Gateway);
    // As dockerd: a pool the host already routes (an uplink, a lab network) is skipped too.
    const routes = (await hostRoutes())
      .filter((d) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(d))
      .map((d) => (d.includes('/') ? d : `${d}/32`));
    const chosen = chooseLocalSubnet([...inUse, ...routes.filter((r) => !r.startsWith('127.'))]);
    if (!chosen)
      throw badRequest(
        'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
      );
    subnet = chosen;
  }
  if (cfg.IPRange) {
    if (!cfg.Subnet || !validSubnet(cfg.IPRange)) throw badRequest(`no matching subnet for range ${cfg.IPRange}`);
    const r = parseSubnet(cfg.IPRange);
    const s = parseSubnet(subnet);
    if (r.prefixLen < s.prefixLen || !contains(s, cfg.IPRange.split('/')[0]))
      throw badRequest(`no matching subnet for range ${cfg.IPRange}`);
  }
  const gateway = cfg.Gateway ?? firstHost(subnet);
  if (!validIp(gateway) || !contains(parseSubnet(subnet), gateway))
    throw forbidden(`no matching subnet for gateway ${gateway}`);
  const aux = { ...(cfg.AuxiliaryAddresses ?? {}) };
  for (const a of Object.values(aux)) {
    if (!validIp(a) || !contains(parseSubnet(subnet), a)) throw forbidden(`no matching subnet for aux-address ${a}`);
  }
  return { subnet, gateway, aux };
}

/**
 * The IPv6 side of a new network from its IPv6 IPAM config, checked as libnetwork does;
 * `--ipv6` without a subnet has no default pool to take one from (dockerd 20.10's 404).
 */
export function ipv6Config(
  cfg: IpamConfigRequest | undefined,
  enabled: boolean,
  existing: UserNetwork[],
): IPv6Config | undefined {
  if (!cfg?.Subnet) {
    if (enabled)
      throw notFound(
        'could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network',
      );
    return undefined;
  }
  if (!isSubnet6(cfg.Subnet)) throw badRequest(`Invalid subnet ${cfg.Subnet} : invalid CIDR address: ${cfg.Subnet}`);
  const s = parseSubnet6(cfg.Subnet);
  if (existing.some((o) => o.v6 && overlaps6(parseSubnet6(o.v6.subnet), s)))
    throw forbidden('Pool overlaps with other one on this address space');
  if (cfg.IPRange) {
    const r = isSubnet6(cfg.IPRange) ? parseSubnet6(cfg.IPRange) : undefined;
    if (!r || r.prefixLen < s.prefixLen || !contains6(s, formatIp6(r.base)))
      throw badRequest(`no matching subnet for range ${cfg.IPRange}`);
  }
  // libnetwork's gateway: the first address of the range (of the subnet without one).
  const gateway = cfg.Gateway ?? formatIp6((cfg.IPRange ? parseSubnet6(cfg.IPRange).base : s.base) + 1n);
  if (!contains6(s, gateway)) throw forbidden(`no matching subnet for gateway ${gateway}`);
  const aux = cfg.AuxiliaryAddresses ?? {};
  for (const a of Object.values(aux)) if (!contains6(s, a)) throw forbidden(`no matching subnet for aux-address ${a}`);
  return {
    subnet: cfg.Subnet,
    gateway: canonicalIp6(gateway),
    requested: {
      ...(cfg.Gateway ? { Gateway: cfg.Gateway } : {}),
      ...(cfg.IPRange ? { IPRange: cfg.IPRange } : {}),
      ...(Object.keys(aux).length ? { AuxiliaryAddresses: { ...aux } } : {}),
    },
    pool: AddressPool6.empty(cfg.Subnet, [gateway, ...Object.values(aux)], cfg.IPRange).toJSON(),
  };
}
