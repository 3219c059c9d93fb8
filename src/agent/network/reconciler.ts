import fs from 'node:fs';
import type { Logger } from '../../util/log.js';
import { formatIp, macFromIp, parseIp, parseSubnet } from '../../engine/network/ipv4.js';
import type { LocalEndpointPlan, NodeNetworkPlan, OverlayNetworkPlan } from './plan.js';
import { desiredState, epKey, meshUdpPorts, peerChanges, publishedPorts, push, wantedPeers, type DesiredState, type Peer } from './desired.js';
import { replyRouteCommands, type ReplyNode, type RouteEntry, type RuleEntry } from './reply-routes.js';
import { emptyPlan } from './plan.js';
import {
  GW_BRIDGE, INGRESS_GW_HOST_VETH, INGRESS_GW_IFNAME, NFT_CONTAINER_TABLE, NFT_INGRESS_TABLE, NFT_NODE_TABLE, OVERLAY_MTU,
  SANDBOX_BRIDGE, SANDBOX_VXLAN, VXLAN_PORT, gwVethName, sandboxName, sandboxVethName, transientVxlanName,
} from './names.js';
import { bridgeBatch, bridgeJson, exec, ipBatch, ipJson, nftApply, sysctl, sysctls, type FdbEntry, type LinkInfo, type NeighEntry, type NetnsPath } from './kernel.js';
import { containerScript, containerVipTargets, deleteTableScript, ingressReplyMark, ingressScript, nodeScript } from './rules.js';
import { ownedNamespaceSysctls, raiseNodeConntrackTimeout } from './conntrack.js';
import { buildZone } from './dns-zone.js';
import { startResolver, type Resolver } from './dns-process.js';
import { upstreamsFromResolvConf, type Upstream } from './dns-server.js';
import { SerialQueue } from '../../util/serial-queue.js';

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

/** One overlay network's sandbox namespace as programmed. */
interface Sandbox {
  name: string;
  path: string;
  vni: number;
  subnet: string;
  /** The routing mesh's address on br0 (ingress sandbox only). */
  lbIp?: string;
  peers: Map<string, Peer>;
  /** Container veths found there after a restart, not yet matched to the plan. */
  unclaimed: Set<string>;
}

interface Endpoint {
  containerId: string;
  networkId: string;
  sandbox: string;
  netnsPath: string;
  ip: string;
  mac: string;
  ifname: string;
  veth: string;
}

interface GwAttachment {
  containerId: string;
  netnsPath: string;
  ip: string;
  ifname: string;
  hostVeth: string;
}

/** What one applyPlan did: kernel transactions issued, and containers it could not program. */
export interface ApplyReport {
  ipBatches: number;
  bridgeBatches: number;
  nftTransactions: number;
  errors: { containerId?: string; networkId?: string; message: string }[];
}

const NETNS_DIR = '/run/netns';
const gwPrefixLen = parseSubnet(GW_BRIDGE.subnet).prefixLen;
const INGRESS_GW_IP = formatIp(parseIp(GW_BRIDGE.gateway) + 1);
/**
 * Brings the node's overlay data path to a declared plan. It diffs against what it programmed
 * before; a new instance (daemon restart) first reads what the kernel holds and adopts what
 * matches, so established traffic of running tasks is never interrupted.
 */
export class NetworkReconciler {
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly gws = new Map<string, GwAttachment>();
  /** Gateway-bridge veths found after a restart, not yet matched to the plan. */
  private readonly unclaimedGw = new Set<string>();
  /** Per container: the reply routes last programmed (interface and ingress endpoints). */
  private readonly replyRoutes = new Map<string, string>();
  /** Last script applied per namespace: unchanged tables are not rewritten. */
  private readonly nftApplied = new Map<string, string>();
  private resolver?: Resolver;
  private lastZone = '';
  private readonly queue = new SerialQueue();
  private report: ApplyReport = freshReport();
  /** The VXLAN source address, from the plan being applied. */
  private nodeAddr = '';

