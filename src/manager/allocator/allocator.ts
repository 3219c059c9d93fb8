import type { Cluster, Network, NetworkAttachment, Node, Service, Task, VirtualIP } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store, StoreEvent } from '../store/store.js';
import { StoreLoop } from '../loop.js';
import { status } from '../../cluster/task-state.js';
import { isNetworkAttachment } from '../../cluster/attachment-task.js';
import { isNodeLocal } from '../../cluster/network-drivers.js';
import { AddressPool, defaultGateway, SubnetPool } from './ipam.js';
import { isIngress, PortAllocator } from './ports.js';
import { allocateVnis, VniPool, VXLAN_ID_OPTION } from './vxlan-ids.js';

export { VNI_START, VNI_END, VXLAN_ID_OPTION } from './vxlan-ids.js';

const DEFAULT_POOL = ['10.0.0.0/8'];
const DEFAULT_SUBNET_SIZE = 24;

export interface AllocationResult {
  networks: Network[];
  nodes: Node[];
  services: Service[];
  tasks: Task[];
  /** Networks left unallocated this pass, and why (swarmkit's "Failed allocation for network"). */
  failedNetworks: { id: string; error: string }[];
}

/** The networks a service's tasks join: its own (by ID or name), plus ingress when it publishes ingress ports. */
export function serviceNetworks(service: Service, networks: Network[]): Network[] {
  const wanted = service.Spec.TaskTemplate.Networks ?? service.Spec.Networks ?? [];
  const out: Network[] = [];
  for (const w of wanted) {
    const n = networks.find((x) => x.ID === w.Target) ?? networks.find((x) => x.Spec.Name === w.Target);
    if (n && !out.includes(n)) out.push(n);
  }
  const ingress = networks.find((n) => n.Spec.Ingress);
  if (ingress && !out.includes(ingress) && (service.Spec.EndpointSpec?.Ports ?? []).some(isIngress)) out.push(ingress);
  return out;
}

function networkAllocated(n: Network): boolean {
  if (isNodeLocal(n)) return !!n.DriverState;
  return (
    !!n.IPAMOptions?.Configs?.some((c) => c.Subnet) && (!isOverlay(n) || !!n.DriverState?.Options?.[VXLAN_ID_OPTION])
  );
}

function isOverlay(n: Network): boolean {
  const d = n.Spec.DriverConfiguration?.Name ?? 'overlay';
  return d === 'overlay';
}

/** Ready for its services and tasks: a node-local network once recorded, any other once it has its pool. */
const ready = (n: Network, pools: Map<string, AddressPool>) => (isNodeLocal(n) ? !!n.DriverState : pools.has(n.ID));

/**
 * One allocation pass (swarmkit allocator): networks get a subnet and a VNI; services get
 * their published ports and one VIP per network; NEW tasks get an address on each of their
 * networks and move to PENDING ("pending task scheduling"). Pure: returns what to write.
 */
export function allocate(
  cluster: Cluster | undefined,
  networks: Network[],
  services: Service[],
  tasks: Task[] | (() => Task[]),
  nodes: Node[] = [],
  /** The NEW tasks, when the caller has them at hand (the store's state index). */
  newTasks?: Task[],
): AllocationResult {
  const allTasks = typeof tasks === 'function' ? tasks : () => tasks;
  const result: AllocationResult = { networks: [], nodes: [], services: [], tasks: [], failedNetworks: [] };
  const now = new Date().toISOString();
  const nets = allocateNetworks(cluster, networks, now, result);
  const { pools, pool } = addressPools(nets, services, nodes, allTasks);
  allocateIngressAddresses(nodes, nets, pools, pool, now, result);
  const allocated = allocateServices(services, nets, pools, pool, now, result);
  allocateTasks(newTasks ?? allTasks(), allocated, nets, pool, now, result);
  // Network attachments of standalone containers (swarmkit allocates them like tasks): NEW →
  // RUNNING with their addresses, from the same pools, so nothing here can collide with a VIP,
  // a service task or another manager's attachment. Nothing schedules or starts them: the node
  // that asked wires the address as soon as the manager answers it with this task.
  for (const t of newTasks ?? allTasks()) {
    if (t.Status.State !== 'new' || !isNetworkAttachment(t)) continue;
    const u = allocateAttachment(t, nets, pools, pool, now);
    if (u) result.tasks.push(u);
  }
  return result;
}

