import { macFromIp } from '../../net/ipv4.js';
import { SANDBOX_VXLAN, sandboxName } from './names.js';
import type { LocalEndpointPlan, NodeNetworkPlan, OverlayNetworkPlan, PortPlan } from './plan.js';
import type { PublishedPort } from './rules.js';

/** A remote address on an overlay: its MAC and the node that has it. */
export interface Peer {
  mac: string;
  nodeAddr: string;
}

/** What a plan wants of this node, keyed as the reconciler keeps what it programmed. */
export interface DesiredState {
  overlays: Map<string, OverlayNetworkPlan>;
  /** The ingress network when this node has a routing-mesh endpoint on it. */
  ingressNet?: OverlayNetworkPlan;
  /** Sandbox name → its network. */
  sandboxes: Map<string, OverlayNetworkPlan>;
  /** `containerId/networkId` → endpoint. */
  endpoints: Map<string, LocalEndpointPlan>;
  /** Container → its network namespace. */
  containers: Map<string, string>;
  /** Container → its endpoints. */
  byContainer: Map<string, LocalEndpointPlan[]>;
}

export const epKey = (containerId: string, networkId: string) => `${containerId}/${networkId}`;

/** The sandboxes, endpoints and containers a plan asks for; endpoints on networks not in the plan are errors. */
export function desiredState(
  plan: NodeNetworkPlan,
  sandboxPrefix: string,
  errors: { containerId?: string; networkId?: string; message: string }[],
): DesiredState {
  const overlays = new Map(plan.overlays.map((o) => [o.id, o]));
  const ingressNet = plan.ingressEndpoint ? plan.overlays.find((o) => o.ingress) : undefined;
  const sandboxes = new Map<string, OverlayNetworkPlan>();
  const endpoints = new Map<string, LocalEndpointPlan>();
  for (const ep of plan.endpoints) {
    const net = overlays.get(ep.networkId);
    if (!net) {
      errors.push({ containerId: ep.containerId, networkId: ep.networkId, message: 'network not in plan' });
      continue;
    }
    sandboxes.set(sandboxName(sandboxPrefix, net.id), net);
    endpoints.set(epKey(ep.containerId, ep.networkId), ep);
  }
  if (ingressNet) sandboxes.set(sandboxName(sandboxPrefix, ingressNet.id), ingressNet);
  const containers = new Map<string, string>();
  const byContainer = new Map<string, LocalEndpointPlan[]>();
  for (const ep of endpoints.values()) {
    containers.set(ep.containerId, ep.netnsPath);
    push(byContainer, ep.containerId, ep);
  }
  return { overlays, ingressNet, sandboxes, endpoints, containers, byContainer };
}

/** `ip` and `bridge` batch lines that bring a sandbox's remote entries from `have` to `want`. */
export interface PeerChanges {
  ipDel: string[];
  fdbDel: string[];
  /** Deletions of addresses that are gone: run after the rules stop sending anything there. */
  ipDelLate: string[];
  fdbDelLate: string[];
  ipAdd: string[];
  fdbAdd: string[];
}

/** The remote entries a network wants in its sandbox. */
export function wantedPeers(plan: NodeNetworkPlan, networkId: string): Map<string, Peer> {
  const want = new Map<string, Peer>();
  for (const p of plan.peers)
    if (p.networkId === networkId)
      want.set(p.ip, { mac: (p.mac ?? macFromIp(p.ip)).toLowerCase(), nodeAddr: p.nodeAddr });
  return want;
}

/** Diffs a sandbox's peers; deletes from `have` what changes (the caller adds `want` once the adds succeed). */
export function peerChanges(have: Map<string, Peer>, want: Map<string, Peer>): PeerChanges {
  const c: PeerChanges = { ipDel: [], fdbDel: [], ipDelLate: [], fdbDelLate: [], ipAdd: [], fdbAdd: [] };
  for (const [ip, p] of have) {
    const w = want.get(ip);
    if (w && w.mac === p.mac && w.nodeAddr === p.nodeAddr) continue;
    // An address that moved is replaced now; one that is gone waits.
    (w ? c.ipDel : c.ipDelLate).push(`neigh del ${ip} dev ${SANDBOX_VXLAN}`);
    (w ? c.fdbDel : c.fdbDelLate).push(
      `fdb del ${p.mac} dev ${SANDBOX_VXLAN} dst ${p.nodeAddr} self`,
      `fdb del ${p.mac} dev ${SANDBOX_VXLAN} master`,
    );
    have.delete(ip);
  }
  for (const [ip, w] of want) {
    if (have.has(ip)) continue;
    c.ipAdd.push(`neigh replace ${ip} lladdr ${w.mac} dev ${SANDBOX_VXLAN} nud permanent`);
    c.fdbAdd.push(
      `fdb replace ${w.mac} dev ${SANDBOX_VXLAN} dst ${w.nodeAddr} self permanent`,
      `fdb replace ${w.mac} dev ${SANDBOX_VXLAN} master static`,
    );
  }
  return c;
}

/**
 * The node's published ports (host mode straight to local tasks; ingress mode to the ingress
 * sandbox) and the ingress sandbox's balancer entries, when this node has that sandbox.
 */
export function publishedPorts(
  plan: NodeNetworkPlan,
  ingressNet: OverlayNetworkPlan | undefined,
  /** The node's address in the ingress sandbox (its gateway veth). */
  ingressGwIp: string | undefined,
  /** A local container's address on the gateway bridge. */
  gatewayIpOf: (containerId: string) => string | undefined,
): { published: PublishedPort[]; balanced: PublishedPort[] } {
  const published: PublishedPort[] = [];
  const balanced: PublishedPort[] = [];
  for (const s of plan.services) {
    for (const port of dedupePorts(s.ports)) {
      if (port.mode === 'host') {
        const backends = s.tasks.flatMap((t) => {
          const ip = (t.containerId && gatewayIpOf(t.containerId)) || t.bridgeIp;
          return ip ? [{ ip, port: port.target }] : [];
        });
        published.push({ protocol: port.protocol, published: port.published, backends });
      } else if (ingressGwIp && ingressNet) {
        published.push({ protocol: port.protocol, published: port.published, backends: [{ ip: ingressGwIp }] });
        const backends = s.tasks.flatMap((t) =>
          t.addresses[ingressNet.id] ? [{ ip: t.addresses[ingressNet.id], port: port.target }] : [],
        );
        balanced.push({
          protocol: port.protocol,
          published: port.published,
          backends,
          ...(s.masquerade ? { masquerade: true } : {}),
        });
      }
    }
  }
  return { published, balanced };
}

/** Target ports of the routing mesh's UDP ports of the services a local container is a task of. */
export function meshUdpPorts(plan: NodeNetworkPlan, containerId: string): number[] {
  const ports = new Set<number>();
  for (const s of plan.services) {
    if (!s.tasks.some((t) => t.containerId === containerId)) continue;
    for (const p of s.ports) if (p.mode === 'ingress' && p.protocol === 'udp') ports.add(p.target);
  }
  return [...ports].sort((a, b) => a - b);
}

/** Docker publishes a port once per protocol and number; duplicates in a spec would clash in the map. */
function dedupePorts(ports: PortPlan[]): PortPlan[] {
  const seen = new Set<string>();
  return ports.filter((p) => {
    const k = `${p.protocol}/${p.published}/${p.mode}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function push<K, V>(m: Map<K, V[]>, k: K, ...v: V[]): void {
  const list = m.get(k);
  if (list) list.push(...v);
  else m.set(k, [...v]);
}
