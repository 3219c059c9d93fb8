import type { Network, NetworkSpec, Service, Task } from '../../cluster/types.js';
import { badRequest, conflict, forbidden, notFound, rpcError } from '../../util/errors.js';
import { newSwarmId } from '../../util/ids.js';
import { contains, overlaps, parseSubnet } from '../../net/ipv4.js';
import type { Store } from '../store/store.js';
import { checkRequestedVnis } from '../allocator/vxlan-ids.js';
import { isNodeLocal, NODE_LOCAL_DRIVERS } from '../../cluster/network-drivers.js';

/**
 * Swarm-scoped networks as the Engine API creates, lists and removes them on a manager (moby
 * daemon/cluster/networks.go over swarmkit controlapi/network.go). The allocator gives them
 * their subnet and VNI; agents build their data path from them.
 */

export const INGRESS_NAME = 'ingress';
const PREDEFINED = new Set(['bridge', 'host', 'none', 'default']);

/** The `ingress` overlay every new swarm gets (swarmkit manager.go newIngressNetwork): IPAM left to the allocator. */
export function ingressNetwork(): Network {
  const now = new Date().toISOString();
  return {
    ID: newSwarmId(),
    Version: { Index: 0 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: {
      Name: INGRESS_NAME,
      Labels: { 'com.docker.swarm.internal': 'true' },
      DriverConfiguration: { Name: 'overlay' },
      Ingress: true,
      IPAMOptions: { Driver: { Name: 'default' } },
      Scope: 'swarm',
    },
  };
}

/** The Engine API's network create body (types.NetworkCreateRequest). */
export interface NetworkCreateRequest {
  Name?: string;
  Driver?: string;
  Scope?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv6?: boolean;
  IPAM?: {
    Driver?: string;
    Config?: { Subnet?: string; IPRange?: string; Gateway?: string }[] | null;
    Options?: Record<string, string> | null;
  } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

const subnetsOf = (n: Network) =>
  (n.IPAMOptions?.Configs ?? n.Spec.IPAMOptions?.Configs ?? []).map((c) => c.Subnet).filter(Boolean);

/** Checks the request and makes the network object; nothing is written. */
export function newSwarmNetwork(req: NetworkCreateRequest, existing: Network[], defaultPools: string[]): Network {
  const name = req.Name ?? '';
  if (!name) throw badRequest('network name must not be empty');
  if (PREDEFINED.has(name)) throw forbidden(`${name} is a pre-defined network and cannot be created`);
  if (existing.some((n) => n.Spec.Name === name)) throw conflict(`network with name ${name} already exists`);
  const driver = req.Driver || 'overlay';
  if (driver !== 'overlay' && !NODE_LOCAL_DRIVERS.has(driver))
    throw rpcError('InvalidArgument', `network driver ${driver} is not supported for swarm networks`);
  if (req.Ingress && driver !== 'overlay')
    throw rpcError('Unimplemented', 'only overlay driver is currently supported for ingress network');
  if (req.Ingress && existing.some((n) => n.Spec.Ingress)) {
    const i = existing.find((n) => n.Spec.Ingress)!;
    // dockerd answers this one as Forbidden (daemon/cluster/networks.go wraps it).
    throw rpcError('AlreadyExists', `ingress network (${i.ID}) is already present`, 403);
  }
  const configs = (req.IPAM?.Config ?? []).filter((c) => c.Subnet);
  // A node-local network's addresses are each node's own (swarmkit allocates nothing for it).
  for (const c of driver === 'overlay' ? configs : []) {
    let s;
    try {
      s = parseSubnet(c.Subnet!);
    } catch {
      throw rpcError('InvalidArgument', `invalid subnet ${c.Subnet}`);
    }
    if (c.Gateway && !contains(s, c.Gateway))
      throw rpcError('InvalidArgument', `invalid gateway ${c.Gateway}: not in subnet ${c.Subnet}`);
    // A node-local network's subnet, if it was given one, is each node's own: no swarm pool.
    for (const n of existing.filter((x) => !isNodeLocal(x))) {
      for (const other of subnetsOf(n)) {
        if (overlaps(parseSubnet(other), s))
          throw rpcError('InvalidArgument', 'invalid pool request: Pool overlaps with other one on this address space');
      }
    }
  }
  if (!configs.length && !defaultPools.length) throw rpcError('InvalidArgument', 'no default address pool');
  if (driver === 'overlay') {
    try {
      checkRequestedVnis(
        req.Options ?? undefined,
        configs.map((c) => c.Subnet!),
        existing,
      );
    } catch (e) {
      throw rpcError('InvalidArgument', (e as Error).message);
    }
  }
  const now = new Date().toISOString();
  const spec: NetworkSpec = {
    Name: name,
    Labels: req.Labels ?? {},
    DriverConfiguration: { Name: driver, Options: req.Options ?? {} },
    IPv6Enabled: !!req.EnableIPv6,
    Internal: !!req.Internal,
    Attachable: !!req.Attachable,
    Ingress: !!req.Ingress,
    IPAMOptions: {
      Driver: { Name: req.IPAM?.Driver || 'default' },
      Configs: configs.map((c) => ({
        Subnet: c.Subnet!,
        ...(c.Gateway ? { Gateway: c.Gateway } : {}),
        ...(c.IPRange ? { IPRange: c.IPRange } : {}),
      })),
    },
    Scope: 'swarm',
  };
  return { ID: newSwarmId(), Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now, Spec: spec };
}

function uses(s: Service, id: string): boolean {
  const nets = [...(s.Spec.TaskTemplate?.Networks ?? []), ...(s.Spec.Networks ?? [])];
  return nets.some((n) => n.Target === id) || (s.Endpoint?.VirtualIPs ?? []).some((v) => v.NetworkID === id);
}

const LIVE = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/** swarmkit controlapi removeNetwork: refused while a service or a live task references it. */
export async function removeSwarmNetwork(store: Store, n: Network): Promise<void> {
  const services = store.list('services');
  if (n.Spec.Ingress) {
    const s = services.find((x) =>
      (x.Spec.EndpointSpec?.Ports ?? []).some((p) => (p.PublishMode ?? 'ingress') === 'ingress'),
    );
    if (s) throw forbidden(`ingress network cannot be removed because service ${s.ID} depends on it`);
  }
  const s = services.find((x) => uses(x, n.ID));
  if (s) throw rpcError('FailedPrecondition', `network ${n.ID} is in use by service ${s.ID}`);
  // Tasks of a deleted service are on their way out: swarmkit's orchestrator marks them REMOVE at once, ours a
  // moment later, and `docker stack rm` removes the stack's network right after its services.
  const serviceIds = new Set(services.map((x) => x.ID));
  const orphan = (x: Task) => x.ServiceID !== '' && !serviceIds.has(x.ServiceID);
  const t = store.list('tasks').find(
    (x: Task) =>
      !orphan(x) &&
      LIVE.has(x.DesiredState) &&
      LIVE.has(x.Status.State) &&
      ((x.NetworksAttachments ?? []).some((a) => a.Network.ID === n.ID) ||
        // An attachment still waiting for its address names its network in its spec only.
        (x.Status.State === 'new' && (x.Spec.Networks ?? []).some((w) => w.Target === n.ID))),
  );
  if (t) throw rpcError('FailedPrecondition', `network ${n.ID} is in use by task ${t.ID}`);
  await store.commit([{ kind: 'networks', op: 'delete', id: n.ID }]);
}

/** Finds a swarm network by ID, name or unique ID prefix; undefined when none matches. */
export function findSwarmNetwork(all: Network[], ref: string): Network | undefined {
  const exact = all.find((n) => n.ID === ref) ?? all.find((n) => n.Spec.Name === ref);
  if (exact) return exact;
  const byPrefix = all.filter((n) => n.ID.startsWith(ref));
  if (byPrefix.length > 1)
    throw badRequest(`network ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
  return byPrefix[0];
}

export function requireSwarmNetwork(all: Network[], ref: string): Network {
  const n = findSwarmNetwork(all, ref);
  if (!n) throw notFound(`network ${ref} not found`);
  return n;
}