/** An address pool by network ID; the first call marks what live tasks hold. */
type PoolOf = (networkId: string) => AddressPool;

/** Networks get a subnet (asked for, or from the cluster's default pools) and, overlays, a VNI. */
function allocateNetworks(
  cluster: Cluster | undefined,
  networks: Network[],
  now: string,
  result: AllocationResult,
): Network[] {
  const subnets = new SubnetPool(
    cluster?.DefaultAddrPool?.length ? cluster.DefaultAddrPool : DEFAULT_POOL,
    cluster?.SubnetSize || DEFAULT_SUBNET_SIZE,
    networks,
  );
  const vnis = new VniPool(networks);
  return networks.map((n) => {
    if (networkAllocated(n)) return n;
    const u = structuredClone(n);
    if (isNodeLocal(n)) {
      // swarmkit: only the driver's name; each node's own IPAM gives the addresses.
      u.DriverState = { Name: n.Spec.DriverConfiguration!.Name };
      u.IPAMOptions = { Driver: { Name: '' } };
      u.UpdatedAt = now;
      result.networks.push(u);
      return u;
    }
    if (!u.IPAMOptions?.Configs?.some((c) => c.Subnet)) {
      const requested = n.Spec.IPAMOptions?.Configs?.filter((c) => c.Subnet) ?? [];
      const configs = requested.length
        ? requested.map((c) => ({ ...c, Gateway: c.Gateway ?? defaultGateway(c.Subnet) }))
        : [
            (() => {
              const s = subnets.next();
              return { Subnet: s, Gateway: defaultGateway(s) };
            })(),
          ];
      u.IPAMOptions = { Driver: n.Spec.IPAMOptions?.Driver ?? { Name: 'default' }, Configs: configs };
    }
    if (isOverlay(n) && !u.DriverState?.Options?.[VXLAN_ID_OPTION]) {
      let ids: number[];
      try {
        ids = allocateVnis(
          n,
          u.IPAMOptions.Configs!.map((c) => c.Subnet),
          vnis,
        );
      } catch (e) {
        // swarmkit leaves such a network unallocated (its tasks wait) and logs why; the rest of the pass goes on.
        result.failedNetworks.push({
          id: n.ID,
          error: `failed while allocating driver state for network ${n.ID}: ${(e as Error).message}`,
        });
        return n;
      }
      const { [VXLAN_ID_OPTION]: _asked, ...options } = u.Spec.DriverConfiguration?.Options ?? {};
      u.DriverState = {
        Name: 'overlay',
        Options: { ...options, ...(u.DriverState?.Options ?? {}), [VXLAN_ID_OPTION]: ids.join(',') },
      };
    }
    u.UpdatedAt = now;
    result.networks.push(u);
    return u;
  });
}

/**
 * Address pools, rebuilt from what services and live tasks hold. Task addresses are read
 * (a walk over every task) only when a pool is about to hand out an address: most passes
 * allocate none (services without networks), and must not cost the whole task set.
 */
function addressPools(
  nets: Network[],
  services: Service[],
  nodes: Node[],
  allTasks: () => Task[],
): { pools: Map<string, AddressPool>; pool: PoolOf } {
  const pools = new Map<string, AddressPool>();
  for (const n of nets) {
    const c = n.IPAMOptions?.Configs?.find((x) => x.Subnet);
    if (c) pools.set(n.ID, new AddressPool(c.Subnet, c.Gateway));
  }
  for (const s of services) for (const v of s.Endpoint?.VirtualIPs ?? []) pools.get(v.NetworkID)?.mark(v.Addr);
  for (const n of nodes)
    for (const a of n.Attachments ?? []) for (const addr of a.Addresses) pools.get(a.Network.ID)?.mark(addr);
  let taskAddressesMarked = false;
  const pool = (networkId: string): AddressPool => {
    if (!taskAddressesMarked) {
      taskAddressesMarked = true;
      for (const t of allTasks()) {
        // A standalone container's attachment holds its address for as long as the task exists:
        // the container may still run on a removed node until the reaper deletes its task.
        if (!holdsAddresses(t)) continue;
        for (const a of t.NetworksAttachments ?? [])
          for (const addr of a.Addresses) pools.get(a.Network.ID)?.mark(addr);
      }
    }
    return pools.get(networkId)!;
  };
  return { pools, pool };
}

