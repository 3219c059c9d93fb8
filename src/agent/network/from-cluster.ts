import type { Network, Node, Service, Task, TaskState } from '../../cluster/types.js';
import type {
  LocalEndpointPlan,
  NodeNetworkPlan,
  OverlayNetworkPlan,
  PortPlan,
  RemotePeerPlan,
  ServicePlan,
} from './plan.js';

/**
 * Restores Docker's masquerading routing mesh (tasks then see the ingress node's address):
 * as a service label for one service, or as a driver option of the ingress network for all.
 */
export const MASQUERADE_OPTION = 'shoal.mesh.masquerade';

/** Where Docker keeps an overlay's VNI in the network's driver state. */
export const VXLAN_ID_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

/** What the agent knows from the store, and what only this node knows (its containers). */
export interface ClusterView {
  nodeId: string;
  nodes: Node[];
  networks: Network[];
  services: Service[];
  tasks: Task[];
  /** A local task's container: ID and network namespace (`/proc/<pid>/ns/net`). */
  localContainer(
    task: Task,
  ): { containerId: string; netnsPath: string; bridgeIp?: string; starting?: boolean } | undefined;
  /** nodeId → that node's routing-mesh address on the ingress network (CIDR or plain), as allocated by the manager. */
  ingressEndpoints: Record<string, string>;
}

/** Tasks whose containers exist and carry their network endpoints. */
const ATTACHED: ReadonlySet<TaskState> = new Set(['starting', 'running']);

const plainIp = (cidr: string) => cidr.split('/')[0];

function overlayOf(n: Network): OverlayNetworkPlan | undefined {
  const vni = Number((n.DriverState?.Options?.[VXLAN_ID_OPTION] ?? '').split(',')[0]);
  const ipam = (n.IPAMOptions?.Configs ?? n.Spec.IPAMOptions?.Configs ?? [])[0];
  if (!vni || !ipam?.Subnet) return undefined;
  return {
    id: n.ID,
    name: n.Spec.Name ?? n.ID,
    vni,
    subnet: ipam.Subnet,
    gateway: ipam.Gateway ?? '',
    ingress: !!n.Spec.Ingress,
  };
}

/** The task's name as Docker shows it and resolves it: `<service>.<slot or node>.<task id>`. */
export function taskName(task: Task, service: Service | undefined): string {
  return `${service?.Spec.Name ?? task.ServiceID}.${task.Slot ?? task.NodeID}.${task.ID}`;
}

