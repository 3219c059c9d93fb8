import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { newHexId } from '../../util/ids.js';
import { badRequest, conflict, forbidden, notFound } from '../../util/errors.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import { AddressInUseError, AddressPool } from './ipam.js';
import { AddressPool6 } from './ipam6.js';
import { contains6, isIpv6, parseSubnet6 } from './ipv6.js';
import { inNetns, ipBatch, ipJson, nftApply, SELF, type IpAddrInfo, type IpLink, type NetnsTarget } from './ip.js';
import { contains, macFromIp, parseSubnet } from '../../net/ipv4.js';
import { validIp } from './local-pools.js';
import { DEFAULT_BRIDGE, hostVethName } from './names.js';
import { readJsonFile, writeJsonFileAtomic } from './state-file.js';
import { DnsServer, upstreamsFromResolvConf } from '../../net/dns-server.js';
import type { DnsZone } from '../../net/dns-zone.js';
import { SerialQueue } from '../../util/serial-queue.js';
import {
  BRIDGE_NAME_OPTION,
  type BridgeCreateRequest,
  type ConnectOptions,
  type UserBridgesState as State,
  type UserEndpoint,
  type UserNetwork,
} from './user-network.js';
import { checkBridgeOptions } from './bridge-options.js';
import { ipv4Config, ipv6Config } from './user-bridge-config.js';
import { resolverRedirectRules, userBridgeRules } from './user-bridge-rules.js';
import { userBridgeZone } from './user-bridge-dns.js';

export { BRIDGE_NAME_OPTION, EMBEDDED_DNS } from './user-network.js';
export type { BridgeCreateRequest, ConnectOptions, IPv6Config, UserEndpoint, UserNetwork } from './user-network.js';
const STATE_FILE = 'user-bridges.json';
const MTU = 1500;

/**
 * User-defined bridge networks (`docker network create NAME`): a Linux bridge `br-<id>` each in
 * the daemon's netns, masquerading out unless internal, isolated from each other and from the
 * default bridge, and an embedded DNS server on each gateway resolving container names and
 * aliases of the networks the asking container is on.
 */
export class UserBridges {
  /** Filled in by the container manager: a container's name without the slash. */
  containerName: (containerId: string) => string | undefined = () => undefined;

  private readonly queue = new SerialQueue();
  private readonly pools = new Map<string, AddressPool>();
  private readonly pools6 = new Map<string, AddressPool6>();
  private readonly dns = new Map<string, DnsServer>();

  private constructor(
    readonly log: Logger,
    private readonly stateFile: string,
    private readonly state: State,
    private readonly netns: NetnsTarget,
    /** Subnets the daemon uses besides these networks (default bridge, swarm's gateway bridge). */
    private readonly reserved: string[],
  ) {
    for (const n of Object.values(state.networks)) {
      this.pools.set(n.id, new AddressPool(n.pool));
      if (n.v6) this.pools6.set(n.id, new AddressPool6(n.v6.pool));
    }
  }

  static async open(
    config: DaemonConfig,
    log: Logger,
    reserved: string[],
    netns: NetnsTarget = SELF,
  ): Promise<UserBridges> {
    const stateFile = path.join(daemonPaths(config).network, STATE_FILE);
    const state = readJsonFile<State>(stateFile) ?? { networks: {} };
    const ub = new UserBridges(log, stateFile, state, netns, reserved);
    for (const n of Object.values(state.networks)) await ub.ensureBridge(n);
    await ub.forgetVanishedEndpoints();
    await ub.applyRules();
    ub.save();
    // A resolver that cannot listen costs names, not the daemon.
    for (const n of Object.values(state.networks))
      await ub.startDns(n).catch((err) => log.warn({ err, network: n.name }, 'embedded DNS not started'));
    return ub;
  }

  async close(): Promise<void> {
    for (const d of this.dns.values()) await d.stop().catch(() => undefined);
    this.dns.clear();
  }

