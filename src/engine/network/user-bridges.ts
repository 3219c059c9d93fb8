import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { newHexId } from '../../util/ids.js';
import { badRequest, conflict, forbidden, notFound } from '../../util/errors.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import { AddressInUseError, AddressPool, type PoolState } from './ipam.js';
import { AddressPool6, type Pool6State } from './ipam6.js';
import { canonicalIp6, contains6, formatIp6, isIpv6, isSubnet6, overlaps6, parseSubnet6 } from './ipv6.js';
import { inNetns, ipBatch, ipJson, nftApply, SELF, type IpAddrInfo, type IpLink, type NetnsTarget } from './ip.js';
import { contains, macFromIp, overlaps, parseSubnet } from './ipv4.js';
import { chooseLocalSubnet, firstHost, validIp, validSubnet } from './local-pools.js';
import { DEFAULT_BRIDGE, NFT_TABLE, hostVethName } from './names.js';
import { readJsonFile, writeJsonFileAtomic } from './state-file.js';
import { DnsServer, upstreamsFromResolvConf } from '../../agent/network/dns-server.js';
import { emptyZone, type DnsZone } from '../../agent/network/dns-zone.js';

/** The option naming a bridge's Linux device, as in Docker. */
export const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';
const STATE_FILE = 'user-bridges.json';
const NAT_CHAIN = 'user_bridge_masquerade';
/** Docker's DOCKER-ISOLATION: no traffic between two bridges, none out of an internal one. */
const ISOLATION_CHAIN = 'user_bridge_isolation';
const MTU = 1500;
/** Docker's embedded resolver address, as containers' resolv.conf names it. */
export const EMBEDDED_DNS = '127.0.0.11';
/** nft table in a container's netns sending 127.0.0.11:53 to the resolver on a gateway. */
const NFT_DNS_TABLE = 'shoal_dns';

/** One container's endpoint on a user-defined bridge. */
export interface UserEndpoint {
  containerId: string;
  endpointId: string;
  ip: string;
  mac: string;
  hostVeth: string;
  /** The interface inside the container (eth0, eth1, …). */
  ifname: string;
  aliases: string[];
  /** Given with `--ip`. */
  staticIp: boolean;
  /** The IPv6 address on an `--ipv6` network. */
  ip6?: string;
  /** Given with `--ip6`. */
  staticIp6?: boolean;
  /** `--link container:alias` on this network: the alias resolves for this container only. */
  links?: string[];
}

/** A user-defined bridge network as remembered across daemon restarts. */
export interface UserNetwork {
  id: string;
  name: string;
  created: string;
  device: string;
  subnet: string;
  gateway: string;
  /** `--ip-range`: where dynamic addresses come from. */
  ipRange?: string;
  /** The subnet was the user's (`--subnet`): only then is `--ip` allowed, as in Docker. */
  userSubnet: boolean;
  /** `--aux-address`: names for addresses kept out of the pool. */
  auxAddresses?: Record<string, string>;
  /** `--ipam-opt`; absent when none were given (inspect shows null then, as Docker). */
  ipamOptions?: Record<string, string>;
  internal: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  pool: PoolState;
  endpoints: Record<string, UserEndpoint>;
  /** `--ipv6`: every endpoint gets an address of the IPv6 subnet too. */
  enableIPv6?: boolean;
  /** The IPv6 subnet (`--subnet fd00::/64`); given without `--ipv6` it is only shown, as in dockerd. */
  v6?: IPv6Config;
}

/** The IPv6 side of a bridge network. */
export interface IPv6Config {
  subnet: string;
  /** The bridge's IPv6 address. */
  gateway: string;
  /** As given (inspect's IPAM shows the request): maybe none. */
  requested: { Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> };
  pool: Pool6State;
}

interface State {
  networks: Record<string, UserNetwork>;
}

/** What `POST /networks/create` carries for a bridge (swagger NetworkCreateRequest). */
export interface BridgeCreateRequest {
  Name: string;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: { Driver?: string; Config?: { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> | null }[] | null; Options?: Record<string, string> | null } | null;
  EnableIPv6?: boolean;
}

export interface ConnectOptions {
  ip?: string;
  /** `--ip6`. */
  ip6?: string;
  aliases?: string[];
  /** Asked for (`network connect --mac-address`); else derived from the address, as Docker does. */
  mac?: string;
  /** `container:alias` (or `container`), resolvable by this container alone. */
  links?: string[];
}

