import fs from 'node:fs';
import type { Logger } from '../../util/log.js';
import { macFromIp } from '../../net/ipv4.js';
import type { NodeNetworkPlan } from './plan.js';
import {
  desiredState,
  epKey,
  meshUdpPorts,
  peerChanges,
  publishedPorts,
  push,
  wantedPeers,
  type DesiredState,
} from './desired.js';
import { replyRouteCommands, type ReplyNode, type RouteEntry, type RuleEntry } from './reply-routes.js';
import { emptyPlan } from './plan.js';
import {
  GW_BRIDGE,
  INGRESS_GW_HOST_VETH,
  NFT_CONTAINER_TABLE,
  NFT_NODE_TABLE,
  gwVethName,
  sandboxName,
} from './names.js';
import { ipBatch, ipJson, nftApply, sysctl, type LinkInfo, type NetnsPath } from './kernel.js';
import {
  containerScript,
  containerVipTargets,
  deleteTableScript,
  ingressReplyMark,
  ingressScript,
  nodeScript,
} from './rules.js';
import { raiseNodeConntrackTimeout } from './conntrack.js';
import { buildZone } from './dns-records.js';
import { startResolver, type Resolver } from './dns-process.js';
import { upstreamsFromResolvConf, type Upstream } from '../../net/dns-server.js';
import { SerialQueue } from '../../util/serial-queue.js';
import { runLimited } from '../../util/parallel.js';
import { ProgrammedState, freshReport, type ApplyReport } from './programmed.js';
import {
  INGRESS_GW_IP,
  attachContainer,
  createSandbox,
  gwPrefixLen,
  observeSandboxes,
  removeSandbox,
} from './sandboxes.js';

/** Kernel transactions in flight at once, each in its own namespace. */
const PARALLEL_NAMESPACES = 8;

export interface ReconcilerOptions {
  /** The node's namespace (where the underlay address and the gateway bridge live); undefined: this process's. */
  nodeNetns?: string;
  /** Starts the names of this node's sandbox namespaces: unique among the nodes sharing this kernel. */
  sandboxPrefix: string;
  /** Where the resolver forwards names that are not the swarm's; default: /etc/resolv.conf. */
  dnsUpstreams?: Upstream[];
  dnsPort?: number;
  log: Logger;
}

export type { ApplyReport } from './programmed.js';

/**
 * Brings the node's overlay data path to a declared plan. It diffs against what it programmed
 * before; a new instance (daemon restart) first reads what the kernel holds and adopts what
 * matches, so established traffic of running tasks is never interrupted.
 */
export class NetworkReconciler {
  private resolver?: Resolver;
  private lastZone = '';
  private readonly queue = new SerialQueue();
  /** The VXLAN source address, from the plan being applied. */
  private nodeAddr = '';

  private readonly state: ProgrammedState;

  private constructor(readonly options: ReconcilerOptions) {
    this.state = new ProgrammedState(options.nodeNetns, options.sandboxPrefix, options.log);
  }

  private get node(): NetnsPath {
    return this.options.nodeNetns;
  }

  /** The address containers use as their nameserver. */
  get resolverAddress(): string {
    return GW_BRIDGE.gateway;
  }

  static async open(options: ReconcilerOptions): Promise<NetworkReconciler> {
    const r = new NetworkReconciler(options);
    await r.ensureGatewayBridge();
    await observeSandboxes(r.state);
    r.resolver = await startResolver(
      r.node,
      {
        address: GW_BRIDGE.gateway,
        port: options.dnsPort ?? 53,
        upstreams: options.dnsUpstreams ?? readHostResolvers(),
      },
      options.log.child({ part: 'dns' }),
    );
    return r;
  }

  applyPlan(plan: NodeNetworkPlan): Promise<ApplyReport> {
    return this.queue.run(() => this.apply(plan));
  }

  /** Stops the resolver; the kernel state stays for the next instance to adopt. */
  async close(): Promise<void> {
    await this.queue.idle();
    await this.resolver?.stop();
  }

  /** Removes everything this node programmed: sandboxes, veths, tables, the gateway bridge. */
  async destroy(): Promise<void> {
    await this.applyPlan(emptyPlan('0.0.0.0'));
    await this.resolver?.stop();
    await nftApply(this.node, deleteTableScript(NFT_NODE_TABLE)).catch(() => undefined);
    await ipBatch(this.node, [`link delete ${GW_BRIDGE.device}`]).catch(() => undefined);
  }