/** Nodes: every node gets its routing-mesh address on the ingress network. */
function allocateIngressAddresses(
  nodes: Node[],
  nets: Network[],
  pools: Map<string, AddressPool>,
  pool: PoolOf,
  now: string,
  result: AllocationResult,
): void {
  const ingressNet = nets.find((n) => n.Spec.Ingress);
  if (!ingressNet || !pools.has(ingressNet.ID)) return;
  for (const n of nodes) {
    if (n.Attachments?.some((a) => a.Network.ID === ingressNet.ID)) continue;
    const others = (n.Attachments ?? []).filter((a) => nets.some((x) => x.ID === a.Network.ID));
    let addr: string;
    // Full from the nodes' own addresses alone: do not walk every task to learn it again.
    if (pools.get(ingressNet.ID)!.full) break;
    try {
      addr = pool(ingressNet.ID).allocate();
    } catch {
      // Ingress is full (the default /24 holds 253 nodes): such nodes get no routing-mesh
      // address, but that must not stop the pass, or no task is allocated at all.
      break;
    }
    result.nodes.push({ ...n, Attachments: [...others, { Network: ingressNet, Addresses: [addr] }], UpdatedAt: now });
  }
}

/** Services: published ports and one VIP per network. Returns every service ready for its tasks, by ID. */
function allocateServices(
  services: Service[],
  nets: Network[],
  pools: Map<string, AddressPool>,
  pool: PoolOf,
  now: string,
  result: AllocationResult,
): Map<string, Service> {
  const ports = new PortAllocator(services);
  const allocated = new Map<string, Service>();
  for (const s of services) {
    const wanted = serviceNetworks(s, nets);
    if (!wanted.every((n) => ready(n, pools))) continue; // network not allocated yet
    // Nothing to allocate (swarmkit IsServiceAllocated: no networks, no ports, nothing held):
    // no write, whatever the endpoint spec says (a mode with nothing to apply it to), so the
    // version a client read right after create or update is still the one to update with.
    if (
      !wanted.length &&
      !s.Spec.EndpointSpec?.Ports?.length &&
      !s.Endpoint?.VirtualIPs?.length &&
      !s.Endpoint?.Ports?.length
    ) {
      allocated.set(s.ID, s);
      continue;
    }
    const mode = s.Spec.EndpointSpec?.Mode ?? 'vip';
    let vips: VirtualIP[];
    try {
      vips =
        mode === 'vip'
          ? wanted.map(
              (n) =>
                s.Endpoint?.VirtualIPs?.find((v) => v.NetworkID === n.ID) ?? {
                  NetworkID: n.ID,
                  // No VIP on a node-local network (swarmkit records the network with no address).
                  Addr: isNodeLocal(n) ? '' : pool(n.ID).allocate(),
                },
            )
          : [];
    } catch {
      continue; // a full network: this service waits, the rest of the pass goes on
    }
    const endpoint = {
      Spec: structuredClone(s.Spec.EndpointSpec ?? { Mode: 'vip' as const }),
      Ports: ports.allocate(s),
      VirtualIPs: vips,
    };
    if (!endpoint.Ports.length) delete (endpoint as { Ports?: unknown }).Ports;
    if (JSON.stringify(endpoint) !== JSON.stringify(s.Endpoint ?? null)) {
      const u = { ...s, Endpoint: endpoint, UpdatedAt: now };
      result.services.push(u);
      allocated.set(s.ID, u);
    } else allocated.set(s.ID, s);
  }
  return allocated;
}

/** Tasks: NEW → PENDING with their network attachments. */
function allocateTasks(
  candidates: Task[],
  allocated: Map<string, Service>,
  nets: Network[],
  pool: PoolOf,
  now: string,
  result: AllocationResult,
): void {
  for (const t of candidates) {
    if (t.Status.State !== 'new') continue;
    const s = allocated.get(t.ServiceID);
    if (!s) continue;
    let attachments: NetworkAttachment[];
    try {
      attachments = serviceNetworks(s, nets).map((n) => ({
        Network: n,
        Addresses: isNodeLocal(n) ? [] : [pool(n.ID).allocate()],
      }));
    } catch {
      continue; // a full network: this task stays NEW, the rest of the pass goes on
    }
    const u: Task = { ...t, Status: status('pending', 'pending task scheduling'), UpdatedAt: now };
    if (s.Endpoint?.Ports?.length) u.Endpoint = structuredClone(s.Endpoint);
    if (attachments.length) u.NetworksAttachments = attachments;
    result.tasks.push(u);
  }
}

