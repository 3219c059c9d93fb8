import net from 'node:net';
import { serverError } from '../../util/errors.js';

/**
 * The driver options (`docker network create --opt`) of a local bridge network, checked as
 * dockerd 20.10's bridge driver parses them (libnetwork drivers/bridge fromLabels, then
 * Validate): the options it knows must parse, any other option (`encrypted`, `foo=bar`) is kept
 * and ignored. dockerd answers these errors with 500 (measured against Debian's dockerd).
 */
const INT_OPTIONS = new Set(['com.docker.network.driver.mtu']);
const BOOL_OPTIONS = new Set([
  'com.docker.network.enable_ipv6',
  'com.docker.network.bridge.enable_ip_masquerade',
  'com.docker.network.bridge.enable_icc',
  'com.docker.network.bridge.inhibit_ipv4',
  'com.docker.network.bridge.default_bridge',
]);
const IP_OPTIONS = new Set(['com.docker.network.bridge.host_binding_ipv4']);

const GO_BOOLS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.Atoi on a 64-bit machine: the error text, or the number. */
function goAtoi(value: string): { error: string } | { n: number } {
  if (!/^[+-]?\d+$/.test(value)) return { error: `strconv.Atoi: parsing ${JSON.stringify(value)}: invalid syntax` };
  const big = BigInt(value);
  if (big > INT64_MAX || big < -INT64_MAX - 1n)
    return { error: `strconv.Atoi: parsing ${JSON.stringify(value)}: value out of range` };
  return { n: Number(big) };
}

const parseErr = (label: string, value: string, why: string) =>
  serverError(`failed to parse ${label} value: ${value} (${why})`);

/** Throws dockerd's error for the first option that does not parse; a negative MTU after that. */
export function checkBridgeOptions(options: Record<string, string>): void {
  let mtu = 0;
  for (const [label, value] of Object.entries(options)) {
    if (INT_OPTIONS.has(label)) {
      const r = goAtoi(value);
      if ('error' in r) throw parseErr(label, value, r.error);
      mtu = r.n;
    } else if (BOOL_OPTIONS.has(label) && !GO_BOOLS.has(value)) {
      throw parseErr(label, value, `strconv.ParseBool: parsing ${JSON.stringify(value)}: invalid syntax`);
    } else if (IP_OPTIONS.has(label) && (net.isIP(value) === 0 || value.includes('%'))) {
      // Go's net.ParseIP: v4 or v6, no zone.
      throw parseErr(label, value, 'nil ip');
    }
  }
  if (mtu < 0) throw serverError(`invalid MTU number: ${mtu}`);
}