  list(): UserNetwork[] {
    return Object.values(this.state.networks);
  }

  /** By full ID, name, or unique ID prefix; undefined when none. */
  find(ref: string): UserNetwork | undefined {
    const all = this.list();
    const exact = all.find((n) => n.id === ref) ?? all.find((n) => n.name === ref);
    if (exact) return exact;
    const byPrefix = ref ? all.filter((n) => n.id.startsWith(ref)) : [];
    return byPrefix.length === 1 ? byPrefix[0] : undefined;
  }

  /** The container's endpoints, by network. */
  endpointsOf(containerId: string): { network: UserNetwork; endpoint: UserEndpoint }[] {
    return this.list()
      .filter((n) => n.endpoints[containerId])
      .map((n) => ({ network: n, endpoint: n.endpoints[containerId] }));
  }

  /**
   * `swarm`: this node's network of a node-local swarm network (`--scope swarm`), made by the
   * agent for a task, with the swarm network's ID (dockerd's CreateManagedNetwork).
   */
  create(
    req: BridgeCreateRequest,
    takenNames: (name: string) => boolean,
    swarm?: { id: string },
  ): Promise<UserNetwork> {
    return this.serialized(async () => {
      const name = req.Name;
      if (takenNames(name) || this.list().some((n) => n.name === name))
        throw conflict(`network with name ${name} already exists`);
      if (req.IPAM?.Driver && req.IPAM.Driver !== 'default')
        throw badRequest(`IPAM driver ${req.IPAM.Driver} not found`);
      const all = req.IPAM?.Config ?? [];
      // dockerd (getIpamConfig) sorts the configs by the family of their subnet.
      const v6Configs = all.filter((c) => c.Subnet?.includes(':'));
      const configs = all.filter((c) => !c.Subnet?.includes(':'));
      if (configs.length > 1 || v6Configs.length > 1)
        throw badRequest('bridge networks of this daemon take one IPv4 and one IPv6 subnet');
      const cfg = configs[0] ?? {};
      const v6 = ipv6Config(v6Configs[0], !!req.EnableIPv6, this.list());
      const inUse = [...this.reserved, ...this.list().map((n) => n.subnet)];
      const { subnet, gateway, aux } = await ipv4Config(cfg, inUse, () => this.hostRoutes());
      const id = swarm?.id ?? newHexId();
      const options = { ...(req.Options ?? {}) };
      checkBridgeOptions(options);
      const device = options[BRIDGE_NAME_OPTION] || `br-${id.slice(0, 12)}`;
      if (device.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(device)) throw badRequest(`invalid bridge name ${device}`);
      if (this.list().some((n) => n.device === device) || device === DEFAULT_BRIDGE.device)
        throw forbidden(`bridge name ${device} is already in use`);
      const n: UserNetwork = {
        id,
        name,
        created: new Date().toISOString(),
        device,
        subnet,
        gateway,
        ...(cfg.IPRange ? { ipRange: cfg.IPRange } : {}),
        userSubnet: !!cfg.Subnet,
        ...(Object.keys(aux).length ? { auxAddresses: aux } : {}),
        ...(req.IPAM?.Options ? { ipamOptions: { ...req.IPAM.Options } } : {}),
        internal: !!req.Internal,
        labels: { ...(req.Labels ?? {}) },
        options,
        pool: AddressPool.empty(subnet, [gateway, ...Object.values(aux)], cfg.IPRange).toJSON(),
        endpoints: {},
        ...(req.EnableIPv6 ? { enableIPv6: true } : {}),
        ...(v6 ? { v6 } : {}),
        ...(swarm ? { swarmScope: true } : {}),
      };
      this.state.networks[id] = n;
      this.pools.set(id, new AddressPool(n.pool));
      if (v6) this.pools6.set(id, new AddressPool6(v6.pool));
      try {
        await this.ensureBridge(n);
        await this.applyRules();
        await this.startDns(n);
      } catch (e) {
        delete this.state.networks[id];
        this.pools.delete(id);
        this.pools6.delete(id);
        await this.dropKernel(n);
        await this.applyRules().catch(() => undefined);
        throw e;
      }
      this.save();
      this.log.info({ id, name, subnet, device }, 'bridge network created');
      return n;
    });
  }

