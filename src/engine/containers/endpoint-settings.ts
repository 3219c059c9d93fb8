import { badRequest } from '../../util/errors.js';
import type { EndpointSettings } from './record.js';

/** A network's entry in `NetworkingConfig.EndpointsConfig`, or a connect's `EndpointConfig` (swagger EndpointSettings). */
export interface EndpointConfigRequest {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] | null } | null;
  Aliases?: string[] | null;
  Links?: string[] | null;
  DriverOpts?: Record<string, string> | null;
  MacAddress?: string;
}

const MAC = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/;

/** What is kept of a client's endpoint config: only what was given; undefined when nothing was. */
export function endpointSettingsFrom(ec: EndpointConfigRequest | null | undefined): EndpointSettings | undefined {
  if (!ec) return undefined;
  if (ec.MacAddress && !MAC.test(ec.MacAddress)) throw badRequest(`invalid MAC address: ${ec.MacAddress}`);
  const s: EndpointSettings = {
    ...(ec.IPAMConfig?.IPv4Address ? { IPv4Address: ec.IPAMConfig.IPv4Address } : {}),
    ...(ec.IPAMConfig?.IPv6Address ? { IPv6Address: ec.IPAMConfig.IPv6Address } : {}),
    ...(ec.Aliases?.length ? { Aliases: [...ec.Aliases] } : {}),
    ...(ec.Links?.length ? { Links: [...ec.Links] } : {}),
    ...(ec.IPAMConfig?.LinkLocalIPs?.length ? { LinkLocalIPs: [...ec.IPAMConfig.LinkLocalIPs] } : {}),
    ...(ec.DriverOpts && Object.keys(ec.DriverOpts).length ? { DriverOpts: { ...ec.DriverOpts } } : {}),
    ...(ec.MacAddress ? { MacAddress: ec.MacAddress.toLowerCase().replace(/-/g, ':') } : {}),
  };
  return Object.keys(s).length ? s : undefined;
}

/**
 * Inspect's view of what was asked for, laid over an endpoint entry (dockerd keeps the request's
 * EndpointSettings and fills in the addresses): Links, DriverOpts, IPAMConfig with link-local
 * addresses, and the MAC asked for until the endpoint has one.
 */
export function withRequestedSettings<
  T extends { IPAMConfig: unknown; Links: unknown; DriverOpts: unknown; MacAddress: string },
>(entry: T, s: EndpointSettings | undefined): T {
  if (!s) return entry;
  const out = { ...entry };
  if (s.Links) out.Links = [...s.Links];
  if (s.DriverOpts) out.DriverOpts = { ...s.DriverOpts };
  if (s.LinkLocalIPs)
    out.IPAMConfig = { ...((entry.IPAMConfig as object | null) ?? {}), LinkLocalIPs: [...s.LinkLocalIPs] };
  if (s.MacAddress && !entry.MacAddress) out.MacAddress = s.MacAddress;
  return out;
}
