/**
 * What the node-level network data path must look like on one node, declared whole: the agent
 * derives it from the store (networks, tasks, services, nodes) and hands it to `applyPlan`.
 * Nothing here is allocated on the node except the addresses on the per-node gateway bridge.
 */

/** One overlay network that at least one local endpoint (or the routing mesh) needs on this node. */
export interface OverlayNetworkPlan {
  /** The network's ID in the store (64 hex); names the sandbox namespace. */
  id: string;
  name: string;
  /** VXLAN network identifier from the manager's allocator (Docker starts at 4096). */
  vni: number;
  /** `a.b.c.d/len` */
  subnet: string;
  gateway: string;
  /** The swarm's `ingress` network: the routing mesh's load balancer lives in its sandbox. */
  ingress?: boolean;
  /** Encrypted networks (network/encryption.ts): a smaller MTU, and VXLAN from this node's tunnel address. */
  mtu?: number;
  vxlanLocal?: string;
}

/** A container's attachment to an overlay network on this node. */
export interface LocalEndpointPlan {
  containerId: string;
  /** The container's network namespace: `/proc/<pid>/ns/net` or a bind mount such as `/run/netns/x`. */
  netnsPath: string;
  networkId: string;
  ip: string;
  /** Defaults to Docker's 02:42 + address bytes. */
  mac?: string;
  /** Names the container answers to on this network (its name, `--network-alias`, the task name). */
  aliases: string[];
  /** Interface name inside the container; defaults to the first free `ethN`. */
  ifname?: string;
}

/** An address on an overlay network that lives on another node: programmed as FDB + neighbour entries. */
export interface RemotePeerPlan {
  networkId: string;
  /** The other node's underlay address (where its VXLAN socket listens). */
  nodeAddr: string;
  ip: string;
  mac?: string;
  /** Container names and aliases there, for the resolver. */
  aliases?: string[];
}

export type PublishMode = 'ingress' | 'host';
export type Protocol = 'tcp' | 'udp';

export interface PortPlan {
  target: number;
  published: number;
  protocol: Protocol;
  mode: PublishMode;
}

/** One running task of a service: its address on each network the service is attached to. */
export interface ServiceTaskPlan {
  /** Set when the task's container runs on this node (host-mode ports reach it through the gateway bridge). */
  containerId?: string;
  /** A local task off the swarm networks (on the engine's default bridge): its address there, for host-mode ports. */
  bridgeIp?: string;
  /** networkId → address of the task there. */
  addresses: Record<string, string>;
}

export interface ServicePlan {
  id: string;
  name: string;
  endpointMode: 'vip' | 'dnsrr';
  /** networkId → the service's virtual IP there (vip mode). */
  vips: Record<string, string>;
  /** Running tasks only: anything listed receives traffic. */
  tasks: ServiceTaskPlan[];
  ports: PortPlan[];
  /**
   * Docker's routing mesh: tasks see the ingress node's address instead of the client's
   * (service label or ingress network option `shoal.mesh.masquerade=true`). Off by default.
   */
  masquerade?: boolean;
}

/**
 * The routing mesh's endpoint of this node on the `ingress` network (Docker's `ingress-sbox`):
 * allocated by the manager like a task address, so replies from tasks on other nodes find it.
 */
export interface IngressEndpointPlan {
  ip: string;
  mac?: string;
}

export interface NodeNetworkPlan {
  /** This node's underlay address: VXLAN source, routing-mesh destination. */
  nodeAddr: string;
  overlays: OverlayNetworkPlan[];
  endpoints: LocalEndpointPlan[];
  peers: RemotePeerPlan[];
  services: ServicePlan[];
  /** Present when the swarm has an ingress network: every node then answers on ingress ports. */
  ingressEndpoint?: IngressEndpointPlan;
  /**
   * Every node's routing-mesh endpoint, this node's included: a local task answers a connection
   * that came from one of them back through it (the client's address is kept, so only the
   * ingress node can undo its translation).
   */
  ingressNodes?: IngressEndpointPlan[];
}

/** An empty plan: applying it removes everything the reconciler owns. */
export function emptyPlan(nodeAddr: string): NodeNetworkPlan {
  return { nodeAddr, overlays: [], endpoints: [], peers: [], services: [] };
}
