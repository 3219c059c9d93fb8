import fs from 'node:fs';
import { badRequest, conflict, forbidden, notFound, serverError } from '../../util/errors.js';
import type { BridgeNetwork } from '../network/bridge.js';
import { DEFAULT_BRIDGE } from '../network/names.js';
import { EMBEDDED_DNS, type UserBridges } from '../network/user-bridges.js';
import type { EndpointInfo } from '../types.js';
import { endpointSettingsFrom, type EndpointConfigRequest } from './endpoint-settings.js';
import { linkEnv, linkHostNames, parseLink } from './links.js';
import type { PortBindings, PortPublisher } from './ports.js';
import { saveRecord, type ContainerRecord, type EndpointSettings } from './record.js';
import { writeEtcFiles, writeEtcFilesAsync, type HostsEntry } from './rootfs.js';
import { hasProcess, type ContainerTable } from './table.js';
import type { ForeignEndpoint } from './views.js';

/** What a start writes into /etc/hosts besides the container's own line (ExtraHosts, links). */
export interface EtcOptions {
  domainname?: string;
  extra: HostsEntry[];
}

const BUILT_IN_MODES = ['default', 'bridge', 'host', 'none'];
const SHARED_NETNS =
  'container sharing network namespace with another container or host cannot be connected to any other network';
const PRIVATE_NETNS =
  'container cannot be connected to multiple networks with one of the networks in private (none) mode';

/**
 * A container's networks: the default bridge, user-defined bridges, network modes others wire
 * (swarm), published ports, links and /etc/hosts, `docker network connect` / `disconnect`.
 */
export class ContainerNetworks {
  /** Network modes beyond bridge/host/none that someone wires at start (attachable swarm networks). */
  private readonly networkModes: ((mode: string) => boolean)[] = [];
  private foreignEndpoints: (containerId: string) => Record<string, ForeignEndpoint> = () => ({});
  /** What the last start wrote into a container's /etc/hosts besides its own line. */
  private readonly etcOptions = new Map<string, EtcOptions>();

  constructor(
    private readonly table: ContainerTable,
    readonly bridge: BridgeNetwork,
    readonly ports: PortPublisher,
    /** User-defined bridge networks (absent in tests of the manager alone). */
    readonly userBridges?: UserBridges,
  ) {}

  /** Lets `NetworkMode: <name>` through create; whoever accepts it must wire it in a start hook. */
  acceptNetworkMode(accepts: (mode: string) => boolean): void {
    this.networkModes.push(accepts);
  }

  setForeignEndpoints(fn: (containerId: string) => Record<string, ForeignEndpoint>): void {
    this.foreignEndpoints = fn;
  }

  /** The user bridge a network mode or connected network names, if it is one. */
  userBridgeOf(name: string) {
    return this.userBridges?.find(name);
  }

  /** Whether a container may name `mode` as a network: built in, a user bridge, or accepted by someone. */
  knows(mode: string): boolean {
    return BUILT_IN_MODES.includes(mode) || !!this.userBridgeOf(mode) || this.networkModes.some((f) => f(mode));
  }

  /** Create's `NetworkingConfig.EndpointsConfig` checked (API 1.41: one network at create) into endpoint settings. */
  endpointSettingsForCreate(
    endpointsConfig: Record<string, EndpointConfigRequest | null> | null | undefined,
  ): NonNullable<ContainerRecord['endpointSettings']> {
    const settings: NonNullable<ContainerRecord['endpointSettings']> = {};
    // dockerd 20.10 verifyNetworkingConfig: the others come by connect.
    const asked = Object.keys(endpointsConfig ?? {});
    if (asked.length > 1) throw badRequest(`Container cannot be connected to network endpoints: ${asked.join(', ')}`);
    for (const [net, ec] of Object.entries(endpointsConfig ?? {})) {
      const s = endpointSettingsFrom(ec);
      if (!s) continue;
      if (this.userBridgeOf(net)) this.userBridges!.validate(net, { ip: s.IPv4Address, ip6: s.IPv6Address });
      else if ((s.IPv4Address || s.IPv6Address) && ['default', 'bridge'].includes(net))
        throw badRequest('user specified IP address is supported on user defined networks only');
      else if (s.Aliases && ['default', 'bridge'].includes(net))
        throw badRequest('network-scoped alias is supported only for containers in user defined networks');
      settings[net] = s;
    }
    return settings;
  }

