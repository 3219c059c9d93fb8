import { emptyZone, type DnsZone } from '../../net/dns-zone.js';
import type { UserNetwork } from './user-network.js';

/**
 * What the bridges' embedded resolvers answer: each container sees names on every user bridge it
 * is attached to (name, aliases, short ID), and its own `--link` aliases.
 */
export function userBridgeZone(
  nets: UserNetwork[],
  containerName: (containerId: string) => string | undefined,
): DnsZone {
  const zone = emptyZone();
  const networksOf = (containerId: string) => nets.filter((n) => n.endpoints[containerId]).map((n) => n.id);
  for (const n of nets) {
    const names = (zone.names[n.id] ??= {});
    for (const ep of Object.values(n.endpoints)) {
      zone.askers[ep.ip] = networksOf(ep.containerId);
      const name = containerName(ep.containerId);
      for (const key of [name, ...ep.aliases, ep.containerId.slice(0, 12)]) {
        if (!key) continue;
        // Also qualified by the network (`web.mynet`), as libnetwork's resolver takes them.
        for (const k of [key.toLowerCase(), `${key}.${n.name}`.toLowerCase()])
          names[k] = [...new Set([...(names[k] ?? []), ep.ip])];
      }
    }
  }
  // Links: a scope of the linking container's own, holding its aliases of the linked ones.
  for (const n of nets) {
    for (const ep of Object.values(n.endpoints)) {
      if (!ep.links?.length) continue;
      const scope = `link/${n.id}/${ep.containerId}`;
      const names = (zone.names[scope] ??= {});
      for (const link of ep.links) {
        const [target, alias = target] = link.split(':');
        const linked = Object.values(n.endpoints).find(
          (o) => containerName(o.containerId) === target.replace(/^\//, '') || o.containerId.startsWith(target),
        );
        if (linked) names[alias.replace(/^\//, '').toLowerCase()] = [linked.ip];
      }
      zone.askers[ep.ip] = [...(zone.askers[ep.ip] ?? []), scope];
    }
  }
  return zone;
}