  // --- observation (restart adoption) ---

  private async ensureGatewayBridge(): Promise<void> {
    const [link] = await ipJson<LinkInfo>(this.node, ['addr', 'show', 'dev', GW_BRIDGE.device]);
    await ipBatch(this.node, gatewayBridgeCommands(link));
    await sysctl(this.node, 'net.ipv4.ip_forward', '1');
    await raiseNodeConntrackTimeout(this.node);
    for (const l of await ipJson<LinkInfo>(this.node, ['link', 'show', 'master', GW_BRIDGE.device])) {
      if (l.ifname.startsWith('vg') && l.ifname !== INGRESS_GW_HOST_VETH) this.state.unclaimedGw.add(l.ifname);
    }
  }

  // --- one change set ---

  private async apply(plan: NodeNetworkPlan): Promise<ApplyReport> {
    this.state.report = freshReport();
    this.nodeAddr = plan.nodeAddr;
    const want = desiredState(plan, this.options.sandboxPrefix, this.state.report.errors);
    await this.removeStale(plan, want);
    await this.createMissingSandboxes(plan, want);
    const lateDeletes = await this.syncPeers(plan, want);
    await this.attachContainers(want);
    await this.dropLeftovers();
    await this.writeRules(plan, want);
    for (const del of lateDeletes) await del();
    this.updateZone(plan);
    if (this.state.report.errors.length)
      this.options.log.warn({ errors: this.state.report.errors }, 'overlay plan applied with errors');
    return this.state.report;
  }

  /** Whether a sandbox must be made afresh (VNI, subnet or balancer address changed) or goes away. */
  private sandboxChanged(name: string, plan: NodeNetworkPlan, want: DesiredState): boolean {
    const have = this.state.sandboxes.get(name);
    const net = want.sandboxes.get(name);
    if (!have || !net) return !!have;
    const lbIp = net === want.ingressNet ? plan.ingressEndpoint!.ip : undefined;
    return have.vni !== net.vni || (have.subnet !== '' && have.subnet !== net.subnet) || have.lbIp !== lbIp;
  }

  /** Step 1. Removals: endpoints, gateway attachments, then sandboxes nobody uses. */
  private async removeStale(plan: NodeNetworkPlan, want: DesiredState): Promise<void> {
    const changed = (name: string) => this.sandboxChanged(name, plan, want);
    const dropVeths = new Map<string, string[]>();
    for (const [key, ep] of this.state.endpoints) {
      const w = want.endpoints.get(key);
      if (
        w &&
        !changed(ep.sandbox) &&
        w.ip === ep.ip &&
        (w.mac ?? macFromIp(w.ip)).toLowerCase() === ep.mac &&
        w.netnsPath === ep.netnsPath
      )
        continue;
      push(dropVeths, ep.sandbox, `link delete ${ep.veth}`);
      this.state.endpoints.delete(key);
    }
    for (const [name, sb] of this.state.sandboxes) {
      const lines = dropVeths.get(name) ?? [];
      if (changed(name) || !want.sandboxes.has(name)) continue; // going away whole
      // Veths of containers that died are already gone with their namespace: keep going past them.
      await this.state.ip(sb.path, lines, true);
    }
    const dropGw: string[] = [];
    for (const [id, gw] of this.state.gws) {
      if (want.containers.get(id) === gw.netnsPath) continue;
      dropGw.push(`link delete ${gw.hostVeth}`);
      this.state.gws.delete(id);
      this.state.replyRoutes.delete(id);
      await this.state.nft(`c:${id}`, gw.netnsPath, deleteTableScript(NFT_CONTAINER_TABLE), true);
      this.state.nftApplied.delete(`c:${id}`);
    }
    await this.state.ip(this.node, dropGw, true);
    for (const name of [...this.state.sandboxes.keys()]) {
      if (changed(name) || !want.sandboxes.has(name)) await removeSandbox(this.state, name);
    }
  }

  /** Step 2. Sandboxes that are missing. */
  private async createMissingSandboxes(plan: NodeNetworkPlan, want: DesiredState): Promise<void> {
    for (const [name, net] of want.sandboxes) {
      if (this.state.sandboxes.has(name)) {
        this.state.sandboxes.get(name)!.subnet = net.subnet;
        continue;
      }
      try {
        await createSandbox(this.state, name, net, net === want.ingressNet ? plan : undefined, this.nodeAddr);
      } catch (e) {
        this.state.fail(e, { networkId: net.id });
        await removeSandbox(this.state, name);
      }
    }
  }

