import type { NodeNetworkPlan } from './plan.js';

/**
 * What the node's resolver knows, scoped by network: a container sees only names on the
 * networks it is attached to, as with Docker's embedded DNS.
 */
export interface DnsZone {
  /** Source address of a query (a container's address on the gateway bridge) → its networks. */
  askers: Record<string, string[]>;
  /** networkId → lower-case name → addresses. */
  names: Record<string, Record<string, string[]>>;
}

export const emptyZone = (): DnsZone => ({ askers: {}, names: {} });

function add(zone: DnsZone, net: string, name: string, ips: string[]): void {
  const names = (zone.names[net] ??= {});
  const key = name.toLowerCase();
  names[key] = [...new Set([...(names[key] ?? []), ...ips])];
}

/** `gwAddress` gives a local container's address on the gateway bridge (the source of its queries). */
export function buildZone(plan: NodeNetworkPlan, gwAddress: (containerId: string) => string | undefined): DnsZone {
  const zone = emptyZone();
  // The routing mesh's network has no service discovery (libnetwork adds no records on ingress):
  // its addresses must never answer a name, and a task asks through its other networks only.
  const ingress = new Set(plan.overlays.filter((o) => o.ingress).map((o) => o.id));
  for (const ep of plan.endpoints.filter((e) => !ingress.has(e.networkId))) {
    const gw = gwAddress(ep.containerId);
    if (gw) zone.askers[gw] = [...new Set([...(zone.askers[gw] ?? []), ep.networkId])];
    for (const alias of ep.aliases) add(zone, ep.networkId, alias, [ep.ip]);
  }
  for (const peer of plan.peers.filter((p) => !ingress.has(p.networkId))) {
    for (const alias of peer.aliases ?? []) add(zone, peer.networkId, alias, [peer.ip]);
  }
  // Service names win over container aliases, as in Docker.
  for (const s of plan.services) {
    const nets = new Set([...Object.keys(s.vips), ...s.tasks.flatMap((t) => Object.keys(t.addresses))]);
    for (const net of [...nets].filter((n) => !ingress.has(n))) {
      const taskIps = s.tasks.map((t) => t.addresses[net]).filter((ip): ip is string => !!ip);
      const names = (zone.names[net] ??= {});
      names[`tasks.${s.name.toLowerCase()}`] = taskIps;
      if (s.endpointMode === 'vip' && s.vips[net]) names[s.name.toLowerCase()] = [s.vips[net]];
      else if (s.endpointMode === 'dnsrr') names[s.name.toLowerCase()] = taskIps;
    }
  }
  return zone;
}

/** Addresses for `name` as seen from `asker`; undefined when the name is not ours (forward it). */
export function lookup(zone: DnsZone, asker: string, name: string): string[] | undefined {
  const key = name.toLowerCase().replace(/\.$/, '');
  let found: string[] | undefined;
  for (const net of zone.askers[asker] ?? []) {
    const ips = zone.names[net]?.[key];
    if (ips) found = [...new Set([...(found ?? []), ...ips])];
  }
  return found;
}

/** Networks of the zone on which `name` exists, whoever asks. */
export function networksWithName(zone: DnsZone, name: string): string[] {
  const key = name.toLowerCase().replace(/\.$/, '');
  return Object.keys(zone.names).filter((net) => zone.names[net][key] !== undefined);
}
