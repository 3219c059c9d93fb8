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