/** Turns the store's networks, services, tasks and nodes into this node's network plan. */
export function planFromCluster(view: ClusterView): NodeNetworkPlan {
  const self = view.nodes.find((n) => n.ID === view.nodeId);
  const nodeAddr = self?.Status.Addr ?? '';
  const overlays = new Map<string, OverlayNetworkPlan>();
  for (const n of view.networks) {
    const o = overlayOf(n);
    if (o) overlays.set(o.id, o);
  }
  const services = new Map(view.services.map((s) => [s.ID, s]));
  const addrOf = (nodeId: string | undefined) => view.nodes.find((n) => n.ID === nodeId)?.Status.Addr;
  // Draining tasks (desired down, still running) keep their endpoints but get no new connections.
  const live = view.tasks.filter(
    (t) => ATTACHED.has(t.Status.State) && (t.DesiredState === 'running' || t.Status.State === 'running'),
  );

  const endpoints: LocalEndpointPlan[] = [];
  const peers: RemotePeerPlan[] = [];
  const needed = new Set<string>();
  for (const t of live) {
    const name = taskName(t, services.get(t.ServiceID));
    const local = t.NodeID === view.nodeId ? view.localContainer(t) : undefined;
    for (const att of t.NetworksAttachments ?? []) {
      if (!overlays.has(att.Network.ID) || !att.Addresses[0]) continue;
      // Standalone containers' attachments (no service) answer to their container name only.
      const aliases = [
        ...(t.ServiceID ? [name] : []),
        ...((t.Spec.Networks ?? []).find((n) => n.Target === att.Network.ID)?.Aliases ?? []),
      ];
      if (t.NodeID === view.nodeId) {
        if (!local) continue;
        needed.add(att.Network.ID);
        endpoints.push({
          containerId: local.containerId,
          netnsPath: local.netnsPath,
          networkId: att.Network.ID,
          ip: plainIp(att.Addresses[0]),
          aliases,
        });
      } else {
        const remote = addrOf(t.NodeID);
        if (remote) peers.push({ networkId: att.Network.ID, nodeAddr: remote, ip: plainIp(att.Addresses[0]), aliases });
      }
    }
  }
  const ingress = [...overlays.values()].find((o) => o.ingress);
  const ownIngress = view.ingressEndpoints[view.nodeId];
  if (ingress && ownIngress) {
    needed.add(ingress.id);
    for (const [nodeId, ip] of Object.entries(view.ingressEndpoints)) {
      const remote = addrOf(nodeId);
      if (nodeId !== view.nodeId && remote) peers.push({ networkId: ingress.id, nodeAddr: remote, ip: plainIp(ip) });
    }
  }

  const ingressNet = ingress && view.networks.find((n) => n.ID === ingress.id);
  const meshMasquerade = isTrue(ingressNet?.Spec.DriverConfiguration?.Options?.[MASQUERADE_OPTION]);
  const servicePlans = servicePlansOf(view, live, meshMasquerade);

  return {
    nodeAddr,
    overlays: [...overlays.values()].filter((o) => needed.has(o.id)),
    endpoints,
    peers: peers.filter((p) => needed.has(p.networkId)),
    services: servicePlans,
    ingressEndpoint: ingress && ownIngress ? { ip: plainIp(ownIngress) } : undefined,
    ...(ingress && ownIngress
      ? { ingressNodes: Object.values(view.ingressEndpoints).map((ip) => ({ ip: plainIp(ip) })) }
      : {}),
  };
}

/** Per service: its VIPs, the tasks that serve it (with their addresses) and its published ports. */
function servicePlansOf(view: ClusterView, live: Task[], meshMasquerade: boolean): ServicePlan[] {
  // A local container between create and start has its endpoints but no process listening yet: not a backend.
  const serving = (t: Task) =>
    t.Status.State === 'running' &&
    t.DesiredState === 'running' &&
    !(t.NodeID === view.nodeId && view.localContainer(t)?.starting);
  return view.services.map((s) => ({
    id: s.ID,
    name: s.Spec.Name ?? s.ID,
    endpointMode: s.Endpoint?.Spec.Mode ?? s.Spec.EndpointSpec?.Mode ?? 'vip',
    // A node-local network's entry has no address: nothing to balance there.
    vips: Object.fromEntries(
      (s.Endpoint?.VirtualIPs ?? []).filter((v) => v.Addr).map((v) => [v.NetworkID, plainIp(v.Addr)]),
    ),
    tasks: live
      .filter((t) => t.ServiceID === s.ID && serving(t))
      .map((t) => ({
        containerId: t.NodeID === view.nodeId ? view.localContainer(t)?.containerId : undefined,
        ...(t.NodeID === view.nodeId && view.localContainer(t)?.bridgeIp
          ? { bridgeIp: view.localContainer(t)!.bridgeIp }
          : {}),
        addresses: Object.fromEntries(
          (t.NetworksAttachments ?? [])
            .filter((a) => a.Addresses[0])
            .map((a) => [a.Network.ID, plainIp(a.Addresses[0])]),
        ),
      })),
    ports: (s.Endpoint?.Ports ?? [])
      .filter((p): p is typeof p & { PublishedPort: number } => !!p.PublishedPort && p.Protocol !== 'sctp')
      .map((p): PortPlan => ({
        target: p.TargetPort,
        published: p.PublishedPort,
        protocol: p.Protocol === 'udp' ? 'udp' : 'tcp',
        mode: p.PublishMode ?? 'ingress',
      })),
    ...(meshMasquerade || isTrue(s.Spec.Labels?.[MASQUERADE_OPTION]) ? { masquerade: true } : {}),
  }));
}

const isTrue = (v: string | undefined) => v !== undefined && ['true', '1', 'yes'].includes(v.toLowerCase());
