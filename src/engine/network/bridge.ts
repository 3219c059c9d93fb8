import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { newHexId } from '../../util/ids.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import type { EndpointInfo } from '../types.js';
import { AddressPool, type PoolState } from './ipam.js';
import {
  inNetns,
  ipBatch,
  ipBatches,
  ipJson,
  nftApply,
  SELF,
  type IpAddrInfo,
  type IpLink,
  type NetnsTarget,
} from './ip.js';
import { macFromIp, parseSubnet } from '../../net/ipv4.js';
import {
  BRIDGE_NAT_CHAIN,
  BRIDGE_STATE_FILE,
  CONTAINER_IFNAME,
  DEFAULT_BRIDGE,
  NFT_TABLE,
  hostVethName,
} from './names.js';
import { readJsonFile, writeJsonFileAtomic } from './state-file.js';
import { SerialQueue } from '../../util/serial-queue.js';

/** How long the kernel gets to remove a stopped container's veth before we do. */
const VETH_SWEEP_MS = 3000;

/** One container's attachment, as remembered across daemon restarts. */
export interface BridgeEndpoint {
  containerId: string;
  endpointId: string;
  ip: string;
  mac: string;
  hostVeth: string;
  /** The interface in the container; eth0 unless joined later (`network connect bridge`). */
  ifname?: string;
}

/** The built-in networks every daemon has, with the IDs `docker network ls` shows. */
export interface BuiltinNetworkIds {
  bridge: string;
  host: string;
  none: string;
}

interface BridgeState {
  networkIds: BuiltinNetworkIds;
  /** When the built-in networks were made (RFC 3339), shown as `Created`. */
  created: string;
  pool: PoolState;
  endpoints: Record<string, BridgeEndpoint>;
}

/**
 * Docker's default `bridge` network: the Linux bridge `shoal0` in the daemon's netns, an IPAM
 * that survives restarts, a veth per container and masquerading for its way out.
 */
export class BridgeNetwork {
  /** Filled in by the container manager: the name `network inspect` shows for a container. */
  containerName: (containerId: string) => string | undefined = () => undefined;

  private readonly queue = new SerialQueue();

  private constructor(
    readonly config: DaemonConfig,
    readonly log: Logger,
    private readonly stateFile: string,
    private state: BridgeState,
    private pool: AddressPool,
    private readonly netns: NetnsTarget,
  ) {}

  /**
   * Sets the bridge, forwarding and NAT up, or adopts what an earlier run of the daemon left.
   * `netns` is where the bridge lives: the daemon's own (always, in shoald) or a named one (tests).
   */
  static async open(config: DaemonConfig, log: Logger, netns: NetnsTarget = SELF): Promise<BridgeNetwork> {
    const stateFile = path.join(daemonPaths(config).network, BRIDGE_STATE_FILE);
    const saved = readJsonFile<BridgeState>(stateFile);
    const state: BridgeState = saved ?? {
      networkIds: { bridge: newHexId(), host: newHexId(), none: newHexId() },
      created: new Date().toISOString(),
      pool: AddressPool.empty(DEFAULT_BRIDGE.subnet, [DEFAULT_BRIDGE.gateway]).toJSON(),
      endpoints: {},
    };
    const net = new BridgeNetwork(config, log, stateFile, state, new AddressPool(state.pool), netns);
    await net.ensureBridge();
    await net.enableForwarding();
    await net.applyNat();
    await net.forgetVanishedEndpoints();
    net.save();
    log.info(
      {
        bridge: DEFAULT_BRIDGE.device,
        subnet: DEFAULT_BRIDGE.subnet,
        endpoints: Object.keys(net.state.endpoints).length,
      },
      'default bridge ready',
    );
    return net;
  }

  get networkIds(): BuiltinNetworkIds {
    return { ...this.state.networkIds };
  }

  get created(): string {
    return this.state.created;
  }

  endpoints(): BridgeEndpoint[] {
    return Object.values(this.state.endpoints).map((e) => ({ ...e }));
  }

  /**
   * Gives the container whose init is `pid` a veth on the default bridge; idempotent per
   * container. Calls for different containers run concurrently (the address is taken
   * synchronously), so a burst of starts shares `ip` runs and state writes; a container's own
   * connect and disconnect never overlap (its start and teardown are serialised by the caller).
   */
  /** `mac`: the container's `MacAddress`, else one derived from the address. */
  connect(containerId: string, pid: number, mac?: string): Promise<EndpointInfo> {
    // Reconnecting an existing endpoint (a restart) checks the kernel first: rare, kept in order.
    if (this.state.endpoints[containerId])
      return this.serialized(() => this.doConnect(containerId, pid, CONTAINER_IFNAME, mac));
    return this.doConnect(containerId, pid, CONTAINER_IFNAME, mac);
  }

