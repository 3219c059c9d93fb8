import { DEFAULT_BRIDGE, NFT_TABLE } from './names.js';
import { EMBEDDED_DNS, type UserNetwork } from './user-network.js';

const NAT_CHAIN = 'user_bridge_masquerade';
/** Docker's DOCKER-ISOLATION: no traffic between two bridges, none out of an internal one. */
const ISOLATION_CHAIN = 'user_bridge_isolation';
/** nft table in a container's netns sending 127.0.0.11:53 to the resolver on a gateway. */
const NFT_DNS_TABLE = 'shoal_dns';

/** Masquerading and isolation for all user bridges: one nft script, applied whole in one transaction. */
export function userBridgeRules(nets: UserNetwork[]): string {
  const t = `${NFT_TABLE.family} ${NFT_TABLE.name}`;
  const lines = [
    `add table ${t}`,
    `add chain ${t} ${NAT_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} ${ISOLATION_CHAIN} { type filter hook forward priority filter; policy accept; }`,
    `flush chain ${t} ${NAT_CHAIN}`,
    `flush chain ${t} ${ISOLATION_CHAIN}`,
  ];
  const devices = [DEFAULT_BRIDGE.device, ...nets.map((n) => n.device)];
  for (const n of nets) {
    const dev = `"${n.device}"`;
    if (n.internal) {
      lines.push(`add rule ${t} ${ISOLATION_CHAIN} iifname ${dev} oifname != ${dev} drop`);
      lines.push(`add rule ${t} ${ISOLATION_CHAIN} oifname ${dev} iifname != ${dev} drop`);
      continue;
    }
    lines.push(`add rule ${t} ${NAT_CHAIN} ip saddr ${n.subnet} oifname != ${dev} masquerade`);
    const others = devices.filter((d) => d !== n.device).map((d) => `"${d}"`);
    lines.push(`add rule ${t} ${ISOLATION_CHAIN} iifname ${dev} oifname { ${others.join(', ')} } drop`);
    lines.push(`add rule ${t} ${ISOLATION_CHAIN} oifname ${dev} iifname { ${others.join(', ')} } drop`);
  }
  lines.push('');
  return lines.join('\n');
}

/**
 * The nft script, for a container's netns, that makes 127.0.0.11:53 reach the resolver on
 * `gateway` (as dockerd's per-container DNAT does): DNAT in output, then the loopback source
 * masqueraded to the container's address there, so the resolver knows who asks.
 */
export function resolverRedirectRules(gateway: string): string {
  const t = `ip ${NFT_DNS_TABLE}`;
  return [
    `add table ${t}`,
    `add chain ${t} output { type nat hook output priority -100; policy accept; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `flush chain ${t} output`,
    `flush chain ${t} postrouting`,
    `add rule ${t} output ip daddr ${EMBEDDED_DNS} udp dport 53 dnat to ${gateway}:53`,
    `add rule ${t} output ip daddr ${EMBEDDED_DNS} tcp dport 53 dnat to ${gateway}:53`,
    `add rule ${t} postrouting ip saddr 127.0.0.0/8 oifname != "lo" masquerade`,
    '',
  ].join('\n');
}