/** NEW tasks allocated (and written) at a time within a pass. */
const MAX_TASKS_PER_PASS = 5000;

const ENDED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned']);

/** Whether a task's NetworksAttachments addresses are taken. */
function holdsAddresses(t: Task): boolean {
  if (isNetworkAttachment(t)) return true;
  return t.Status.State !== 'new' && !ENDED.has(t.Status.State);
}

/**
 * One attachment task's addresses, or its allocation error recorded in Status.Err (the
 * waiting RPC reports it). Undefined while its network has no subnet yet, or when the error
 * is already recorded.
 */
function allocateAttachment(
  t: Task,
  nets: Network[],
  pools: Map<string, AddressPool>,
  pool: (networkId: string) => AddressPool,
  now: string,
): Task | undefined {
  const failed = (err: string): Task | undefined =>
    t.Status.Err === err ? undefined : { ...t, Status: { ...t.Status, Err: err, Timestamp: now }, UpdatedAt: now };
  const wanted: Network[] = [];
  for (const w of t.Spec.Networks ?? []) {
    const n = nets.find((x) => x.ID === w.Target) ?? nets.find((x) => x.Spec.Name === w.Target);
    if (!n) return failed(`network ${w.Target} not found`);
    // Not yet: a container joins a node-local swarm network on its own node only through a service task.
    if (isNodeLocal(n)) return failed(`network ${n.Spec.Name} is node-local: only service tasks can join it`);
    if (!pools.has(n.ID)) return undefined;
    wanted.push(n);
  }
  const attachments: NetworkAttachment[] = [];
  try {
    for (const n of wanted) attachments.push({ Network: n, Addresses: [pool(n.ID).allocate()] });
  } catch (e) {
    return failed((e as Error).message);
  }
  const u: Task = { ...t, Status: status('running', 'network attachment'), UpdatedAt: now };
  u.NetworksAttachments = attachments;
  return u;
}

/** The allocator loop: one pass per burst of changes, written in fenced batches. */
export class Allocator extends StoreLoop {
  /** Networks whose failed allocation was logged, with the error: once each, not every pass. */
  private readonly reported = new Map<string, string>();

  constructor(store: Store, log: Logger) {
    super(store, log.child({ loop: 'allocator' }), 0);
  }

  protected observe(events: StoreEvent[]): boolean {
    return events.some(
      (e) =>
        e.kind === 'networks' ||
        e.kind === 'services' ||
        e.kind === 'cluster' ||
        (e.kind === 'nodes' && e.action === 'create') ||
        (e.kind === 'tasks' && (e.object as Task).Status.State === 'new'),
    );
  }

  protected async tick(): Promise<void> {
    const fresh = this.store.tasksBy('state', 'new');
    // In chunks, each written before the next (see the scheduler): one pass over every NEW
    // task of a 100,000-replica service held the event loop for seconds.
    for (let i = 0; i === 0 || (i < fresh.length && !this.stopped); i += MAX_TASKS_PER_PASS) {
      await this.allocateSome(fresh.slice(i, i + MAX_TASKS_PER_PASS));
    }
  }

  private async allocateSome(fresh: Task[]): Promise<void> {
    const r = allocate(
      this.store.view('cluster')[0],
      this.store.view('networks'),
      this.store.view('services'),
      () => this.store.view('tasks'),
      this.store.view('nodes'),
      fresh,
    );
    for (const f of r.failedNetworks) {
      if (this.reported.get(f.id) === f.error) continue;
      this.reported.set(f.id, f.error);
      this.log.error({ network: f.id, err: f.error }, 'Failed allocation for network');
    }
    const changes = [
      ...r.nodes.map((o) => ({ kind: 'nodes' as const, op: 'update' as const, object: o })),
      ...r.networks.map((o) => ({ kind: 'networks' as const, op: 'update' as const, object: o })),
      ...r.services.map((o) => ({ kind: 'services' as const, op: 'update' as const, object: o })),
      ...r.tasks.map((o) => ({ kind: 'tasks' as const, op: 'update' as const, object: o })),
    ];
    // Networks and services first: tasks embed them.
    if (changes.length) await this.commitAll(changes);
  }
}