  /** `docker network connect bridge`: a container already on other networks gets the next free ethN, no default route. */
  connectLater(containerId: string, pid: number): Promise<EndpointInfo> {
    return this.serialized(async () => {
      const links = new Set((await ipJson<IpLink>({ kind: 'pid', pid }, ['link', 'show'])).map((l) => l.ifname));
      let k = 0;
      while (links.has(`eth${k}`)) k++;
      return this.doConnect(containerId, pid, `eth${k}`);
    });
  }

  /**
   * Frees the container's address. Its veth dies with its netns (the caller has ended its
   * processes), which the kernel tears down shortly after; one still there a little later is
   * removed then, so no `ip` run is on the stop path. `now`: the container lives on
   * (`docker network disconnect`), so its link goes at once, before the address is reused.
   */
  async disconnect(containerId: string, opts: { now?: boolean } = {}): Promise<void> {
    const ep = this.state.endpoints[containerId];
    if (!ep) return;
    const deleteNow = this.netns.kind !== 'self' || opts.now;
    if (deleteNow) await ipBatch(this.netns, [`link delete ${ep.hostVeth}`]).catch(() => undefined);
    delete this.state.endpoints[containerId];
    this.pool.release(containerId);
    await this.persist();
    this.log.debug({ containerId, ip: ep.ip }, 'disconnected from bridge');
    if (deleteNow) return;
    setTimeout(() => {
      if (ownLinks().has(ep.hostVeth)) void ipBatch(this.netns, [`link delete ${ep.hostVeth}`]).catch(() => undefined);
    }, VETH_SWEEP_MS).unref();
  }

  private async doConnect(
    containerId: string,
    pid: number,
    ifname: string = CONTAINER_IFNAME,
    mac?: string,
  ): Promise<EndpointInfo> {
    const container: NetnsTarget = { kind: 'pid', pid };
    const existing = this.state.endpoints[containerId];
    if (
      existing &&
      (!mac || existing.mac === mac) &&
      (await this.linkExists(existing.hostVeth)) &&
      (await this.hasAddress(container, existing.ip, existing.ifname))
    ) {
      return this.endpointInfo(existing);
    }
    if (existing) await ipBatch(this.netns, [`link delete ${existing.hostVeth}`]).catch(() => undefined);

    const ip = this.pool.allocate(containerId);
    const endpointId = existing?.endpointId ?? newHexId();
    const ep: BridgeEndpoint = {
      containerId,
      endpointId,
      ip,
      mac: mac || macFromIp(ip),
      hostVeth: hostVethName(endpointId),
      ...(ifname !== CONTAINER_IFNAME ? { ifname } : {}),
    };
    this.state.endpoints[containerId] = ep;
    // Recorded before the kernel is touched: a crash in between leaves an address taken, never one given twice.
    await this.persist();
    const prefixLen = parseSubnet(DEFAULT_BRIDGE.subnet).prefixLen;
    try {
      // The peer is born inside the container's netns, already named eth0: nothing transient shows up in ours.
      // Joined later, the container keeps the way out it has.
      const hasDefault =
        ifname !== CONTAINER_IFNAME && (await ipJson<unknown>(container, ['route', 'show', 'default'])).length > 0;
      await ipBatches([
        {
          target: this.netns,
          commands: [
            `link add ${ep.hostVeth} mtu ${DEFAULT_BRIDGE.mtu} type veth peer name ${ifname} mtu ${DEFAULT_BRIDGE.mtu} address ${ep.mac} netns ${pid}`,
            `link set ${ep.hostVeth} master ${DEFAULT_BRIDGE.device}`,
            `link set ${ep.hostVeth} up`,
          ],
        },
        {
          target: container,
          commands: [
            'link set lo up',
            `addr add ${ip}/${prefixLen} dev ${ifname}`,
            `link set ${ifname} up`,
            ...(hasDefault ? [] : [`route add default via ${DEFAULT_BRIDGE.gateway} dev ${ifname}`]),
          ],
        },
      ]);
    } catch (e) {
      await ipBatch(this.netns, [`link delete ${ep.hostVeth}`]).catch(() => undefined);
      delete this.state.endpoints[containerId];
      this.pool.release(containerId);
      await this.persist();
      throw e;
    }
    this.log.debug({ containerId, ip, veth: ep.hostVeth }, 'connected to bridge');
    return this.endpointInfo(ep);
  }