  /**
   * Step 3. Forwarding and neighbour entries for remote addresses: one batch of each per sandbox.
   * Returns the deletions of vanished addresses, to run once the rules no longer send there.
   */
  private async syncPeers(plan: NodeNetworkPlan, want: DesiredState): Promise<(() => Promise<void>)[]> {
    const lateDeletes: (() => Promise<void>)[] = [];
    for (const [name, net] of want.sandboxes) {
      const sb = this.state.sandboxes.get(name);
      if (!sb) continue;
      const peers = wantedPeers(plan, net.id);
      const c = peerChanges(sb.peers, peers);
      // Deletions wait until the rules no longer send anything there (step 5): a connection
      // DNATed to a vanished address meanwhile would lose its packets to an unanswered ARP.
      // Entries the kernel already dropped must not stop the set: -force goes past them.
      await this.state.ip(sb.path, c.ipDel, true);
      await this.state.fdb(sb.path, c.fdbDel, true);
      lateDeletes.push(async () => {
        await this.state.ip(sb.path, c.ipDelLate, true);
        await this.state.fdb(sb.path, c.fdbDelLate, true);
      });
      try {
        await this.state.fdb(sb.path, c.fdbAdd);
        await this.state.ip(sb.path, c.ipAdd);
        for (const [ip, w] of peers) sb.peers.set(ip, w);
      } catch (e) {
        // Not recorded: the next apply adds them again (replace is idempotent).
        this.state.fail(e, { networkId: net.id });
      }
    }
    return lateDeletes;
  }

  /** Step 4. Containers: adopt what a previous run made, create the rest (one batch per container netns). */
  private async attachContainers(want: DesiredState): Promise<void> {
    // Adopted containers first: their gateway addresses must be known before new ones are handed out.
    const order = [...want.byContainer.keys()].sort(
      (a, b) => Number(this.state.unclaimedGw.has(gwVethName(b))) - Number(this.state.unclaimedGw.has(gwVethName(a))),
    );
    for (const containerId of order) {
      const eps = want.byContainer.get(containerId)!;
      try {
        await attachContainer(this.state, containerId, eps, want.overlays);
      } catch (e) {
        this.state.fail(e, { containerId });
      }
    }
  }

  /** Leftovers of a previous run that the plan no longer has. */
  private async dropLeftovers(): Promise<void> {
    for (const sb of this.state.sandboxes.values()) {
      await this.state
        .ip(
          sb.path,
          [...sb.unclaimed].map((v) => `link delete ${v}`),
          true,
        )
        .catch(() => undefined);
      sb.unclaimed.clear();
    }
    await this.state
      .ip(
        this.node,
        [...this.state.unclaimedGw].map((v) => `link delete ${v}`),
        true,
      )
      .catch(() => undefined);
    this.state.unclaimedGw.clear();
  }

