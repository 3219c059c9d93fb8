import type { Handler, Router } from '../router.js';
import type { BodyTypes } from '../decode/index.js';
import type { Engine } from '../../engine/engine.js';
import { badRequest, conflict, forbidden, notFound, notImplemented } from '../../util/errors.js';
import { DEFAULT_BRIDGE } from '../../engine/network/names.js';
import { parseSubnet } from '../../net/ipv4.js';
import type { SwarmNode } from '../../node/node.js';
import type { Network } from '../../cluster/types.js';
import { NODE_LOCAL_DRIVERS } from '../../cluster/network-drivers.js';
import { createNetwork, listNetworks, removeNetwork } from '../../manager/control/networks.js';
import { ERR_NO_SWARM_MANAGER, ERR_NOT_MANAGER } from '../../node/node.js';
import { unavailable } from '../../util/errors.js';
import type { UserNetwork } from '../../engine/network/user-bridges.js';
import { endpointSettingsFrom, type EndpointConfigRequest } from '../../engine/containers/endpoint-settings.js';
import type { VerboseService } from '../../cluster/types.js';

/** A network as the Engine API shows it (swagger `Network`, v1.41). */
export interface NetworkResource {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv6: boolean;
  IPAM: {
    Driver: string;
    Options: Record<string, string> | null;
    Config: { Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }[];
  };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<
    string,
    { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }
  >;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** Overlay networks this node takes part in: the nodes it exchanges traffic with. */
  Peers?: { Name: string; IP: string }[];
  /** `network inspect --verbose` of a swarm network: the services as this node's resolver and balancer know them. */
  Services?: Record<string, VerboseService>;
}

export type { VerboseService } from '../../cluster/types.js';

const BUILTIN = new Set([DEFAULT_BRIDGE.name, 'host', 'none']);

/** The networks every daemon has from the start: bridge, host and none. */
export function builtinNetworks(engine: Engine): NetworkResource[] {
  const ids = engine.bridge.networkIds;
  const created = engine.bridge.created;
  const prefixLen = parseSubnet(DEFAULT_BRIDGE.subnet).prefixLen;
  const base = (name: string, id: string, driver: string): NetworkResource => ({
    Name: name,
    Id: id,
    Created: created,
    Scope: 'local',
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
  });
  const bridge = base(DEFAULT_BRIDGE.name, ids.bridge, 'bridge');
  bridge.IPAM.Config = [{ Subnet: DEFAULT_BRIDGE.subnet, Gateway: DEFAULT_BRIDGE.gateway }];
  bridge.Options = {
    'com.docker.network.bridge.default_bridge': 'true',
    'com.docker.network.bridge.enable_icc': 'true',
    'com.docker.network.bridge.enable_ip_masquerade': 'true',
    'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
    'com.docker.network.bridge.name': DEFAULT_BRIDGE.device,
    'com.docker.network.driver.mtu': String(DEFAULT_BRIDGE.mtu),
  };
  for (const ep of engine.bridge.endpoints()) {
    bridge.Containers[ep.containerId] = {
      Name: engine.bridge.containerName(ep.containerId) ?? '',
      EndpointID: ep.endpointId,
      MacAddress: ep.mac,
      IPv4Address: `${ep.ip}/${prefixLen}`,
      IPv6Address: '',
    };
  }
  return [bridge, base('host', ids.host, 'host'), base('none', ids.none, 'null')];
}