  private endpointInfo(ep: BridgeEndpoint): EndpointInfo {
    return {
      NetworkID: this.state.networkIds.bridge,
      EndpointID: ep.endpointId,
      Gateway: DEFAULT_BRIDGE.gateway,
      IPAddress: ep.ip,
      IPPrefixLen: parseSubnet(DEFAULT_BRIDGE.subnet).prefixLen,
      MacAddress: ep.mac,
    };
  }

  private async ensureBridge(): Promise<void> {
    const dev = DEFAULT_BRIDGE.device;
    const [link] = await ipJson<IpAddrInfo & IpLink>(this.netns, ['addr', 'show', 'dev', dev], true);
    const cmds: string[] = [];
    // A MAC of its own: a bridge otherwise takes its lowest port's, changing as containers come and go while
    // theirs keep the old one in their ARP caches (up to ~45 s, their gateway and DNS unreachable meanwhile).
    if (!link)
      cmds.push(`link add ${dev} mtu ${DEFAULT_BRIDGE.mtu} address ${macFromIp(DEFAULT_BRIDGE.gateway)} type bridge`);
    else if (link.address) cmds.push(`link set dev ${dev} address ${link.address}`);
    const want = `${DEFAULT_BRIDGE.gateway}/${parseSubnet(DEFAULT_BRIDGE.subnet).prefixLen}`;
    const has = (link?.addr_info ?? []).some((a) => a.family === 'inet' && `${a.local}/${a.prefixlen}` === want);
    if (!has) cmds.push(`addr add ${want} dev ${dev}`);
    if (!link || !(link.flags ?? []).includes('UP')) cmds.push(`link set ${dev} up`);
    await ipBatch(this.netns, cmds);
  }

  /** Routing between the bridge and the daemon's other interfaces; the sysctl is per network namespace. */
  private async enableForwarding(): Promise<void> {
    if (this.netns.kind === 'self') fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
    else await inNetns(this.netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  }

  /** One transaction: the table is created if missing, our chain replaced whole (other chains in the table untouched). */
  private async applyNat(): Promise<void> {
    const t = `${NFT_TABLE.family} ${NFT_TABLE.name}`;
    await nftApply(
      this.netns,
      [
        `add table ${t}`,
        `add chain ${t} ${BRIDGE_NAT_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`,
        `flush chain ${t} ${BRIDGE_NAT_CHAIN}`,
        `add rule ${t} ${BRIDGE_NAT_CHAIN} ip saddr ${DEFAULT_BRIDGE.subnet} oifname != "${DEFAULT_BRIDGE.device}" masquerade`,
        '',
      ].join('\n'),
    );
  }

  /** Containers that died while the daemon was away took their veth along: their addresses are free again. */
  private async forgetVanishedEndpoints(): Promise<void> {
    const links = new Set((await ipJson<IpLink>(this.netns, ['link', 'show'])).map((l) => l.ifname));
    for (const ep of Object.values(this.state.endpoints)) {
      if (links.has(ep.hostVeth)) continue;
      this.log.info(
        { containerId: ep.containerId, ip: ep.ip },
        'endpoint gone while the daemon was down; address freed',
      );
      delete this.state.endpoints[ep.containerId];
      this.pool.release(ep.containerId);
    }
  }

  private async linkExists(name: string): Promise<boolean> {
    return (await ipJson<IpLink>(this.netns, ['link', 'show', 'dev', name], true)).length > 0;
  }

  private async hasAddress(target: NetnsTarget, ip: string, ifname = CONTAINER_IFNAME): Promise<boolean> {
    const [link] = await ipJson<IpAddrInfo>(target, ['addr', 'show', 'dev', ifname], true).catch(() => []);
    return (link?.addr_info ?? []).some((a) => a.local === ip);
  }

  /** One state write for every change made in this turn of the event loop (two fsyncs each). */
  private persist(): Promise<void> {
    this.persisting ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.persisting = undefined;
      this.save();
    });
    return this.persisting;
  }

  private persisting?: Promise<void>;

  private save(): void {
    this.state.pool = this.pool.toJSON();
    writeJsonFileAtomic(this.stateFile, this.state);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}

/** Interface names of this process's netns (/proc/self/net/dev is per netns; /sys/class/net is not). */
function ownLinks(): Set<string> {
  const names = new Set<string>();
  for (const line of fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)) {
    const name = line.split(':')[0].trim();
    if (name) names.add(name);
  }
  return names;
}