/**
 * User-defined bridge networks (`docker network create NAME`): a Linux bridge `br-<id>` each in
 * the daemon's netns, masquerading out unless internal, isolated from each other and from the
 * default bridge, and an embedded DNS server on each gateway resolving container names and
 * aliases of the networks the asking container is on.
 */
export class UserBridges {
  /** Filled in by the container manager: a container's name without the slash. */
  containerName: (containerId: string) => string | undefined = () => undefined;

  private queue: Promise<unknown> = Promise.resolve();
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

  static async open(config: DaemonConfig, log: Logger, reserved: string[], netns: NetnsTarget = SELF): Promise<UserBridges> {
    const stateFile = path.join(daemonPaths(config).network, STATE_FILE);
    const state = readJsonFile<State>(stateFile) ?? { networks: {} };
    const ub = new UserBridges(log, stateFile, state, netns, reserved);
    for (const n of Object.values(state.networks)) await ub.ensureBridge(n);
    await ub.forgetVanishedEndpoints();
    await ub.applyRules();
    ub.save();
    // A resolver that cannot listen costs names, not the daemon.
    for (const n of Object.values(state.networks)) await ub.startDns(n).catch((err) => log.warn({ err, network: n.name }, 'embedded DNS not started'));
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
    return this.list().filter((n) => n.endpoints[containerId]).map((n) => ({ network: n, endpoint: n.endpoints[containerId] }));
  }

