import type { Protocol, ServicePlan } from './plan.js';
import { parseIp } from '../../net/ipv4.js';
import {
  GW_BRIDGE,
  NFT_CONTAINER_TABLE,
  NFT_INGRESS_TABLE,
  NFT_NODE_TABLE,
  INGRESS_GW_IFNAME,
  SANDBOX_BRIDGE,
} from './names.js';

/**
 * nftables scripts, rendered whole: each replaces its table in one transaction (`add` then
 * `delete` then the new table), so a change never leaves a half-programmed table and existing
 * connections keep their conntrack NAT state across it.
 */

export interface Backend {
  ip: string;
  port?: number;
}

/** `numgen inc` round robin, as kube-proxy's nftables mode does it. */
function roundRobin(backends: Backend[]): string {
  if (backends.length === 1)
    return `dnat ip to ${backends[0].ip}${backends[0].port !== undefined ? `:${backends[0].port}` : ''}`;
  const withPort = backends.some((b) => b.port !== undefined);
  const entries = backends.map((b, i) => `${i} : ${b.ip}${withPort ? ` . ${b.port}` : ''}`).join(', ');
  return `dnat ip to numgen inc mod ${backends.length} map { ${entries} }`;
}

function replaceTable(name: string, body: string[]): string {
  return [`add table ip ${name}`, `delete table ip ${name}`, `table ip ${name} {`, ...body, '}', ''].join('\n');
}

export interface VipTarget {
  vip: string;
  backends: string[];
}

/** The VIPs a container can reach: the service VIPs on each network it is attached to. */
export function containerVipTargets(services: ServicePlan[], networkIds: Set<string>): VipTarget[] {
  const out: VipTarget[] = [];
  for (const s of services) {
    if (s.endpointMode !== 'vip') continue;
    for (const [net, vip] of Object.entries(s.vips)) {
      if (!networkIds.has(net)) continue;
      const backends = s.tasks.map((t) => t.addresses[net]).filter((ip): ip is string => !!ip);
      out.push({ vip, backends });
    }
  }
  return out.sort((a, b) => a.vip.localeCompare(b.vip));
}

/**
 * How a task answers a routing-mesh connection through the node it came in at: the connection
 * is marked with that node (known by its ingress endpoint's MAC, the frame's source), and the
 * mark routes the replies (policy routing, one table per mark) back to its ingress endpoint.
 */
export interface IngressReply {
  /** The container's interface on the ingress network. */
  ifname: string;
  nodes: { mac: string; mark: number }[];
}

/** Connection mark and routing table of replies towards one ingress endpoint (its address's low 16 bits). */
export function ingressReplyMark(ip: string): number {
  return (INGRESS_MARK_BASE | (parseIp(ip) & 0xffff)) >>> 0;
}

const INGRESS_MARK_BASE = 0x53480000;
/** Marks the ingress sandbox gives connections of services that want Docker's masquerade. */
const MASQUERADE_MARK = 0x1;

/**
 * Inside a container: connections to a VIP go to one of the tasks (all ports, as Docker's
 * fwmark-based IPVS service does); whatever still heads for a VIP afterwards has no backend.
 * With `reply`, routing-mesh connections are marked by ingress node (see IngressReply).
 */
export function containerScript(targets: VipTarget[], reply?: IngressReply): string {
  const nat = targets
    .filter((t) => t.backends.length)
    .map((t) => `    ip daddr ${t.vip} meta l4proto { tcp, udp } ${roundRobin(t.backends.map((ip) => ({ ip })))}`);
  const vips = targets.map((t) => t.vip);
  return replaceTable(NFT_CONTAINER_TABLE, [
    '  chain vip_dnat {',
    '    type nat hook output priority -100; policy accept;',
    ...nat,
    '  }',
    '  chain vip_unreachable {',
    '    type filter hook output priority 0; policy accept;',
    ...(vips.length
      ? [
          `    ip daddr { ${vips.join(', ')} } meta l4proto tcp reject with tcp reset`,
          `    ip daddr { ${vips.join(', ')} } reject`,
        ]
      : []),
    '  }',
    ...(reply?.nodes.length
      ? [
          '  chain mesh_mark {',
          '    type filter hook prerouting priority mangle; policy accept;',
          `    iifname "${reply.ifname}" ct state new ct mark set ether saddr map { ${reply.nodes.map((n) => `${n.mac} : 0x${n.mark.toString(16)}`).join(', ')} }`,
          '  }',
          // A route chain re-routes a local packet whose mark changed: the reply takes the mark's table.
          '  chain mesh_reply {',
          '    type route hook output priority mangle; policy accept;',
          '    ct mark != 0 meta mark set ct mark',
          '  }',
        ]
      : []),
  ]);
}

export interface PublishedPort {
  protocol: Protocol;
  published: number;
  /** ingress: to the ingress sandbox; host: to local tasks over the gateway bridge. */
  backends: Backend[];
  /** Ingress sandbox only: hide the client behind the ingress address (Docker's behaviour). */
  masquerade?: boolean;
}

/**
 * The node namespace: egress masquerade for the gateway bridge, no container-to-container
 * traffic across it (Docker's icc=false there), and published ports answering on every local address.
 */
export function nodeScript(ports: PublishedPort[]): string {
  const mesh = ports
    .filter((p) => p.backends.length)
    .map((p) => `    fib daddr type local ${p.protocol} dport ${p.published} ${roundRobin(p.backends)}`);
  return replaceTable(NFT_NODE_TABLE, [
    '  chain egress {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${GW_BRIDGE.subnet} oifname != "${GW_BRIDGE.device}" masquerade`,
    // Hairpin: a container reaching a published port of its own node comes back over the same bridge.
    `    ip saddr ${GW_BRIDGE.subnet} oifname "${GW_BRIDGE.device}" ct status dnat masquerade`,
    '  }',
    '  chain published {',
    ...mesh,
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    jump published',
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    jump published',
    '  }',
    '  chain isolate {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname "${GW_BRIDGE.device}" oifname "${GW_BRIDGE.device}" ct status dnat accept`,
    `    iifname "${GW_BRIDGE.device}" oifname "${GW_BRIDGE.device}" drop`,
    '  }',
  ]);
}

/**
 * The ingress sandbox (Docker's ingress-sbox): connections arriving from the node over the
 * gateway bridge go round robin to task addresses on the ingress overlay, on any node, with
 * the client's own address as source: the task routes its replies back to this sandbox by
 * connection mark (containerScript), and this sandbox undoes its translation. A port that
 * wants Docker's masquerade gets this sandbox's ingress address as source instead.
 */
export function ingressScript(ports: PublishedPort[]): string {
  const lb = ports
    .filter((p) => p.backends.length)
    .map(
      (p) =>
        `    iifname "${INGRESS_GW_IFNAME}" ${p.protocol} dport ${p.published} ${p.masquerade ? `meta mark set 0x${MASQUERADE_MARK.toString(16)} ` : ''}${roundRobin(p.backends)}`,
    );
  return replaceTable(NFT_INGRESS_TABLE, [
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...lb,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${SANDBOX_BRIDGE}" meta mark 0x${MASQUERADE_MARK.toString(16)} ct status dnat masquerade`,
    '  }',
  ]);
}

export function deleteTableScript(name: string): string {
  return `add table ip ${name}\ndelete table ip ${name}\n`;
}