  private constructor(readonly options: ReconcilerOptions) {}

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
    await r.observe();
    r.resolver = await startResolver(r.node, {
      address: GW_BRIDGE.gateway,
      port: options.dnsPort ?? 53,
      upstreams: options.dnsUpstreams ?? readHostResolvers(),
    }, options.log.child({ part: 'dns' }));
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
      if (l.ifname.startsWith('vg') && l.ifname !== INGRESS_GW_HOST_VETH) this.unclaimedGw.add(l.ifname);
    }
  }

  private async observe(): Promise<void> {
    const prefix = `${this.options.sandboxPrefix}-`;
    const names = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix)) : [];
    for (const name of names) {
      const path = `${NETNS_DIR}/${name}`;
      const [vx] = await ipJson<LinkInfo>(path, ['-details', 'link', 'show', 'dev', SANDBOX_VXLAN]);
      const vni = vx?.linkinfo?.info_data?.id;
      const [br] = await ipJson<LinkInfo>(path, ['addr', 'show', 'dev', SANDBOX_BRIDGE]);
      if (vni === undefined || !br) {
        // Half-made by a crash: nothing running can depend on it.
        await this.removeSandboxByName(name);
        continue;
      }
      const neigh = await ipJson<NeighEntry>(path, ['neigh', 'show', 'dev', SANDBOX_VXLAN]);
      const fdb = await bridgeJson<FdbEntry>(path, ['fdb', 'show', 'dev', SANDBOX_VXLAN]);
      const dstOf = new Map(fdb.filter((f) => f.dst).map((f) => [f.mac.toLowerCase(), f.dst!]));
      const peers = new Map<string, Peer>();
      for (const n of neigh) {
        const mac = n.lladdr?.toLowerCase();
        const nodeAddr = mac && dstOf.get(mac);
        if (mac && nodeAddr) peers.set(n.dst, { mac, nodeAddr });
      }
      const inet = (br.addr_info ?? []).find((a) => a.family === 'inet');
      const veths = await ipJson<LinkInfo>(path, ['link', 'show', 'master', SANDBOX_BRIDGE]);
      this.sandboxes.set(name, {
        name, path, vni, subnet: '', lbIp: inet?.local, peers,
        unclaimed: new Set(veths.map((l) => l.ifname).filter((n) => n.startsWith('ve'))),
      });
    }
    this.options.log.info({ sandboxes: this.sandboxes.size, gatewayVeths: this.unclaimedGw.size }, 'overlay state read from the kernel');
  }

  // --- one change set ---

  private async apply(plan: NodeNetworkPlan): Promise<ApplyReport> {
    this.report = freshReport();
    this.nodeAddr = plan.nodeAddr;
    const want = desiredState(plan, this.options.sandboxPrefix, this.report.errors);
    await this.removeStale(plan, want);
    await this.createMissingSandboxes(plan, want);
    const lateDeletes = await this.syncPeers(plan, want);
    await this.attachContainers(want);
    await this.dropLeftovers();
    await this.writeRules(plan, want);
    for (const del of lateDeletes) await del();
    this.updateZone(plan);
    if (this.report.errors.length) this.options.log.warn({ errors: this.report.errors }, 'overlay plan applied with errors');
    return this.report;
  }

  /** Whether a sandbox must be made afresh (VNI, subnet or balancer address changed) or goes away. */
  private sandboxChanged(name: string, plan: NodeNetworkPlan, want: DesiredState): boolean {
    const have = this.sandboxes.get(name);
    const net = want.sandboxes.get(name);
    if (!have || !net) return !!have;
    const lbIp = net === want.ingressNet ? plan.ingressEndpoint!.ip : undefined;
    return have.vni !== net.vni || (have.subnet !== '' && have.subnet !== net.subnet) || have.lbIp !== lbIp;
  }

  /** Step 1. Removals: endpoints, gateway attachments, then sandboxes nobody uses. */
  private async removeStale(plan: NodeNetworkPlan, want: DesiredState): Promise<void> {
    const changed = (name: string) => this.sandboxChanged(name, plan, want);
    const dropVeths = new Map<string, string[]>();
    for (const [key, ep] of this.endpoints) {
      const w = want.endpoints.get(key);
      if (w && !changed(ep.sandbox) && w.ip === ep.ip && (w.mac ?? macFromIp(w.ip)).toLowerCase() === ep.mac && w.netnsPath === ep.netnsPath) continue;
      push(dropVeths, ep.sandbox, `link delete ${ep.veth}`);
      this.endpoints.delete(key);
    }
    for (const [name, sb] of this.sandboxes) {
      const lines = dropVeths.get(name) ?? [];
      if (changed(name) || !want.sandboxes.has(name)) continue; // going away whole
      // Veths of containers that died are already gone with their namespace: keep going past them.
      await this.ip(sb.path, lines, true);
    }
    const dropGw: string[] = [];
    for (const [id, gw] of this.gws) {
      if (want.containers.get(id) === gw.netnsPath) continue;
      dropGw.push(`link delete ${gw.hostVeth}`);
      this.gws.delete(id);
      this.replyRoutes.delete(id);
      await this.nft(`c:${id}`, gw.netnsPath, deleteTableScript(NFT_CONTAINER_TABLE), true);
      this.nftApplied.delete(`c:${id}`);
    }
    await this.ip(this.node, dropGw, true);
    for (const name of [...this.sandboxes.keys()]) {
      if (changed(name) || !want.sandboxes.has(name)) await this.removeSandboxByName(name);
    }
  }

  /** Step 2. Sandboxes that are missing. */
  private async createMissingSandboxes(plan: NodeNetworkPlan, want: DesiredState): Promise<void> {
    for (const [name, net] of want.sandboxes) {
      if (this.sandboxes.has(name)) {
        this.sandboxes.get(name)!.subnet = net.subnet;
        continue;
      }
      try {
        await this.createSandbox(name, net, net === want.ingressNet ? plan : undefined);
      } catch (e) {
        this.fail(e, { networkId: net.id });
        await this.removeSandboxByName(name);
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
      const sb = this.sandboxes.get(name);
      if (!sb) continue;
      const peers = wantedPeers(plan, net.id);
      const c = peerChanges(sb.peers, peers);
      // Deletions wait until the rules no longer send anything there (step 5): a connection
      // DNATed to a vanished address meanwhile would lose its packets to an unanswered ARP.
      // Entries the kernel already dropped must not stop the set: -force goes past them.
      await this.ip(sb.path, c.ipDel, true);
      await this.fdb(sb.path, c.fdbDel, true);
      lateDeletes.push(async () => {
        await this.ip(sb.path, c.ipDelLate, true);
        await this.fdb(sb.path, c.fdbDelLate, true);
      });
      try {
        await this.fdb(sb.path, c.fdbAdd);
        await this.ip(sb.path, c.ipAdd);
        for (const [ip, w] of peers) sb.peers.set(ip, w);
      } catch (e) {
        // Not recorded: the next apply adds them again (replace is idempotent).
        this.fail(e, { networkId: net.id });
      }
    }
    return lateDeletes;
  }

  /** Step 4. Containers: adopt what a previous run made, create the rest (one batch per container netns). */
  private async attachContainers(want: DesiredState): Promise<void> {
    // Adopted containers first: their gateway addresses must be known before new ones are handed out.
    const order = [...want.byContainer.keys()].sort((a, b) => Number(this.unclaimedGw.has(gwVethName(b))) - Number(this.unclaimedGw.has(gwVethName(a))));
    for (const containerId of order) {
      const eps = want.byContainer.get(containerId)!;
      try {
        await this.attachContainer(containerId, eps, want.overlays);
      } catch (e) {
        this.fail(e, { containerId });
      }
    }
  }

  /** Leftovers of a previous run that the plan no longer has. */
  private async dropLeftovers(): Promise<void> {
    for (const sb of this.sandboxes.values()) {
      await this.ip(sb.path, [...sb.unclaimed].map((v) => `link delete ${v}`), true).catch(() => undefined);
      sb.unclaimed.clear();
    }
    await this.ip(this.node, [...this.unclaimedGw].map((v) => `link delete ${v}`), true).catch(() => undefined);
    this.unclaimedGw.clear();
  }

  /** Step 5. nftables: per container VIPs (and routing-mesh replies), the ingress sandbox's balancer, the node's published ports. */
  private async writeRules(plan: NodeNetworkPlan, want: DesiredState): Promise<void> {
    const { ingressNet } = want;
    const replyNodes: ReplyNode[] = (plan.ingressNodes ?? []).map((n) => ({ ip: n.ip, mac: (n.mac ?? macFromIp(n.ip)).toLowerCase(), mark: ingressReplyMark(n.ip) }));
    for (const [containerId, eps] of want.byContainer) {
      const gw = this.gws.get(containerId);
      if (!gw) continue;
      const nets = new Set(eps.filter((e) => this.endpoints.has(epKey(containerId, e.networkId))).map((e) => e.networkId));
      const ingressEp = ingressNet ? this.endpoints.get(epKey(containerId, ingressNet.id)) : undefined;
      // Routes first: a mark whose table is not there yet falls through to `main`, never the other way round.
      if (ingressEp) await this.syncReplyRoutes(containerId, gw.netnsPath, ingressEp.ifname, replyNodes, meshUdpPorts(plan, containerId), plan.ingressEndpoint?.ip);
      const reply = ingressEp && replyNodes.length ? { ifname: ingressEp.ifname, nodes: replyNodes } : undefined;
      await this.nft(`c:${containerId}`, gw.netnsPath, containerScript(containerVipTargets(plan.services, nets), reply));
    }
    const ingressSb = ingressNet && this.sandboxes.get(sandboxName(this.options.sandboxPrefix, ingressNet.id));
    const { published, balanced } = publishedPorts(plan, ingressNet, ingressSb ? INGRESS_GW_IP : undefined, (id) => this.gws.get(id)?.ip);
    if (ingressSb) await this.nft(`s:${ingressSb.name}`, ingressSb.path, ingressScript(balanced));
    await this.nft('node', this.node, nodeScript(published));
  }

  /** Step 6. The resolver's view. */
  private updateZone(plan: NodeNetworkPlan): void {
    const zone = buildZone(plan, (id) => this.gws.get(id)?.ip);
    this.resolver?.setZone(zone);
    // A name that does not resolve is a question about this zone: its changes go to the debug log.
    const zoneText = JSON.stringify(zone);
    if (zoneText !== this.lastZone) {
      this.lastZone = zoneText;
      this.options.log.debug({ zone }, 'resolver zone changed');
    }
  }

  private async createSandbox(name: string, net: OverlayNetworkPlan, ingress: NodeNetworkPlan | undefined): Promise<void> {
    const path = `${NETNS_DIR}/${name}`;
    const vx = transientVxlanName(net.vni);
    await exec(undefined, 'ip', ['netns', 'add', name]);
    this.sandboxes.set(name, { name, path, vni: net.vni, subnet: net.subnet, peers: new Map(), unclaimed: new Set() });
    // The VXLAN device is made in the node namespace, so its UDP socket listens on the underlay, then moved in.
    await this.ip(this.node, [
      `link add ${vx} mtu ${net.mtu ?? OVERLAY_MTU} type vxlan id ${net.vni} dstport ${VXLAN_PORT} nolearning proxy local ${net.vxlanLocal ?? this.nodeAddr}`,
      `link set ${vx} netns ${name}`,
    ]);
    const lines = [
      'link set lo up',
      `link add ${SANDBOX_BRIDGE} mtu ${net.mtu ?? OVERLAY_MTU} type bridge`,
      `link set ${vx} name ${SANDBOX_VXLAN}`,
      `link set ${SANDBOX_VXLAN} master ${SANDBOX_BRIDGE}`,
      `link set ${SANDBOX_VXLAN} up`,
    ];
    if (ingress?.ingressEndpoint) {
      const lb = ingress.ingressEndpoint;
      lines.push(
        `link set ${SANDBOX_BRIDGE} address ${lb.mac ?? macFromIp(lb.ip)}`,
        `addr add ${lb.ip}/${parseSubnet(net.subnet).prefixLen} dev ${SANDBOX_BRIDGE}`,
        `link add ${INGRESS_GW_IFNAME} type veth peer name ${INGRESS_GW_HOST_VETH} netns ${nsRef(this.node)}`,
        `addr add ${INGRESS_GW_IP}/${gwPrefixLen} dev ${INGRESS_GW_IFNAME}`,
        `link set ${INGRESS_GW_IFNAME} up`,
      );
    }
    lines.push(`link set ${SANDBOX_BRIDGE} up`);
    if (ingress?.ingressEndpoint) lines.push(`route add default via ${GW_BRIDGE.gateway} dev ${INGRESS_GW_IFNAME}`);
    await this.ip(path, lines);
    // Bridged frames skip netfilter here: the sandbox is plain L2 (the ingress balancer routes, so it still sees its traffic).
    await sysctl(path, 'net.bridge.bridge-nf-call-iptables', '0');
    if (ingress?.ingressEndpoint) {
      this.sandboxes.get(name)!.lbIp = ingress.ingressEndpoint.ip;
      await sysctls(path, { 'net.ipv4.ip_forward': '1', ...ownedNamespaceSysctls() });
      await this.ip(this.node, [`link set ${INGRESS_GW_HOST_VETH} master ${GW_BRIDGE.device}`, `link set ${INGRESS_GW_HOST_VETH} up`]);
    }
    this.options.log.debug({ network: net.name, vni: net.vni, sandbox: name }, 'overlay sandbox created');
  }

  private async removeSandboxByName(name: string): Promise<void> {
    const path = `${NETNS_DIR}/${name}`;
    // Devices go first: a namespace is freed lazily, and its VNI must be free for a re-create right away.
    await exec(path, 'ip', ['link', 'delete', SANDBOX_VXLAN], { allowFail: true });
    if (this.sandboxes.get(name)?.lbIp) await exec(this.node, 'ip', ['link', 'delete', INGRESS_GW_HOST_VETH], { allowFail: true });
    await exec(undefined, 'ip', ['netns', 'delete', name], { allowFail: true });
    this.sandboxes.delete(name);
    for (const [k, ep] of this.endpoints) if (ep.sandbox === name) this.endpoints.delete(k);
    this.nftApplied.delete(`s:${name}`);
  }

  private async attachContainer(containerId: string, eps: LocalEndpointPlan[], overlays: Map<string, OverlayNetworkPlan>): Promise<void> {
    const ns = eps[0].netnsPath;
    const todo = eps.filter((e) => !this.endpoints.has(epKey(containerId, e.networkId)));
    if (!todo.length && this.gws.has(containerId)) return;
    const links = await ipJson<LinkInfo>(ns, ['addr', 'show']);
    if (!links.length) throw new Error(`container network namespace ${ns} is gone`);
    const used = new Set(links.map((l) => l.ifname));
    const freeIf = () => {
      for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
    };
    const lines: string[] = ['link set lo up'];
    const sandboxLines = new Map<string, string[]>();
    const made: Endpoint[] = [];
    for (const e of todo) {
      const net = overlays.get(e.networkId)!;
      const sbName = sandboxName(this.options.sandboxPrefix, net.id);
      const sb = this.sandboxes.get(sbName);
      if (!sb) throw new Error(`sandbox of network ${net.name} missing`);
      const veth = sandboxVethName(containerId);
      const mac = (e.mac ?? macFromIp(e.ip)).toLowerCase();
      const ep: Endpoint = { containerId, networkId: net.id, sandbox: sbName, netnsPath: ns, ip: e.ip, mac, ifname: e.ifname ?? '', veth };
      // A previous run's veth: keep it if the container side is what the plan says.
      const have = links.find((l) => l.address?.toLowerCase() === mac && (l.addr_info ?? []).some((a) => a.local === e.ip));
      if (sb.unclaimed.has(veth) && have) {
        sb.unclaimed.delete(veth);
        this.endpoints.set(epKey(containerId, net.id), { ...ep, ifname: have.ifname });
        continue;
      }
      if (sb.unclaimed.delete(veth)) await this.ip(sb.path, [`link delete ${veth}`]);
      ep.ifname = e.ifname && !used.has(e.ifname) ? e.ifname : freeIf();
      used.add(ep.ifname);
      lines.push(
        `link add ${ep.ifname} mtu ${net.mtu ?? OVERLAY_MTU} address ${mac} type veth peer name ${veth} netns ${sbName}`,
        `addr add ${e.ip}/${parseSubnet(net.subnet).prefixLen} dev ${ep.ifname}`,
        `link set ${ep.ifname} up`,
      );
      push(sandboxLines, sb.path, `link set ${veth} master ${SANDBOX_BRIDGE}`, `link set ${veth} up`);
      made.push(ep);
    }
    let gw = this.gws.get(containerId);
    const nodeLines: string[] = [];
    if (!gw) {
      const hostVeth = gwVethName(containerId);
      const have = links.find((l) => (l.addr_info ?? []).some((a) => a.family === 'inet' && inGwSubnet(a.local)));
      if (this.unclaimedGw.delete(hostVeth) && have) {
        gw = { containerId, netnsPath: ns, ip: have.addr_info!.find((a) => inGwSubnet(a.local))!.local, ifname: have.ifname, hostVeth };
      } else {
        const ifname = freeIf();
        used.add(ifname);
        gw = { containerId, netnsPath: ns, ip: this.allocateGwIp(), ifname, hostVeth };
        lines.push(
          `link add ${ifname} type veth peer name ${hostVeth} netns ${nsRef(this.node)}`,
          `addr add ${gw.ip}/${gwPrefixLen} dev ${ifname}`,
          `link set ${ifname} up`,
        );
        // A container on the default bridge that joins an overlay (`docker network connect`) keeps
        // its bridge route out: it must still have one when it leaves the overlay again.
        if (!(await ipJson<object>(ns, ['route', 'show', 'default'])).length) lines.push(`route replace default via ${GW_BRIDGE.gateway} dev ${ifname}`);
        nodeLines.push(`link set ${hostVeth} master ${GW_BRIDGE.device}`, `link set ${hostVeth} up`);
      }
      this.gws.set(containerId, gw);
    }
    try {
      if (lines.length > 1) await this.ip(ns, lines);
      for (const [path, l] of sandboxLines) await this.ip(path, l);
      await this.ip(this.node, nodeLines);
    } catch (e) {
      // Undo this container's half: its veths (deleting one end removes both).
      for (const ep of made) await exec(ns, 'ip', ['link', 'delete', ep.ifname], { allowFail: true });
      if (nodeLines.length) await exec(this.node, 'ip', ['link', 'delete', gw.hostVeth], { allowFail: true });
      this.gws.delete(containerId);
      throw e;
    }
    for (const ep of made) this.endpoints.set(epKey(containerId, ep.networkId), ep);
    if (made.length) {
      // Routing-mesh requests arrive with the client's address on an interface that is not the
      // route back to it (the reply goes by mark): strict reverse-path filtering would drop them.
      await sysctls(ns, {
        'net.ipv4.conf.all.rp_filter': '0',
        ...Object.fromEntries(made.map((ep) => [`net.ipv4.conf.${ep.ifname}.rp_filter`, '0'])),
        ...ownedNamespaceSysctls(),
      });
    }
  }

  /**
   * Inside a task container on the ingress network: one rule and table per ingress node, so a
   * reply marked with that node (containerScript) goes back to its ingress endpoint. Read from
   * the kernel only when the wanted set changed; rules of nodes that left are removed.
   */
  private async syncReplyRoutes(containerId: string, ns: string, ifname: string, nodes: ReplyNode[], udpPorts: number[], ownIp: string | undefined): Promise<void> {
    const key = `${ifname} ${nodes.map((n) => n.ip).sort().join(',')} udp ${udpPorts.join(',')}`;
    if (this.replyRoutes.get(containerId) === key) return;
    const rules = await ipJson<RuleEntry>(ns, ['rule', 'show']);
    const routes = await ipJson<RouteEntry>(ns, ['route', 'show', 'table', 'all']);
    const { drop, add } = replyRouteCommands(rules, routes, ifname, nodes, udpPorts, ownIp);
    try {
      await this.ip(ns, drop, true);
      await this.ip(ns, add);
      this.replyRoutes.set(containerId, key);
    } catch (e) {
      this.fail(e, { containerId });
    }
  }

  private allocateGwIp(): string {
    const used = new Set([...this.gws.values()].map((g) => g.ip));
    const base = parseIp(GW_BRIDGE.gateway);
    for (let n = base + 2; ; n++) {
      const ip = formatIp(n);
      if (!used.has(ip)) return ip;
    }
  }

  // --- kernel calls, counted ---

  private async ip(ns: NetnsPath, lines: string[], force = false): Promise<void> {
    if (!lines.length) return;
    this.report.ipBatches++;
    if (force) await exec(ns, 'ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
    else await ipBatch(ns, lines);
  }

  private async fdb(ns: NetnsPath, lines: string[], force = false): Promise<void> {
    if (!lines.length) return;
    this.report.bridgeBatches++;
    await bridgeBatch(ns, lines, force);
  }

  private async nft(key: string, ns: NetnsPath, script: string, allowFail = false): Promise<void> {
    if (this.nftApplied.get(key) === script) return;
    this.report.nftTransactions++;
    try {
      await nftApply(ns, script);
      this.nftApplied.set(key, script);
    } catch (e) {
      if (!allowFail) this.fail(e, { containerId: key.startsWith('c:') ? key.slice(2) : undefined });
    }
  }

  private fail(e: unknown, where: { containerId?: string; networkId?: string } = {}): void {
    this.report.errors.push({ ...where, message: (e as Error).message });
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
  if (!(link?.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === want)) cmds.push(`addr add ${want} dev ${dev}`);
  if (!link?.flags?.includes('UP')) cmds.push(`link set ${dev} up`);
  return cmds;
}

function freshReport(): ApplyReport {
  return { ipBatches: 0, bridgeBatches: 0, nftTransactions: 0, errors: [] };
}

function inGwSubnet(ip: string): boolean {
  const s = parseSubnet(GW_BRIDGE.subnet);
  return ((parseIp(ip) & ~((1 << (32 - s.prefixLen)) - 1)) >>> 0) === s.base;
}

/** How `ip link … netns X` names a namespace: a /run/netns name, or a PID living in it. */
function nsRef(ns: NetnsPath): string {
  if (ns === undefined) return String(process.pid);
  const named = /^\/run\/netns\/([^/]+)$/.exec(ns);
  if (named) return named[1];
  const pid = /^\/proc\/(\d+)\/ns\/net$/.exec(ns);
  if (pid) return pid[1];
  throw new Error(`cannot name namespace ${ns} for ip link: use /run/netns/<name> or /proc/<pid>/ns/net`);
}

function readHostResolvers(): Upstream[] {
  try {
    return upstreamsFromResolvConf(fs.readFileSync('/etc/resolv.conf', 'utf8'));
  } catch {
    return [];
  }
}