  create(req: BridgeCreateRequest, takenNames: (name: string) => boolean): Promise<UserNetwork> {
    return this.serialized(async () => {
      const name = req.Name;
      if (takenNames(name) || this.list().some((n) => n.name === name)) throw conflict(`network with name ${name} already exists`);
      if (req.IPAM?.Driver && req.IPAM.Driver !== 'default') throw badRequest(`IPAM driver ${req.IPAM.Driver} not found`);
      const all = req.IPAM?.Config ?? [];
      // dockerd (getIpamConfig) sorts the configs by the family of their subnet.
      const v6Configs = all.filter((c) => c.Subnet?.includes(':'));
      const configs = all.filter((c) => !c.Subnet?.includes(':'));
      if (configs.length > 1 || v6Configs.length > 1) throw badRequest('bridge networks of this daemon take one IPv4 and one IPv6 subnet');
      const cfg = configs[0] ?? {};
      const v6 = this.ipv6Config(v6Configs[0], !!req.EnableIPv6);
      const inUse = [...this.reserved, ...this.list().map((n) => n.subnet)];
      let subnet: string;
      if (cfg.Subnet) {
        if (!validSubnet(cfg.Subnet)) throw badRequest(`invalid CIDR address: ${cfg.Subnet}`);
        subnet = cfg.Subnet;
        const s = parseSubnet(subnet);
        if (inUse.some((u) => overlaps(parseSubnet(u), s))) throw forbidden('Pool overlaps with other one on this address space');
      } else {
        if (cfg.Gateway) throw badRequest('no matching subnet for gateway ' + cfg.Gateway);
        // As dockerd: a pool the host already routes (an uplink, a lab network) is skipped too.
        const routes = (await ipJson<{ dst?: string }>(this.netns, ['-4', 'route', 'show', 'table', 'all'])).map((r) => r.dst ?? '')
          .filter((d) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(d)).map((d) => (d.includes('/') ? d : `${d}/32`));
        const chosen = chooseLocalSubnet([...inUse, ...routes.filter((r) => !r.startsWith('127.'))]);
        if (!chosen) throw badRequest('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        subnet = chosen;
      }
      if (cfg.IPRange) {
        if (!cfg.Subnet || !validSubnet(cfg.IPRange)) throw badRequest(`no matching subnet for range ${cfg.IPRange}`);
        const r = parseSubnet(cfg.IPRange);
        const s = parseSubnet(subnet);
        if (r.prefixLen < s.prefixLen || !contains(s, cfg.IPRange.split('/')[0])) throw badRequest(`no matching subnet for range ${cfg.IPRange}`);
      }
      const gateway = cfg.Gateway ?? firstHost(subnet);
      if (!validIp(gateway) || !contains(parseSubnet(subnet), gateway)) throw forbidden(`no matching subnet for gateway ${gateway}`);
      const aux = { ...(cfg.AuxiliaryAddresses ?? {}) };
      for (const a of Object.values(aux)) {
        if (!validIp(a) || !contains(parseSubnet(subnet), a)) throw forbidden(`no matching subnet for aux-address ${a}`);
      }
      const id = newHexId();
      const options = { ...(req.Options ?? {}) };
      const device = options[BRIDGE_NAME_OPTION] || `br-${id.slice(0, 12)}`;
      if (device.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(device)) throw badRequest(`invalid bridge name ${device}`);
      if (this.list().some((n) => n.device === device) || device === DEFAULT_BRIDGE.device) throw forbidden(`bridge name ${device} is already in use`);
      const n: UserNetwork = {
        id, name, created: new Date().toISOString(), device, subnet, gateway, ...(cfg.IPRange ? { ipRange: cfg.IPRange } : {}), userSubnet: !!cfg.Subnet,
        ...(Object.keys(aux).length ? { auxAddresses: aux } : {}),
        ...(req.IPAM?.Options ? { ipamOptions: { ...req.IPAM.Options } } : {}),
        internal: !!req.Internal, labels: { ...(req.Labels ?? {}) }, options,
        pool: AddressPool.empty(subnet, [gateway, ...Object.values(aux)], cfg.IPRange).toJSON(), endpoints: {},
        ...(req.EnableIPv6 ? { enableIPv6: true } : {}), ...(v6 ? { v6 } : {}),
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
      if (Object.keys(n.endpoints).length) throw forbidden(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
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
      if (!n.v6) throw badRequest('user specified IP address is supported only when connecting to networks with user configured subnets');
      if (!n.enableIPv6 || !contains6(parseSubnet6(n.v6.subnet), opts.ip6)) throw badRequest(`no configured subnet or ip-range contain the IP address ${opts.ip6}`);
    }
    if (!opts.ip) return;
    if (!n.userSubnet) throw badRequest('user specified IP address is supported only when connecting to networks with user configured subnets');
    if (!validIp(opts.ip) || !contains(parseSubnet(n.subnet), opts.ip)) throw badRequest(`no configured subnet or ip-range contain the IP address ${opts.ip}`);
  }

  /**
   * The IPv6 side of a new network from its IPv6 IPAM config, checked as libnetwork does;
   * `--ipv6` without a subnet has no default pool to take one from (dockerd 20.10's 404).
   */
  private ipv6Config(cfg: { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> | null } | undefined, enabled: boolean): IPv6Config | undefined {
    if (!cfg?.Subnet) {
      if (enabled) throw notFound('could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network');
      return undefined;
    }
    if (!isSubnet6(cfg.Subnet)) throw badRequest(`Invalid subnet ${cfg.Subnet} : invalid CIDR address: ${cfg.Subnet}`);
    const s = parseSubnet6(cfg.Subnet);
    if (this.list().some((o) => o.v6 && overlaps6(parseSubnet6(o.v6.subnet), s))) throw forbidden('Pool overlaps with other one on this address space');
    if (cfg.IPRange) {
      const r = isSubnet6(cfg.IPRange) ? parseSubnet6(cfg.IPRange) : undefined;
      if (!r || r.prefixLen < s.prefixLen || !contains6(s, formatIp6(r.base))) throw badRequest(`no matching subnet for range ${cfg.IPRange}`);
    }
    // libnetwork's gateway: the first address of the range (of the subnet without one).
    const gateway = cfg.Gateway ?? formatIp6((cfg.IPRange ? parseSubnet6(cfg.IPRange).base : s.base) + 1n);
    if (!contains6(s, gateway)) throw forbidden(`no matching subnet for gateway ${gateway}`);
    const aux = cfg.AuxiliaryAddresses ?? {};
    for (const a of Object.values(aux)) if (!contains6(s, a)) throw forbidden(`no matching subnet for aux-address ${a}`);
    return {
      subnet: cfg.Subnet, gateway: canonicalIp6(gateway),
      requested: { ...(cfg.Gateway ? { Gateway: cfg.Gateway } : {}), ...(cfg.IPRange ? { IPRange: cfg.IPRange } : {}), ...(Object.keys(aux).length ? { AuxiliaryAddresses: { ...aux } } : {}) },
      pool: AddressPool6.empty(cfg.Subnet, [gateway, ...Object.values(aux)], cfg.IPRange).toJSON(),
    };
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
    const t = `ip ${NFT_DNS_TABLE}`;
    await nftApply(container, [
      `add table ${t}`,
      `add chain ${t} output { type nat hook output priority -100; policy accept; }`,
      `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
      `flush chain ${t} output`,
      `flush chain ${t} postrouting`,
      `add rule ${t} output ip daddr ${EMBEDDED_DNS} udp dport 53 dnat to ${gateway}:53`,
      `add rule ${t} output ip daddr ${EMBEDDED_DNS} tcp dport 53 dnat to ${gateway}:53`,
      `add rule ${t} postrouting ip saddr 127.0.0.0/8 oifname != "lo" masquerade`,
      '',
    ].join('\n'));
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
    if (n.endpoints[containerId]) throw forbidden(`endpoint with name ${this.containerName(containerId) ?? containerId} already exists in network ${n.name}`);
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
      containerId, endpointId, ip, mac: opts.mac ?? macFromIp(ip), hostVeth: hostVethName(endpointId), ifname: `eth${k}`,
      aliases: [...new Set(opts.aliases ?? [])], staticIp: !!opts.ip,
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
        ...(n.internal || !ip6 || !n.v6 || hasDefault6 ? [] : [`route add default via ${n.v6.gateway} dev ${ep.ifname}`]),
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
      const has6 = (link?.addr_info ?? []).some((a) => a.family === 'inet6' && a.local === want6.local && a.prefixlen === want6.prefixlen);
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
    const t = `${NFT_TABLE.family} ${NFT_TABLE.name}`;
    const nets = this.list();
    const lines = [
      `add table ${t}`,
      `add chain ${t} ${NAT_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`,
      `add chain ${t} ${ISOLATION_CHAIN} { type filter hook forward priority filter; policy accept; }`,
      `flush chain ${t} ${NAT_CHAIN}`,
      `flush chain ${t} ${ISOLATION_CHAIN}`,
    ];
    const devices = [DEFAULT_BRIDGE.device, ...nets.map((n) => n.device)];
    for (const n of nets) {
      const dev = `"${n.device}"`;
      if (n.internal) {
        lines.push(`add rule ${t} ${ISOLATION_CHAIN} iifname ${dev} oifname != ${dev} drop`);
        lines.push(`add rule ${t} ${ISOLATION_CHAIN} oifname ${dev} iifname != ${dev} drop`);
        continue;
      }
      lines.push(`add rule ${t} ${NAT_CHAIN} ip saddr ${n.subnet} oifname != ${dev} masquerade`);
      const others = devices.filter((d) => d !== n.device).map((d) => `"${d}"`);
      lines.push(`add rule ${t} ${ISOLATION_CHAIN} iifname ${dev} oifname { ${others.join(', ')} } drop`);
      lines.push(`add rule ${t} ${ISOLATION_CHAIN} oifname ${dev} iifname { ${others.join(', ')} } drop`);
    }
    lines.push('');
    await nftApply(this.netns, lines.join('\n'));
  }

  private async startDns(n: UserNetwork): Promise<void> {
    let host = '';
    try {
      host = fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch { /* no host resolvers: only our names answer */ }
    // The resolver runs in the daemon's netns, so the host's loopback resolvers (systemd-resolved) are reachable.
    const server = new DnsServer({ address: n.gateway, port: 53, upstreams: upstreamsFromResolvConf(host) });
    server.setZone(this.zone());
    if (this.netns.kind === 'self') await server.start();
    else return; // a socket in another netns needs the daemon there; tests of a named netns run without DNS
    this.dns.set(n.id, server);
  }

  /** Each container sees names on every user bridge it is attached to: name, aliases, short ID. */
  private zone(): DnsZone {
    const zone = emptyZone();
    const nets = this.list();
    for (const n of nets) {
      const names = (zone.names[n.id] ??= {});
      for (const ep of Object.values(n.endpoints)) {
        const own = this.endpointsOf(ep.containerId).map((x) => x.network.id);
        zone.askers[ep.ip] = own;
        const name = this.containerName(ep.containerId);
        for (const key of [name, ...ep.aliases, ep.containerId.slice(0, 12)]) {
          if (!key) continue;
          // Also qualified by the network (`web.mynet`), as libnetwork's resolver takes them.
          for (const k of [key.toLowerCase(), `${key}.${n.name}`.toLowerCase()]) names[k] = [...new Set([...(names[k] ?? []), ep.ip])];
        }
      }
    }
    // Links: a scope of the linking container's own, holding its aliases of the linked ones.
    for (const n of nets) {
      for (const ep of Object.values(n.endpoints)) {
        if (!ep.links?.length) continue;
        const scope = `link/${n.id}/${ep.containerId}`;
        const names = (zone.names[scope] ??= {});
        for (const link of ep.links) {
          const [target, alias = target] = link.split(':');
          const linked = Object.values(n.endpoints).find((o) => this.containerName(o.containerId) === target.replace(/^\//, '') || o.containerId.startsWith(target));
          if (linked) names[alias.replace(/^\//, '').toLowerCase()] = [linked.ip];
        }
        zone.askers[ep.ip] = [...(zone.askers[ep.ip] ?? []), scope];
      }
    }
    return zone;
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
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