  endpoint(id: string): EndpointInfo | undefined {
    const ep = this.bridge.endpoints().find((e) => e.containerId === id);
    if (!ep) return undefined;
    const gw = '172.17.0.1';
    return {
      NetworkID: this.bridge.networkIds.bridge,
      EndpointID: ep.endpointId,
      Gateway: gw,
      IPAddress: ep.ip,
      IPPrefixLen: 16,
      MacAddress: ep.mac,
    };
  }

  /** Endpoints beyond the default bridge: user-defined bridges, then swarm networks. */
  otherEndpoints(id: string): Record<string, ForeignEndpoint> {
    const own: Record<string, ForeignEndpoint> = {};
    for (const { network: n, endpoint: e } of this.userBridges?.endpointsOf(id) ?? []) {
      own[n.name] = {
        NetworkID: n.id,
        EndpointID: e.endpointId,
        IPAddress: e.ip,
        IPPrefixLen: Number(n.subnet.split('/')[1]),
        MacAddress: e.mac,
        Aliases: e.aliases,
        DNSNames: [this.table.records.get(id)?.name.slice(1) ?? '', ...e.aliases, id.slice(0, 12)].filter(Boolean),
        Gateway: n.internal ? '' : n.gateway,
        StaticIp: e.staticIp,
        ...(e.ip6 && n.v6
          ? {
              IPv6Address: e.ip6,
              IPv6PrefixLen: Number(n.v6.subnet.split('/')[1]),
              IPv6Gateway: n.internal ? '' : n.v6.gateway,
            }
          : {}),
        ...(e.staticIp6
          ? { RequestedIp6: this.table.records.get(id)?.endpointSettings?.[n.name]?.IPv6Address ?? e.ip6 }
          : {}),
      };
    }
    // Networks to join at the next start show without an address, as in Docker.
    const rec = this.table.records.get(id);
    const mode = rec?.hostConfig.NetworkMode ?? 'default';
    for (const name of [mode, ...(rec?.connectedNetworks ?? [])]) {
      const n = this.userBridgeOf(name);
      if (!n || own[n.name] || mode === 'host' || mode === 'none') continue;
      const s = rec?.endpointSettings?.[name];
      own[n.name] = {
        NetworkID: '',
        EndpointID: '',
        IPAddress: '',
        IPPrefixLen: 0,
        MacAddress: '',
        Aliases: s?.Aliases ?? [],
        DNSNames: [],
        Gateway: '',
        StaticIp: !!s?.IPv4Address,
        RequestedIp: s?.IPv4Address,
        RequestedIp6: s?.IPv6Address,
      };
    }
    return { ...own, ...this.foreignEndpoints(id) };
  }

  // --- at start and at exit ---------------------------------------------------------------------

  /** Remembers what a start writes into /etc/hosts, for `setOwnAddress` later. */
  rememberEtc(id: string, etc: EtcOptions): void {
    this.etcOptions.set(id, etc);
  }

  forget(id: string): void {
    this.etcOptions.delete(id);
  }

  /**
   * A container's own line in /etc/hosts once its address is known elsewhere (a swarm task's
   * network, from a start hook): `<ip> <hostname> <aliases…>`, what `hostname -i` reads.
   */
  setOwnAddress(id: string, ip: string, aliases: string[] = []): void {
    const rec = this.table.get(id);
    writeEtcFiles(this.table.paths(rec.id), rec.config.Hostname || rec.id.slice(0, 12), {
      ...(this.etcOptions.get(rec.id) ?? { extra: [] }),
      ip,
      aliases,
    });
  }

