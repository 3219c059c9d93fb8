import { createHash } from 'node:crypto';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Network, Task } from '../cluster/types.js';
import type { NetworkViewMessage, RpcClient } from '../cluster/rpc.js';
import { ManagerConnection } from './manager-connection.js';
import type { SwarmMembership } from './link.js';
import type { Engine } from '../engine/engine.js';
import type { ContainerRecord } from '../engine/containers/manager.js';
import type { ForeignEndpoint } from '../engine/containers/views.js';
import type { Logger } from '../util/log.js';
import { CoalescingRunner } from '../util/coalescing-runner.js';
import { NetworkReconciler } from './network/reconciler.js';
import { StandaloneAttachments } from './network/standalone.js';
import { planFromCluster, type ClusterView } from './network/from-cluster.js';
import type { NodeNetworkPlan } from './network/plan.js';
import { OverlayEncryption } from './overlay-encryption.js';
import type { VerboseService } from '../cluster/types.js';

const TASK_LABEL = 'com.docker.swarm.task.id';
const RETRY_MS = 500;

/** Docker's MAC for an IPv4 endpoint: 02:42 and the address's bytes. */
const macOf = (ip: string) =>
  '02:42:' +
  ip
    .split('.')
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join(':');

/** Sandbox namespaces live in the kernel-wide /run/netns: the node ID keeps two nodes on one kernel apart. */
export function sandboxPrefix(nodeId: string): string {
  return `sh${nodeId.slice(0, 10)}`;
}

/** Containers of this node on one network as `network inspect` shows them. */
export type EndpointView = Record<
  string,
  { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }
>;

/**
 * The node side of swarm networking: streams the cluster's network view from a manager,
 * joins it with this node's assigned tasks and their containers, and keeps the
 * NetworkReconciler at the resulting plan. Task containers get their overlay endpoints from
 * a start hook, between runc create and start, so the task's process starts with them.
 */
export class NetworkAgent {
  private view?: NetworkViewMessage;
  private assigned: Task[] = [];
  private reconciler?: NetworkReconciler;
  private nodeId?: string;
  private client?: RpcClient<'Dispatcher'>;
  /** The way to a manager: the view stream's, and the tunnel reports' through `client`. */
  private readonly connection = new ManagerConnection(() => this.swarm.agentTarget());
  private stopped = false;
  private readonly passes = new CoalescingRunner(
    async () => {
      try {
        await this.applyOnce();
      } catch (err) {
        this.log.warn({ err }, 'network plan failed');
      }
    },
    () => this.stopped,
  );
  /** Containers between runc create and start: not yet "running" in the engine's records. */
  private readonly starting = new Map<string, { containerId: string; pid: number }>();
  private lastPlanEndpoints: { containerId: string; networkId: string; ip: string }[] = [];
  private lastPlan?: NodeNetworkPlan;
  private loop?: NodeJS.Timeout;
  private readonly standalone: StandaloneAttachments;
  private encryption?: OverlayEncryption;
  /** When the view being applied came in: how long a change waits for its pass shows in the debug log. */
  private viewAt = 0;

  constructor(
    private readonly engine: Engine,
    private readonly swarm: SwarmMembership,
    private readonly log: Logger,
    /** Fixed by whoever runs several nodes on one kernel and must find their sandboxes (the lab); else from the node ID. */
    private readonly prefix?: string,
  ) {
    this.standalone = new StandaloneAttachments(
      engine,
      swarm,
      log.child({ part: 'attach' }),
      () => this.kick(),
      () => this.reconciler?.resolverAddress ?? '172.18.0.1',
      (id) => this.view?.networks.find((n) => n.ID === id)?.Spec.Name,
    );
  }

