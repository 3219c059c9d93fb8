import type { NodeNetworkPlan } from './plan.js';
import { emptyZone, type DnsZone } from '../../net/dns-zone.js';

function add(zone: DnsZone, net: string, name: string, ips: string[]): void {
  const names = (zone.names[net] ??= {});
  const key = name.toLowerCase();
  names[key] = [...new Set([...(names[key] ?? []), ...ips])];
}

/**
 * The resolver's records from the node's network plan: endpoints, peers, then services.
 * `gwAddress` gives a local container's address on the gateway bridge (the source of its queries).
 */
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