  /**
   * Joins the started container (namespaces made, process not started) to its networks: the
   * default bridge with its published ports, or else the user bridges, the first one primary.
   */
  async wire(rec: ContainerRecord, pid: number, hostname: string, etc: EtcOptions): Promise<void> {
    const id = rec.id;
    const p = this.table.paths(id);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if ((mode === 'default' || mode === 'bridge') && !rec.leftDefaultBridge) {
      const ep = await this.bridge.connect(
        id,
        pid,
        typeof rec.config.MacAddress === 'string' && rec.config.MacAddress
          ? rec.config.MacAddress.toLowerCase()
          : undefined,
      );
      await writeEtcFilesAsync(p, hostname, { ...etc, ip: ep.IPAddress });
      await this.publishPorts(rec, ep.IPAddress);
    }
    const primary = await this.joinUserBridges(rec, pid);
    if (mode !== 'default' && mode !== 'bridge' && (rec.connectedNetworks ?? []).includes(DEFAULT_BRIDGE.name))
      await this.bridge.connectLater(id, pid);
    // A default-bridge container connected to user bridges keeps its ports on the default bridge.
    if (primary && mode !== 'default' && mode !== 'bridge') {
      await writeEtcFilesAsync(p, hostname, { ...etc, ip: primary.ip });
      await this.publishPorts(rec, primary.ip);
    }
  }

  private async publishPorts(rec: ContainerRecord, ip: string): Promise<void> {
    const exposed = Object.keys(rec.config.ExposedPorts ?? {});
    rec.published = this.ports.resolve(
      rec.id,
      rec.hostConfig.PortBindings as PortBindings | undefined,
      exposed,
      rec.hostConfig.PublishAllPorts === true,
    );
    await this.ports.publish(rec.id, ip, rec.published);
  }

  /** The published ports go (a teardown's first step). */
  async unpublish(rec: ContainerRecord): Promise<void> {
    await this.ports
      .unpublish(rec.id)
      .catch((e) => this.table.log.warn({ err: e, id: rec.id }, 'unpublishing ports failed'));
    rec.published = undefined;
  }

  /** Every bridge endpoint goes (a teardown's step after runc's state). */
  async disconnectAll(id: string): Promise<void> {
    await this.bridge.disconnect(id).catch((e) => this.table.log.warn({ err: e, id }, 'bridge disconnect failed'));
    await this.userBridges
      ?.disconnectAll(id)
      .catch((e) => this.table.log.warn({ err: e, id }, 'bridge network disconnect failed'));
  }