  start(): void {
    this.swarm.link.onAssignments((tasks) => {
      this.assigned = tasks;
      this.poke();
    });
    this.engine.containers.addStartHook((rec, pid) => this.beforeStart(rec, pid));
    this.standalone.install();
    this.engine.containers.setForeignEndpoints((id) => this.containerEndpoints(id));
    this.streamLoop().catch((err: unknown) => this.log.warn({ err }, 'network view stream loop failed'));
    // Containers die without the store knowing yet: a slow sweep keeps dead endpoints from lingering.
    this.loop = setInterval(() => this.poke(), 5000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.engine.containers.setForeignEndpoints(() => ({}));
    this.standalone.close();
    clearInterval(this.loop);
    this.client?.close();
    await this.passes.idle().catch(() => undefined);
    await this.reconciler?.close();
  }

  /** The overlay address a task's container must use as its nameserver. */
  get resolverAddress(): string | undefined {
    return this.reconciler?.resolverAddress;
  }

  /** `docker network connect` of a standalone container to an attachable swarm network. */
  connect(container: string, network: string): Promise<void> {
    return this.standalone.connect(container, network);
  }

  /** `docker network disconnect` from a swarm network. */
  disconnect(container: string, network: string): Promise<void> {
    return this.standalone.disconnect(container, network);
  }

  /** For `network inspect`: this node's containers on `networkId`. */
  endpoints(networkId: string): EndpointView | undefined {
    const eps = this.lastPlanEndpoints.filter((e) => e.networkId === networkId);
    if (!eps.length) return undefined;
    const out: EndpointView = {};
    for (const e of eps) {
      const rec = this.engine.containers.find(e.containerId);
      out[e.containerId] = {
        Name: rec?.name.slice(1) ?? '',
        EndpointID: '',
        MacAddress: macOf(e.ip),
        IPv4Address: `${e.ip}/${this.prefixLen(networkId)}`,
        IPv6Address: '',
      };
    }
    return out;
  }

  /** For `inspect` and `ps`: a container's endpoints on swarm networks, by network name. */
  containerEndpoints(containerId: string): Record<string, ForeignEndpoint> {
    const out: Record<string, ForeignEndpoint> = {};
    const rec = this.engine.containers.find(containerId);
    for (const e of this.lastPlanEndpoints) {
      if (e.containerId !== containerId) continue;
      const n = this.view?.networks.find((x) => x.ID === e.networkId);
      if (!n) continue;
      const short = containerId.slice(0, 12);
      out[n.Spec.Name ?? n.ID] = {
        NetworkID: n.ID,
        EndpointID: createHash('sha256').update(`${containerId}/${n.ID}`).digest('hex'),
        IPAddress: e.ip,
        IPPrefixLen: Number(this.prefixLen(n.ID)),
        MacAddress: macOf(e.ip),
        Aliases: [short],
        DNSNames: [...(rec ? [rec.name.slice(1)] : []), short],
      };
    }
    return out;
  }

  private prefixLen(networkId: string): string {
    return (this.view?.networks.find((n) => n.ID === networkId)?.IPAMOptions?.Configs?.[0]?.Subnet ?? '/24').split(
      '/',
    )[1];
  }

  /** Swarm networks this node takes part in (its sandboxes). */
  networks(): Network[] {
    const ids = new Set(this.lastPlan?.overlays.map((o) => o.id) ?? []);
    return (this.view?.networks ?? []).filter((n) => ids.has(n.ID));
  }

  /** For `network inspect`: the nodes this node exchanges traffic with on `networkId`, itself included. */
  peers(networkId: string): { Name: string; IP: string }[] | undefined {
    const plan = this.lastPlan;
    if (!plan?.overlays.some((o) => o.id === networkId)) return undefined;
    const addrs = new Set([
      plan.nodeAddr,
      ...plan.peers.filter((p) => p.networkId === networkId).map((p) => p.nodeAddr),
    ]);
    const nodes = this.view?.nodes ?? [];
    return [...addrs].map((ip) => ({ Name: nodes.find((n) => n.Status.Addr === ip)?.ID.slice(0, 12) ?? ip, IP: ip }));
  }

  /** For `network inspect --verbose`: the services on `networkId` in this node's last applied plan (what its resolver answers). */
  services(networkId: string): Record<string, VerboseService> {
    const out: Record<string, VerboseService> = {};
    for (const s of this.lastPlan?.services ?? []) {
      const vip = s.vips[networkId];
      const tasks = s.tasks.filter((t) => t.addresses[networkId]);
      if (!vip && !tasks.length) continue;
      out[s.name] = {
        VIP: s.endpointMode === 'vip' ? (vip ?? '') : '',
        Ports: s.ports.map((p) => `Target: ${p.target}, Publish: ${p.published}`),
        LocalLBIndex: 0,
        Tasks: tasks.map((t) => ({ Name: '', EndpointID: '', EndpointIP: t.addresses[networkId], Info: {} })),
      };
    }
    return out;
  }

  // --- the view from the manager ---

  private async streamLoop(): Promise<void> {
    while (!this.stopped) {
      const target = this.swarm.agentTarget();
      if (!target) {
        if (this.reconciler) await this.leave();
        await sleep(RETRY_MS);
        continue;
      }
      const picked = this.connection.pick();
      if (!picked) {
        await sleep(RETRY_MS);
        continue;
      }
      const addr = picked.addr;
      this.nodeId = target.nodeId;
      try {
        const client = this.connection.client(target, addr);
        this.client = client;
        let check: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          const stream = client.stream('NetworkView', {});
          stream.on('data', (m: NetworkViewMessage) => {
            this.connection.succeeded();
            this.viewAt = Date.now();
            this.logNewlyRunning(this.view, m);
            this.view = m;
            this.poke();
          });
          stream.on('error', (err) => {
            this.log.debug({ err, manager: addr }, 'network view stream ended');
            resolve();
          });
          stream.on('end', () => resolve());
          // Left the swarm or stopping: drop the stream.
          check = setInterval(() => {
            if (this.stopped || this.swarm.agentTarget()?.nodeId !== target.nodeId) {
              stream.cancel();
              resolve();
            }
          }, 1000);
        }).finally(() => clearInterval(check));
        client.close();
      } catch (err) {
        this.log.debug({ err }, 'network view connect failed');
      }
      await this.connection.failed();
    }
  }

  /** Debug: how long after its RUNNING timestamp a task reached this node's view (agent report, store write, push). */
  private logNewlyRunning(before: NetworkViewMessage | undefined, after: NetworkViewMessage): void {
    if (!this.log.isLevelEnabled('debug')) return;
    const was = new Set(before?.tasks.filter((t) => t.Status.State === 'running').map((t) => t.ID));
    for (const t of after.tasks)
      if (t.Status.State === 'running' && !was.has(t.ID))
        this.log.debug({ task: t.ID, ms: this.viewAt - Date.parse(t.Status.Timestamp) }, 'task running in the view');
  }

  /** Left the swarm: everything this node programmed goes. */
  private async leave(): Promise<void> {
    const r = this.reconciler;
    this.reconciler = undefined;
    this.view = undefined;
    await r?.destroy().catch((err) => this.log.warn({ err }, 'overlay teardown failed'));
    const e = this.encryption;
    this.encryption = undefined;
    await e?.destroy().catch((err) => this.log.warn({ err }, 'overlay tunnel teardown failed'));
  }

  // --- plans ---

  /** Applies the current plan; calls during an apply make one more pass afterwards. */
  /** A pass asked for by an event nobody waits on: its failure is logged, never an unhandled rejection. */
  private poke(): void {
    this.kick().catch((err: unknown) => this.log.warn({ err }, 'network pass failed'));
  }

  private kick(): Promise<void> {
    return this.passes.kick();
  }

  private async applyOnce(): Promise<void> {
    const view = this.view;
    const nodeId = this.nodeId;
    if (!view || !nodeId || this.stopped) return;
    if (!this.reconciler) {
      this.reconciler = await NetworkReconciler.open({
        sandboxPrefix: this.prefix ?? sandboxPrefix(nodeId),
        log: this.log.child({ part: 'overlay' }),
      });
    }
    const local = new Map<string, { containerId: string; netnsPath: string; bridgeIp?: string; starting?: boolean }>();
    const bridgeIps = new Map(this.engine.bridge.endpoints().map((e) => [e.containerId, e.ip]));
    for (const r of this.engine.containers.all()) {
      const taskId = r.config.Labels?.[TASK_LABEL];
      if (!taskId || r.state.Status !== 'running' || !r.state.Pid || !fs.existsSync(`/proc/${r.state.Pid}/ns/net`))
        continue;
      local.set(taskId, { containerId: r.id, netnsPath: `/proc/${r.state.Pid}/ns/net`, bridgeIp: bridgeIps.get(r.id) });
    }
    for (const [taskId, s] of this.starting) {
      // Kept until the engine records the container running, or its process is gone.
      if (local.has(taskId) || !fs.existsSync(`/proc/${s.pid}/ns/net`)) this.starting.delete(taskId);
      else local.set(taskId, { containerId: s.containerId, netnsPath: `/proc/${s.pid}/ns/net`, starting: true });
    }
    // A local task on swarm networks receives traffic once the managers know it RUNNING (health
    // checks included), as on every other node: before that its container only gets its endpoints.
    // (Tasks without networks are not in the view: their running container is what counts.)
    const viewState = new Map(view.tasks.filter((t) => t.NodeID === nodeId).map((t) => [t.ID, t.Status.State]));
    for (const t of this.assigned) {
      const l = local.get(t.ID);
      if (l && t.NetworksAttachments?.length && t.Status.State !== 'running' && viewState.get(t.ID) !== 'running')
        l.starting = true;
    }
    // Local tasks from the assignments (fresher than the view); live while their container is.
    // A task desired down keeps its endpoints while its container drains (see TaskRunner.drain).
    const mine = this.assigned
      .filter(
        (t) =>
          local.has(t.ID) &&
          !['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned'].includes(t.Status.State),
      )
      .map((t) => ({ ...t, NodeID: nodeId, Status: { ...t.Status, State: 'running' as const } }));
    // Standalone containers on attachable networks: wired like local tasks.
    for (const a of this.standalone.live(view.tasks.filter((t) => t.NodeID === nodeId && !t.ServiceID))) {
      local.set(a.task.ID, { containerId: a.containerId, netnsPath: a.netnsPath });
      mine.push({ ...a.task, NodeID: nodeId, DesiredState: 'running', Status: { ...a.task.Status, State: 'running' } });
    }
    const cluster: ClusterView = {
      nodeId,
      nodes: view.nodes,
      networks: view.networks,
      services: view.services,
      tasks: [...view.tasks.filter((t) => t.NodeID !== nodeId), ...mine],
      localContainer: (t) => local.get(t.ID),
      ingressEndpoints: Object.fromEntries(
        view.nodes.flatMap((n) => {
          const a = (n.Attachments ?? []).find((x) =>
            view.networks.some((net) => net.ID === x.Network.ID && net.Spec.Ingress),
          );
          return a?.Addresses[0] && n.Status.State !== 'down' ? [[n.ID, a.Addresses[0]]] : [];
        }),
      ),
    };
    const t0 = Date.now();
    const viewAt = this.viewAt;
    const plan = await this.encryptionOf(nodeId).apply(planFromCluster(cluster), view);
    const t1 = Date.now();
    const report = await this.reconciler.applyPlan(plan);
    if (report.ipBatches + report.bridgeBatches + report.nftTransactions)
      this.log.debug(
        { viewAgeMs: t0 - viewAt, planMs: t1 - t0, applyMs: Date.now() - t1, ...report },
        'network plan applied',
      );
    this.lastPlanEndpoints = plan.endpoints.map((e) => ({
      containerId: e.containerId,
      networkId: e.networkId,
      ip: e.ip,
    }));
    this.lastPlan = plan;
    if (report.errors.length) this.log.debug({ errors: report.errors }, 'network plan applied with errors');
  }

  private encryptionOf(nodeId: string): OverlayEncryption {
    if (this.encryption?.nodeId !== nodeId)
      this.encryption = new OverlayEncryption(
        nodeId,
        this.log.child({ part: 'tunnel' }),
        () => this.client,
        () => this.poke(),
      );
    return this.encryption;
  }

  /** Start hook: a task container on swarm networks gets its endpoints and the node's resolver before its process runs. */
  private async beforeStart(rec: ContainerRecord, pid: number): Promise<void> {
    const taskId = rec.config.Labels?.[TASK_LABEL];
    if (!taskId || rec.hostConfig.NetworkMode !== 'none') return;
    const task = this.assigned.find((t) => t.ID === taskId);
    if (!task?.NetworksAttachments?.length) return;
    // A node that cannot encrypt fails the task here instead of wiring it in cleartext.
    if (this.view && this.nodeId) {
      const self = this.view.nodes.find((n) => n.ID === this.nodeId);
      await this.encryptionOf(this.nodeId).admit(
        task,
        this.view.networks,
        self?.Status.Addr ?? '',
        this.view.overlayKeyEpoch ?? 0,
      );
    }
    const resolver = this.reconciler?.resolverAddress ?? '172.18.0.1';
    // In place: the file is bind-mounted into the container by inode.
    fs.writeFileSync(this.engine.containers.paths(rec.id).resolvConf, `nameserver ${resolver}\noptions ndots:0\n`);
    // /etc/hosts names the task's own address (its first network past ingress) with the aliases
    // asked for on that network, so `hostname -i` and `getent hosts $(hostname)` work as in Docker.
    const own = task.NetworksAttachments.find((a) => !a.Network.Spec?.Ingress) ?? task.NetworksAttachments[0];
    const ip = own.Addresses?.[0]?.split('/')[0];
    if (ip) {
      const asked = (task.Spec?.Networks ?? []).find(
        (n) => n.Target === own.Network.ID || n.Target === own.Network.Spec?.Name,
      );
      this.engine.containers.setOwnAddress(rec.id, ip, asked?.Aliases ?? []);
    }
    this.starting.set(taskId, { containerId: rec.id, pid });
    // A pass already under way when the hook ran did not see this container: kick() then waits for the next one too.
    await this.kick();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