  remove(ref: string): Promise<UserNetwork> {
    return this.serialized(async () => {
      const n = this.find(ref);
      if (!n) throw notFound(`network ${ref} not found`);
      if (Object.keys(n.endpoints).length)
        throw forbidden(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
      delete this.state.networks[n.id];
      this.pools.delete(n.id);
      this.pools6.delete(n.id);
      this.save();
      await this.dropKernel(n);
      await this.applyRules();
      this.log.info({ id: n.id, name: n.name }, 'bridge network removed');
      return n;
    });
  }

  /** Events (`docker events`): connect and disconnect of containers. Set by the engine. */
  onEvent: (action: 'connect' | 'disconnect', network: UserNetwork, containerId: string) => void = () => undefined;

  /** Checks an endpoint request before anything is made (`--ip` needs a user subnet, inside it). */
  validate(ref: string, opts: ConnectOptions): void {
    const n = this.find(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    if (opts.ip6) {
      if (!isIpv6(opts.ip6)) throw badRequest(`Invalid IPv6 address: ${opts.ip6})`);
      if (!n.v6)
        throw badRequest(
          'user specified IP address is supported only when connecting to networks with user configured subnets',
        );
      if (!n.enableIPv6 || !contains6(parseSubnet6(n.v6.subnet), opts.ip6))
        throw badRequest(`no configured subnet or ip-range contain the IP address ${opts.ip6}`);
    }
    if (!opts.ip) return;
    if (!n.userSubnet)
      throw badRequest(
        'user specified IP address is supported only when connecting to networks with user configured subnets',
      );
    if (!validIp(opts.ip) || !contains(parseSubnet(n.subnet), opts.ip))
      throw badRequest(`no configured subnet or ip-range contain the IP address ${opts.ip}`);
  }

  /** IPv4 destinations the daemon's netns routes: dockerd skips pools that overlap them. */
  private async hostRoutes(): Promise<string[]> {
    return (await ipJson<{ dst?: string }>(this.netns, ['-4', 'route', 'show', 'table', 'all'])).map(
      (r) => r.dst ?? '',
    );
  }

  /** Gives the container whose init is `pid` an interface on the network. */
  connect(ref: string, containerId: string, pid: number, opts: ConnectOptions = {}): Promise<UserEndpoint> {
    return this.serialized(() => this.doConnect(ref, containerId, pid, opts));
  }

  disconnect(ref: string, containerId: string): Promise<boolean> {
    return this.serialized(async () => {
      const n = this.find(ref);
      const ep = n?.endpoints[containerId];
      if (!n || !ep) return false;
      await this.drop(n, ep);
      return true;
    });
  }

  /** Every endpoint of a container that stopped. */
  disconnectAll(containerId: string): Promise<void> {
    return this.serialized(async () => {
      for (const { network, endpoint } of this.endpointsOf(containerId)) await this.drop(network, endpoint);
    });
  }

  /**
   * Makes 127.0.0.11:53 in the container's netns reach the resolver on `gateway` (as dockerd's
   * per-container DNAT does): DNAT in output, then the loopback source masqueraded to the
   * container's address there, so the resolver knows who asks. Loopback sources may leave
   * through ethN only with route_localnet.
   */
  async redirectResolver(pid: number, gateway: string): Promise<void> {
    const container: NetnsTarget = { kind: 'pid', pid };
    await inNetns(container, 'sysctl', ['-qw', 'net.ipv4.conf.all.route_localnet=1']);
    await nftApply(container, resolverRedirectRules(gateway));
  }

  /** Names changed (a rename): the resolvers learn them. */
  refreshDns(): void {
    const zone = this.zone();
    for (const d of this.dns.values()) d.setZone(zone);
  }

  private async doConnect(ref: string, containerId: string, pid: number, opts: ConnectOptions): Promise<UserEndpoint> {
    this.validate(ref, opts);
    const n = this.find(ref)!;
    const pool = this.pools.get(n.id)!;
    const container: NetnsTarget = { kind: 'pid', pid };
    if (n.endpoints[containerId])
      throw forbidden(
        `endpoint with name ${this.containerName(containerId) ?? containerId} already exists in network ${n.name}`,
      );
    const pool6 = n.enableIPv6 ? this.pools6.get(n.id) : undefined;
    let ip: string;
    let ip6: string | undefined;
    try {
      ip = opts.ip ? pool.claim(containerId, opts.ip) : pool.allocate(containerId);
      try {
        if (pool6) ip6 = opts.ip6 ? pool6.claim(containerId, opts.ip6) : pool6.allocate(containerId);
      } catch (e) {
        pool.release(containerId);
        throw e;
      }
    } catch (e) {
      if (e instanceof AddressInUseError) throw forbidden('Address already in use');
      throw e;
    }
    const links = new Set((await ipJson<IpLink>(container, ['link', 'show'])).map((l) => l.ifname));
    let k = 0;
    while (links.has(`eth${k}`)) k++;
    const endpointId = newHexId();
    const ep: UserEndpoint = {
      containerId,
      endpointId,
      ip,
      mac: opts.mac ?? macFromIp(ip),
      hostVeth: hostVethName(endpointId),
      ifname: `eth${k}`,
      aliases: [...new Set(opts.aliases ?? [])],
      staticIp: !!opts.ip,
      ...(ip6 ? { ip6, ...(opts.ip6 ? { staticIp6: true } : {}) } : {}),
      ...(opts.links?.length ? { links: [...opts.links] } : {}),
    };
    n.endpoints[containerId] = ep;
    // Recorded before the kernel is touched: a crash in between leaves an address taken, never one given twice.
    this.save();
    const prefixLen = parseSubnet(n.subnet).prefixLen;
    try {
      await ipBatch(this.netns, [
        `link add ${ep.hostVeth} mtu ${MTU} type veth peer name ${ep.ifname} mtu ${MTU} address ${ep.mac} netns ${pid}`,
        `link set ${ep.hostVeth} master ${n.device}`,
        `link set ${ep.hostVeth} up`,
      ]);
      // An internal network gives no way out, so no default route (as libnetwork).
      const hasDefault = (await ipJson<unknown>(container, ['route', 'show', 'default'])).length > 0;
      const hasDefault6 = !!ip6 && (await ipJson<unknown>(container, ['-6', 'route', 'show', 'default'])).length > 0;
      await ipBatch(container, [
        'link set lo up',
        `addr add ${ip}/${prefixLen} dev ${ep.ifname}`,
        // nodad: usable at once, as the bridge's own addresses are.
        ...(ip6 && n.v6 ? [`addr add ${ip6}/${parseSubnet6(n.v6.subnet).prefixLen} dev ${ep.ifname} nodad`] : []),
        `link set ${ep.ifname} up`,
        ...(n.internal || hasDefault ? [] : [`route add default via ${n.gateway} dev ${ep.ifname}`]),
        ...(n.internal || !ip6 || !n.v6 || hasDefault6
          ? []
          : [`route add default via ${n.v6.gateway} dev ${ep.ifname}`]),
      ]);
    } catch (e) {
      await this.drop(n, ep);
      throw e;
    }
    this.refreshDns();
    this.onEvent('connect', n, containerId);
    this.log.debug({ containerId, network: n.name, ip, ifname: ep.ifname }, 'connected to bridge network');
    return { ...ep };
  }

  private async drop(n: UserNetwork, ep: UserEndpoint): Promise<void> {
    await ipBatch(this.netns, [`link delete ${ep.hostVeth}`]).catch(() => undefined);
    delete n.endpoints[ep.containerId];
    this.pools.get(n.id)?.release(ep.containerId);
    this.pools6.get(n.id)?.release(ep.containerId);
    this.save();
    this.refreshDns();
    this.onEvent('disconnect', n, ep.containerId);
  }

  private async ensureBridge(n: UserNetwork): Promise<void> {
    const [link] = await ipJson<IpAddrInfo & IpLink>(this.netns, ['addr', 'show', 'dev', n.device], true);
    const cmds: string[] = [];
    // A MAC of its own: a bridge otherwise takes its lowest port's, changing as containers come and go while
    // theirs keep the old one in their ARP caches (up to ~45 s, their gateway and DNS unreachable meanwhile).
    if (!link) cmds.push(`link add ${n.device} mtu ${MTU} address ${macFromIp(n.gateway)} type bridge`);
    else if (link.address) cmds.push(`link set dev ${n.device} address ${link.address}`);
    const want = `${n.gateway}/${parseSubnet(n.subnet).prefixLen}`;
    const has = (link?.addr_info ?? []).some((a) => a.family === 'inet' && `${a.local}/${a.prefixlen}` === want);
    if (!has) cmds.push(`addr add ${want} dev ${n.device}`);
    if (n.enableIPv6 && n.v6) {
      const want6 = { local: n.v6.gateway, prefixlen: parseSubnet6(n.v6.subnet).prefixLen };
      const has6 = (link?.addr_info ?? []).some(
        (a) => a.family === 'inet6' && a.local === want6.local && a.prefixlen === want6.prefixlen,
      );
      if (!has6) cmds.push(`addr add ${want6.local}/${want6.prefixlen} dev ${n.device} nodad`);
    }
    if (!link || !(link.flags ?? []).includes('UP')) cmds.push(`link set ${n.device} up`);
    await ipBatch(this.netns, cmds);
    if (this.netns.kind === 'self') fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
    else await inNetns(this.netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  }

  private async dropKernel(n: UserNetwork): Promise<void> {
    const d = this.dns.get(n.id);
    this.dns.delete(n.id);
    await d?.stop().catch(() => undefined);
    await ipBatch(this.netns, [`link delete ${n.device}`]).catch(() => undefined);
  }

  /** Masquerading and isolation for all user bridges, rewritten whole in one transaction. */
  private async applyRules(): Promise<void> {
    await nftApply(this.netns, userBridgeRules(this.list()));
  }

  private async startDns(n: UserNetwork): Promise<void> {
    let host = '';
    try {
      host = fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      /* no host resolvers: only our names answer */
    }
    // The resolver runs in the daemon's netns, so the host's loopback resolvers (systemd-resolved) are reachable.
    const server = new DnsServer({ address: n.gateway, port: 53, upstreams: upstreamsFromResolvConf(host) });
    server.setZone(this.zone());
    if (this.netns.kind === 'self') await server.start();
    else return; // a socket in another netns needs the daemon there; tests of a named netns run without DNS
    this.dns.set(n.id, server);
  }

  private zone(): DnsZone {
    return userBridgeZone(this.list(), (id) => this.containerName(id));
  }

  /** Containers that died while the daemon was away took their veth along: their addresses are free again. */
  private async forgetVanishedEndpoints(): Promise<void> {
    const links = new Set((await ipJson<IpLink>(this.netns, ['link', 'show'])).map((l) => l.ifname));
    for (const n of this.list()) {
      for (const ep of Object.values(n.endpoints)) {
        if (links.has(ep.hostVeth)) continue;
        delete n.endpoints[ep.containerId];
        this.pools.get(n.id)?.release(ep.containerId);
        this.pools6.get(n.id)?.release(ep.containerId);
      }
    }
  }

  private save(): void {
    for (const n of this.list()) {
      n.pool = this.pools.get(n.id)!.toJSON();
      const p6 = this.pools6.get(n.id);
      if (n.v6 && p6) n.v6.pool = p6.toJSON();
    }
    writeJsonFileAtomic(this.stateFile, this.state);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}