  /**
   * Step 5. nftables: per container VIPs (and routing-mesh replies), the ingress sandbox's balancer, the node's published ports.
   * Each table is its own namespace's transaction, so they go in parallel: a task turning RUNNING
   * changes its own container's table and the ingress balancer, and on a loaded box each `nft`
   * costs 100-200 ms. A container whose table was never written goes first, so the balancer never
   * sends a connection to a task whose replies are not yet marked.
   */
  private async writeRules(plan: NodeNetworkPlan, want: DesiredState): Promise<void> {
    const { ingressNet } = want;
    const replyNodes: ReplyNode[] = (plan.ingressNodes ?? []).map((n) => ({
      ip: n.ip,
      mac: (n.mac ?? macFromIp(n.ip)).toLowerCase(),
      mark: ingressReplyMark(n.ip),
    }));
    const fresh: (() => Promise<void>)[] = [];
    const known: (() => Promise<void>)[] = [];
    for (const [containerId, eps] of want.byContainer) {
      const gw = this.state.gws.get(containerId);
      if (!gw) continue;
      const nets = new Set(
        eps.filter((e) => this.state.endpoints.has(epKey(containerId, e.networkId))).map((e) => e.networkId),
      );
      const ingressEp = ingressNet ? this.state.endpoints.get(epKey(containerId, ingressNet.id)) : undefined;
      const reply = ingressEp && replyNodes.length ? { ifname: ingressEp.ifname, nodes: replyNodes } : undefined;
      const job = async () => {
        // Routes first: a mark whose table is not there yet falls through to `main`, never the other way round.
        if (ingressEp)
          await this.syncReplyRoutes(
            containerId,
            gw.netnsPath,
            ingressEp.ifname,
            replyNodes,
            meshUdpPorts(plan, containerId),
            plan.ingressEndpoint?.ip,
          );
        await this.state.nft(
          `c:${containerId}`,
          gw.netnsPath,
          containerScript(containerVipTargets(plan.services, nets), reply),
        );
      };
      (this.state.nftApplied.has(`c:${containerId}`) ? known : fresh).push(job);
    }
    await runLimited(fresh, PARALLEL_NAMESPACES);
    const ingressSb = ingressNet && this.state.sandboxes.get(sandboxName(this.options.sandboxPrefix, ingressNet.id));
    const { published, balanced } = publishedPorts(
      plan,
      ingressNet,
      ingressSb ? INGRESS_GW_IP : undefined,
      (id) => this.state.gws.get(id)?.ip,
    );
    const tables = [
      ...(ingressSb ? [() => this.state.nft(`s:${ingressSb.name}`, ingressSb.path, ingressScript(balanced))] : []),
      () => this.state.nft('node', this.node, nodeScript(published)),
    ];
    await runLimited([...tables, ...known], PARALLEL_NAMESPACES);
  }

  /** Step 6. The resolver's view. */
  private updateZone(plan: NodeNetworkPlan): void {
    const zone = buildZone(plan, (id) => this.state.gws.get(id)?.ip);
    this.resolver?.setZone(zone);
    // A name that does not resolve is a question about this zone: its changes go to the debug log.
    const zoneText = JSON.stringify(zone);
    if (zoneText !== this.lastZone) {
      this.lastZone = zoneText;
      this.options.log.debug({ zone }, 'resolver zone changed');
    }
  }

  private async syncReplyRoutes(
    containerId: string,
    ns: string,
    ifname: string,
    nodes: ReplyNode[],
    udpPorts: number[],
    ownIp: string | undefined,
  ): Promise<void> {
    const key = `${ifname} ${nodes
      .map((n) => n.ip)
      .sort()
      .join(',')} udp ${udpPorts.join(',')}`;
    if (this.state.replyRoutes.get(containerId) === key) return;
    const rules = await ipJson<RuleEntry>(ns, ['rule', 'show']);
    const routes = await ipJson<RouteEntry>(ns, ['route', 'show', 'table', 'all']);
    const { drop, add } = replyRouteCommands(rules, routes, ifname, nodes, udpPorts, ownIp);
    try {
      await this.state.ip(ns, drop, true);
      await this.state.ip(ns, add);
      this.state.replyRoutes.set(containerId, key);
    } catch (e) {
      this.state.fail(e, { containerId });
    }
  }
}

/**
 * Brings the gateway bridge to what containers rely on: its address, up, and a MAC of its own.
 * A bridge whose MAC was never set takes the lowest of its ports' and changes as task containers
 * come and go; a container keeps the old one in its ARP cache while the entry is reachable (up to
 * ~45 s), and meanwhile its queries to the resolver and its traffic out are lost. A bridge found
 * in place is pinned to the MAC it has, which its containers already know.
 */
export function gatewayBridgeCommands(link: LinkInfo | undefined): string[] {
  const dev = GW_BRIDGE.device;
  const want = `${GW_BRIDGE.gateway}/${gwPrefixLen}`;
  const cmds: string[] = [];
  if (!link) cmds.push(`link add ${dev} address ${macFromIp(GW_BRIDGE.gateway)} type bridge`);
  else if (link.address) cmds.push(`link set dev ${dev} address ${link.address}`);
  if (!(link?.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === want))
    cmds.push(`addr add ${want} dev ${dev}`);
  if (!link?.flags?.includes('UP')) cmds.push(`link set ${dev} up`);
  return cmds;
}

function readHostResolvers(): Upstream[] {
  try {
    return upstreamsFromResolvConf(fs.readFileSync('/etc/resolv.conf', 'utf8'));
  } catch {
    return [];
  }
}