  /**
   * Joins the user bridges of the container's network mode and `network connect`s; the first
   * one is its primary (ports, /etc/hosts). Embedded DNS: the gateway's resolver answers names.
   */
  private async joinUserBridges(rec: ContainerRecord, pid: number) {
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) return undefined;
    // A network removed since create (or connect): the start fails as in Docker, unless another part (swarm) takes it.
    for (const n of [mode, ...(rec.connectedNetworks ?? [])]) {
      if (!this.knows(n)) throw notFound(`network ${n} not found`);
    }
    const names = [mode, ...(rec.connectedNetworks ?? [])].filter(
      (n, i, a) => a.indexOf(n) === i && this.userBridgeOf(n),
    );
    let primary: { ip: string; gateway: string } | undefined;
    for (const name of names) {
      const s = rec.endpointSettings?.[name];
      const ep = await this.userBridges!.connect(name, rec.id, pid, {
        ip: s?.IPv4Address,
        ip6: s?.IPv6Address,
        aliases: s?.Aliases,
        mac: s?.MacAddress,
        links: s?.Links,
      });
      if (!primary) primary = { ip: ep.ip, gateway: this.userBridgeOf(name)!.gateway };
    }
    if (primary) await this.useEmbeddedDns(rec, pid, primary.gateway);
    return primary;
  }

  /** Docker's 127.0.0.11, led to the resolver on `gateway`. The file in place: it is bind-mounted by inode. */
  private async useEmbeddedDns(rec: ContainerRecord, pid: number, gateway: string): Promise<void> {
    await this.userBridges!.redirectResolver(pid, gateway);
    fs.writeFileSync(this.table.paths(rec.id).resolvConf, `nameserver ${EMBEDDED_DNS}\noptions ndots:0\n`);
  }

  // --- links ------------------------------------------------------------------------------------

  /**
   * The running containers a start links to (default bridge only, as in Docker; on user
   * networks names resolve by DNS): their /etc/hosts lines and `<ALIAS>_…` variables.
   */
  resolveLinks(rec: ContainerRecord): { hosts: HostsEntry[]; env: string[] } {
    const out = { hosts: [] as HostsEntry[], env: [] as string[] };
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    const stored = Array.isArray(rec.hostConfig.Links) ? (rec.hostConfig.Links as string[]) : [];
    if (!stored.length || (mode !== 'default' && mode !== 'bridge')) return out;
    for (const l of stored) {
      const link = parseLink(l);
      const child = this.table.find(link.child);
      const ip = child ? this.endpoint(child.id)?.IPAddress : undefined;
      if (!child || !hasProcess(child) || !ip)
        throw conflict(`Cannot link to a non running container: ${link.child} AS ${link.name}`);
      out.hosts.push({ ip, names: linkHostNames(link, child.config.Hostname || child.id.slice(0, 12)) });
      out.env.push(...linkEnv(link, ip, child.config.Env ?? [], Object.keys(child.config.ExposedPorts ?? {})));
    }
    return out;
  }

  /** `DELETE /containers/<parent>/<alias>?link=true`: the parent forgets the link; both containers stay. */
  removeLink(ref: string): void {
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    // dockerd's ContainerRm looks the name up first: an unknown name is a 404 before any link check.
    if (!this.table.find(name)) this.table.get(ref); // the 404 names the container as it was asked for
    const cut = name.lastIndexOf('/');
    if (cut <= 0) throw serverError('Conflict, cannot remove the default link name of the container');
    const parent = this.table.find(name.slice(0, cut));
    if (!parent) throw serverError(`Cannot get parent ${name.slice(0, cut)} for link ${name}`);
    const kept = (parent.hostConfig.Links as string[]).filter((l) => parseLink(l).name !== name);
    parent.hostConfig.Links = kept.length ? kept : null;
    saveRecord(this.table.paths(parent.id).record, parent);
  }

  // --- docker network connect / disconnect ------------------------------------------------------

  /** Records the networks a container joins beyond its NetworkMode (`docker network connect` / `disconnect`). */
  setConnectedNetworks(ref: string, names: string[]): void {
    const rec = this.table.get(ref);
    if (names.length) rec.connectedNetworks = names;
    else delete rec.connectedNetworks;
    saveRecord(this.table.paths(rec.id).record, rec);
  }

  /** Whether `network` names a user-defined bridge (the API routes connect/disconnect through here then). */
  isUserBridge(network: string): boolean {
    return !!this.userBridgeOf(network);
  }

  /** `docker network connect` to a user bridge: now when running, and at every start. */
  async connectUserBridge(ref: string, network: string, settings: EndpointSettings = {}): Promise<void> {
    const rec = this.table.get(ref);
    const n = this.userBridgeOf(network);
    if (!n) throw notFound(`network ${network} not found`);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (mode === 'host' || mode.startsWith('container:')) throw badRequest(SHARED_NETNS);
    if (mode === 'none') throw badRequest(PRIVATE_NETNS);
    this.userBridges!.validate(n.name, { ip: settings.IPv4Address, ip6: settings.IPv6Address });
    const joined = mode === n.name || mode === n.id || (rec.connectedNetworks ?? []).includes(n.name);
    if (joined && (rec.state.Status !== 'running' || n.endpoints[rec.id]))
      throw forbidden(`endpoint with name ${rec.name.slice(1)} already exists in network ${n.name}`);
    await this.table.locked(rec.id, async () => {
      if (rec.state.Status === 'running' || rec.state.Status === 'paused') {
        await this.userBridges!.connect(n.name, rec.id, rec.state.Pid, {
          ip: settings.IPv4Address,
          ip6: settings.IPv6Address,
          aliases: settings.Aliases,
          mac: settings.MacAddress,
          links: settings.Links,
        });
        // The first user bridge a container joins brings the embedded resolver; later ones keep it.
        if (this.userBridges!.endpointsOf(rec.id).length === 1)
          await this.useEmbeddedDns(rec, rec.state.Pid, n.gateway);
      }
      if (!joined) rec.connectedNetworks = [...(rec.connectedNetworks ?? []), n.name];
      if (Object.keys(settings).length) rec.endpointSettings = { ...(rec.endpointSettings ?? {}), [n.name]: settings };
      saveRecord(this.table.paths(rec.id).record, rec);
    });
  }

  /** `docker network connect bridge`: the default bridge as an extra network (or back after a disconnect). */
  async connectDefaultBridge(ref: string): Promise<void> {
    const rec = this.table.get(ref);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (mode === 'host' || mode.startsWith('container:')) throw badRequest(SHARED_NETNS);
    if (mode === 'none') throw badRequest(PRIVATE_NETNS);
    const primary = mode === 'default' || mode === 'bridge';
    const joined = primary ? !rec.leftDefaultBridge : (rec.connectedNetworks ?? []).includes(DEFAULT_BRIDGE.name);
    if (joined)
      throw forbidden(`endpoint with name ${rec.name.slice(1)} already exists in network ${DEFAULT_BRIDGE.name}`);
    await this.table.locked(rec.id, async () => {
      if (rec.state.Status === 'running' || rec.state.Status === 'paused')
        await this.bridge.connectLater(rec.id, rec.state.Pid);
      if (primary) delete rec.leftDefaultBridge;
      else rec.connectedNetworks = [...(rec.connectedNetworks ?? []), DEFAULT_BRIDGE.name];
      saveRecord(this.table.paths(rec.id).record, rec);
    });
  }

  /** `docker network disconnect bridge`. */
  async disconnectDefaultBridge(ref: string): Promise<void> {
    const rec = this.table.get(ref);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    const primary = mode === 'default' || mode === 'bridge';
    const joined = primary ? !rec.leftDefaultBridge : (rec.connectedNetworks ?? []).includes(DEFAULT_BRIDGE.name);
    if (!joined) throw serverError(`container ${rec.id} is not connected to network ${DEFAULT_BRIDGE.name}`);
    await this.table.locked(rec.id, async () => {
      await this.bridge.disconnect(rec.id, { now: true });
      if (primary) {
        rec.leftDefaultBridge = true;
        await this.ports.unpublish(rec.id);
        rec.published = undefined;
      } else {
        const kept = (rec.connectedNetworks ?? []).filter((x) => x !== DEFAULT_BRIDGE.name);
        if (kept.length) rec.connectedNetworks = kept;
        else delete rec.connectedNetworks;
      }
      saveRecord(this.table.paths(rec.id).record, rec);
    });
  }

  /** `docker network disconnect` from a user bridge. */
  async disconnectUserBridge(ref: string, network: string): Promise<void> {
    const rec = this.table.get(ref);
    const n = this.userBridgeOf(network);
    if (!n) throw notFound(`network ${network} not found`);
    await this.table.locked(rec.id, async () => {
      const had = await this.userBridges!.disconnect(n.name, rec.id);
      const listed = (rec.connectedNetworks ?? []).includes(n.name);
      if (!had && !listed) throw serverError(`container ${rec.id} is not connected to network ${n.name}`);
      const kept = (rec.connectedNetworks ?? []).filter((x) => x !== n.name);
      if (kept.length) rec.connectedNetworks = kept;
      else delete rec.connectedNetworks;
      if (rec.endpointSettings) delete rec.endpointSettings[n.name];
      saveRecord(this.table.paths(rec.id).record, rec);
    });
  }
}