/** A user-defined bridge as the Engine API shows it. */
export function userBridgeResource(engine: Engine, n: UserNetwork, swarmNetworks: Network[] = []): NetworkResource {
  const prefixLen = n.subnet.split('/')[1];
  const containers: NetworkResource['Containers'] = {};
  for (const ep of Object.values(n.endpoints)) {
    containers[ep.containerId] = {
      Name: engine.userBridges.containerName(ep.containerId) ?? '',
      EndpointID: ep.endpointId,
      MacAddress: ep.mac,
      IPv4Address: `${ep.ip}/${prefixLen}`,
      IPv6Address: ep.ip6 && n.v6 ? `${ep.ip6}/${n.v6.subnet.split('/')[1]}` : '',
    };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: n.swarmScope ? 'swarm' : 'local',
    Driver: 'bridge',
    EnableIPv6: !!n.enableIPv6,
    IPAM: {
      Driver: 'default',
      Options: n.ipamOptions ? { ...n.ipamOptions } : null,
      Config: [
        {
          Subnet: n.subnet,
          ...(n.ipRange ? { IPRange: n.ipRange } : {}),
          Gateway: n.gateway,
          ...(n.auxAddresses ? { AuxiliaryAddresses: { ...n.auxAddresses } } : {}),
        },
        // The IPv6 config as given, after the IPv4 one (dockerd's buildIpamResources).
        ...(n.v6 ? [{ Subnet: n.v6.subnet, ...n.v6.requested }] : []),
      ],
    },
    Internal: n.internal,
    Attachable: !!(n.swarmScope && swarmNetworks.find((s) => s.ID === n.id)?.Spec.Attachable),
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: { ...n.options },
    Labels: { ...n.labels },
  };
}

/** Swarm networks but those this node shows as its own bridge (node-local ones it has). */
function withoutLocalCopies(networks: Network[], engine: Engine): Network[] {
  return networks.filter((n) => !engine.userBridges.list().some((b) => b.swarmScope && b.id === n.ID));
}

/** Docker's filter match: the value as a regular expression, or failing that a substring. */
function matches(pattern: string, value: string): boolean {
  if (pattern === value) return true;
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return value.includes(pattern);
  }
}

const FILTERS = new Set(['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling']);

function passes(n: NetworkResource, filters: Map<string, string[]>): boolean {
  for (const [key, values] of filters) {
    if (!FILTERS.has(key)) throw badRequest(`invalid filter '${key}'`);
    // As dockerd: dangling takes a boolean and nothing else.
    if (key === 'dangling' && values.some((v) => !['true', '1', 'false', '0'].includes(v)))
      throw badRequest(`Invalid filter 'dangling=[${values.join(' ')}]'`);
    if (values.length === 0) continue;
    const ok = values.some((v) => {
      switch (key) {
        case 'driver':
          return n.Driver === v;
        case 'id':
          return n.Id.startsWith(v) || matches(v, n.Id);
        case 'name':
          return matches(v, n.Name);
        case 'scope':
          return n.Scope === v;
        case 'type':
          if (v !== 'builtin' && v !== 'custom') throw badRequest(`invalid filter: 'type'='${v}'`);
          return (v === 'builtin') === BUILTIN.has(n.Name);
        case 'label': {
          const i = v.indexOf('=');
          return i < 0 ? v in n.Labels : n.Labels[v.slice(0, i)] === v.slice(i + 1);
        }
        case 'dangling':
          return (v === 'true' || v === '1') === (!BUILTIN.has(n.Name) && Object.keys(n.Containers ?? {}).length === 0);
        default:
          return false;
      }
    });
    if (!ok) return false;
  }
  return true;
}

/** Finds a network by full ID, name, or unique ID prefix, as the daemon does. */
export function findNetwork(all: NetworkResource[], ref: string): NetworkResource {
  const exact = all.find((n) => n.Id === ref) ?? all.find((n) => n.Name === ref);
  if (exact) return exact;
  const byPrefix = all.filter((n) => n.Id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1)
    throw badRequest(`network ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
  throw notFound(`network ${ref} not found`);
}

/** A swarm network as a manager shows it (moby daemon/cluster/convert/network.go BasicNetworkFromGRPC). */
export function swarmNetworkResource(n: Network, local?: NetworkResource['Containers']): NetworkResource {
  const ipam = n.IPAMOptions ?? n.Spec.IPAMOptions;
  return {
    Name: n.Spec.Name ?? '',
    Id: n.ID,
    Created: n.CreatedAt,
    Scope: 'swarm',
    Driver: n.DriverState?.Name ?? n.Spec.DriverConfiguration?.Name ?? 'overlay',
    EnableIPv6: !!n.Spec.IPv6Enabled,
    IPAM: {
      Driver: ipam?.Driver?.Name || 'default',
      Options: null,
      Config: (ipam?.Configs ?? []).map((c) => ({ Subnet: c.Subnet, Gateway: c.Gateway ?? '' })),
    },
    Internal: !!n.Spec.Internal,
    Attachable: !!n.Spec.Attachable,
    Ingress: !!n.Spec.Ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: (local ?? null) as NetworkResource['Containers'],
    Options: { ...(n.DriverState?.Options ?? {}) },
    Labels: (n.Spec.Labels ?? null) as NetworkResource['Labels'],
  };
}

/** What this node's network agent knows: swarm networks in use here, its containers and peers on them. */
export interface LocalSwarmNetworks {
  /** Swarm networks with an endpoint on this node (what a worker lists). */
  networks(): Network[];
  endpoints(networkId: string): NetworkResource['Containers'] | undefined;
  peers(networkId: string): { Name: string; IP: string }[] | undefined;
  /** Services on `networkId` as this node knows them (`network inspect --verbose`). */
  services?(networkId: string): Record<string, VerboseService>;
  /** `network connect` / `disconnect` of a container and a swarm network (named as the user did). */
  connect?(container: string, network: string): Promise<void>;
  disconnect?(container: string, network: string): Promise<void>;
}

/** What the network routes work with: this daemon's engine, and the swarm node and its network agent when in a swarm. */
interface NetworkScope {
  engine: Engine;
  swarm?: SwarmNode;
  local?: LocalSwarmNetworks;
  /** Managers list every swarm network; workers those their tasks use (as Docker does). */
  swarmNetworks(): Network[];
  /** Every network this daemon shows: built-in, user bridges, swarm networks. */
  all(): NetworkResource[];
}

/** `GET /networks`, `GET /networks/{id}`, `POST /networks/create`, `DELETE /networks/{id}`, connect, disconnect, prune. */
export function networkRoutes(router: Router, engine: Engine, swarm?: SwarmNode, local?: LocalSwarmNetworks): void {
  const swarmNetworks = (): Network[] => {
    if (!swarm?.nodeId) return [];
    if (!swarm.isManager) return local?.networks() ?? [];
    try {
      return listNetworks(swarm.controlStore());
    } catch {
      return local?.networks() ?? [];
    }
  };
  const all = () => {
    const swarmNets = swarmNetworks();
    return [
      ...builtinNetworks(engine),
      ...engine.userBridges.list().map((n) => userBridgeResource(engine, n, swarmNets)),
      // A node-local swarm network this node has a bridge of shows once, as this node's bridge (dockerd lists it once by ID).
      ...withoutLocalCopies(swarmNets, engine).map((n) => {
        const r = swarmNetworkResource(n, local?.endpoints(n.ID));
        const peers = local?.peers(n.ID);
        return peers ? { ...r, Peers: peers } : r;
      }),
    ];
  };
  const scope: NetworkScope = { engine, swarm, local, swarmNetworks, all };
  networkReadRoutes(router, scope);
  networkCreateRoute(router, scope);
  networkConnectRoutes(router, scope);
  networkRemoveRoutes(router, scope);
}

/** List and inspect. */
function networkReadRoutes(router: Router, { all, local }: NetworkScope): void {
  router.get('/networks', (ctx) => {
    const filters = ctx.filters();
    // Since API 1.28 the list leaves Containers empty; inspect fills it.
    const list = all()
      .filter((n) => passes(n, filters))
      .map((n) => ({ ...n, Containers: {}, Peers: undefined }));
    return { body: list };
  });

  router.get('/networks/:id', (ctx) => {
    const scope = ctx.query.get('scope');
    const n = findNetwork(all(), ctx.params.id);
    if (scope && scope !== n.Scope) throw notFound(`network ${ctx.params.id} not found`);
    const verbose = ['1', 'true'].includes(ctx.query.get('verbose') ?? '');
    if (verbose && n.Scope === 'swarm') return { body: { ...n, Services: local?.services?.(n.Id) ?? {} } };
    return { body: n };
  });
}

/** `network create`: a user bridge on this daemon, or a swarm overlay through the manager's control API. */
function networkCreateRoute(router: Router, { engine, swarm, swarmNetworks }: NetworkScope): void {
  router.post('/networks/create', async (ctx) => {
    ctx.checkForJson();
    const req = await ctx.body('NetworkCreateRequest');
    if (BUILTIN.has(req.Name ?? '')) throw forbidden(`${req.Name} is a pre-defined network and cannot be created`);
    // Configuration-only networks and networks made from them are not there yet: say so rather than ignore them.
    if (req.ConfigOnly || req.ConfigFrom?.Network)
      throw notImplemented('network create --config-only / --config-from: not supported by this daemon');
    const driver = req.Driver || 'bridge';
    // `--scope swarm` makes a node-local driver's network a swarm one (libnetwork sends it to the managers).
    const swarmScoped = req.Scope === 'swarm';
    if (driver === 'bridge' && !swarmScoped) {
      if (!req.Name) throw badRequest('network name must not be empty'); // as the CLI would never send it
      // libnetwork's ValidateName asks only for a name: spaces and other characters are fine.
      const taken = (name: string) => swarmNetworks().some((s) => s.Spec.Name === name);
      const n = await engine.userBridges.create({ ...req, Name: req.Name }, taken);
      engine.events.emit('network', 'create', n.id, { name: n.name, type: 'bridge' });
      return { status: 201, body: { Id: n.id, Warning: '' } };
    }
    if (engine.userBridges.find(req.Name ?? '')?.name === req.Name)
      throw conflict(`network with name ${req.Name} already exists`);
    if (driver === 'host' || driver === 'null') throw forbidden(`only one instance of "${driver}" network is allowed`);
    // Drivers dockerd ships but shoal does not: say so. Any other name is a plugin dockerd would look up and not find.
    if (driver === 'macvlan' || driver === 'ipvlan')
      throw notImplemented(`network driver ${driver}: only bridge and swarm overlay networks can be created`);
    if (driver === 'overlay' && req.Scope === 'local')
      throw forbidden('cannot downgrade network scope for overlay networks');
    const nodeLocal = NODE_LOCAL_DRIVERS.has(driver);
    if (driver !== 'overlay' && !nodeLocal) throw notFound(`plugin ${JSON.stringify(driver)} not found`);
    if (nodeLocal && !swarm?.nodeId) throw forbidden('cannot create a swarm scoped network when swarm is not active');
    if (!swarm?.nodeId) throw unavailable(ERR_NO_SWARM_MANAGER);
    if (!swarm.isManager)
      throw forbidden(
        `Cannot create a multi-host network from a worker node. Please create the network from a manager node.`,
      );
    const n = await createNetwork(swarm.controlStore(), { ...req, Driver: driver });
    return { status: 201, body: { Id: n.ID, Warning: '' } };
  });
}

/** `network connect` and `disconnect`: user bridges, the default bridge, and attachable swarm networks. */
function networkConnectRoutes(router: Router, { engine, swarm, local }: NetworkScope): void {
  // Swarm networks only (attachable overlays); the manager checks the network when the container runs.
  const connection =
    (action: 'connect' | 'disconnect'): Handler =>
    async (ctx) => {
      ctx.checkForJson();
      const req: BodyTypes['NetworkConnect'] =
        action === 'connect' ? await ctx.body('NetworkConnect') : await ctx.body('NetworkDisconnect');
      const container = req.Container ?? '';
      engine.containers.get(container); // 404 No such container first, as Docker
      const bridge = engine.userBridges.find(ctx.params.id);
      if (bridge && !bridge.swarmScope) {
        if (action === 'connect') {
          await engine.containers.connectUserBridge(container, bridge.name, endpointSettingsFrom(req.EndpointConfig));
        } else {
          await engine.containers.disconnectUserBridge(container, bridge.name);
        }
        return { status: 200 };
      }
      const builtin = builtinNetworks(engine).find((n) => n.Id === ctx.params.id || n.Name === ctx.params.id);
      if (builtin?.Name === DEFAULT_BRIDGE.name) {
        if (action === 'connect') await engine.containers.connectDefaultBridge(container);
        else await engine.containers.disconnectDefaultBridge(container);
        return { status: 200 };
      }
      if (builtin?.Name === 'host')
        throw badRequest('container cannot be disconnected from host network or connected to host network');
      if (builtin)
        throw notImplemented(`network ${action} with ${builtin.Name}: only swarm networks can be ${action}ed`);
      const fn = local?.[action];
      if (!fn || !swarm?.nodeId) throw notFound(`network ${ctx.params.id} not found`);
      await fn.call(local, container, ctx.params.id);
      return { status: 200 };
    };
  router.post('/networks/:id/connect', connection('connect'));
  router.post('/networks/:id/disconnect', connection('disconnect'));
}

/** `network prune` (user bridges) and `network rm`. */
function networkRemoveRoutes(router: Router, { engine, swarm }: NetworkScope): void {
  router.post('/networks/prune', (ctx) => {
    const filters = ctx.filters();
    for (const key of filters.keys())
      if (key !== 'label' && key !== 'label!' && key !== 'until') throw badRequest(`invalid filter '${key}'`);
    return (async () => {
      const deleted: string[] = [];
      for (const n of engine.userBridges.list()) {
        if (n.swarmScope || Object.keys(n.endpoints).length || !prunable(n, filters)) continue;
        // Connected but stopped containers do not keep a network, as in Docker.
        await engine.userBridges.remove(n.id).then(
          () => {
            deleted.push(n.name);
            engine.events.emit('network', 'destroy', n.id, { name: n.name, type: 'bridge' });
          },
          () => undefined,
        );
      }
      return { body: { NetworksDeleted: deleted } };
    })();
  });

  router.delete('/networks/:id', async (ctx) => {
    const bridge = engine.userBridges.find(ctx.params.id);
    // This node's bridge of a swarm network is the agent's: `network rm` is the swarm's.
    if (bridge && !bridge.swarmScope) {
      await engine.userBridges.remove(bridge.id);
      engine.events.emit('network', 'destroy', bridge.id, { name: bridge.name, type: 'bridge' });
      return { status: 204 };
    }
    const local = builtinNetworks(engine).find((n) => n.Id === ctx.params.id || n.Name === ctx.params.id);
    if (local) throw forbidden(`${local.Name} is a pre-defined network and cannot be removed`);
    if (!swarm?.isManager) {
      if (swarm?.nodeId && !swarm.isManager) throw unavailable(ERR_NOT_MANAGER);
      throw notFound(`network ${ctx.params.id} not found`);
    }
    await removeNetwork(swarm.controlStore(), ctx.params.id);
    return { status: 204 };
  });
}

/** `network prune` filters: `label`, `label!`, `until` (a timestamp or a duration such as 24h). */
function prunable(n: UserNetwork, filters: Map<string, string[]>): boolean {
  const has = (v: string) => {
    const i = v.indexOf('=');
    return i < 0 ? v in n.labels : n.labels[v.slice(0, i)] === v.slice(i + 1);
  };
  if (!(filters.get('label') ?? []).every(has)) return false;
  if ((filters.get('label!') ?? []).some(has)) return false;
  for (const u of filters.get('until') ?? []) {
    const m = /^(\d+)(s|m|h)$/.exec(u);
    const limit = m
      ? Date.now() - Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6 }[m[2] as 's' | 'm' | 'h']
      : /^\d+$/.test(u)
        ? Number(u) * 1000
        : Date.parse(u);
    if (!(Date.parse(n.created) < limit)) return false;
  }
  return true;
}
