import type { EndpointInfo } from '../types.js';
import { ZERO_TIME, type ContainerRecord, type containerPaths } from './record.js';
import { mountPointView } from '../volumes/mounts.js';
import { withRequestedSettings } from './endpoint-settings.js';

/** `GET /containers/{id}/json` (swagger ContainerInspectResponse, the fields a client reads). */
export type ContainerInspect = Record<string, unknown> & { Id: string; Name: string; State: Record<string, unknown> };
/** `GET /containers/json` items (swagger ContainerSummary). */
export type ContainerSummary = Record<string, unknown> & {
  Id: string;
  Names: string[];
  State: string;
  Labels: Record<string, string>;
};

/** Docker's go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(ms / 3600_000);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** `Up 5 seconds`, `Exited (0) 3 minutes ago`, `Created`. */
export function statusText(r: ContainerRecord, now = Date.now()): string {
  const st = r.state;
  switch (st.Status) {
    case 'running': {
      const h = st.Health ? ` (${st.Health.Status === 'starting' ? 'health: starting' : st.Health.Status})` : '';
      return `Up ${humanDuration(now - Date.parse(st.StartedAt))}${h}`;
    }
    case 'paused':
      return `Up ${humanDuration(now - Date.parse(st.StartedAt))} (Paused)`;
    case 'exited':
      return st.FinishedAt === ZERO_TIME
        ? `Exited (${st.ExitCode})`
        : `Exited (${st.ExitCode}) ${humanDuration(now - Date.parse(st.FinishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    default:
      return 'Created';
  }
}

function networkEntry(ep: EndpointInfo | undefined, networkId: string) {
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: null,
    MacAddress: ep?.MacAddress ?? '',
    DriverOpts: null,
    NetworkID: networkId,
    EndpointID: ep?.EndpointID ?? '',
    Gateway: ep?.Gateway ?? '',
    IPAddress: ep?.IPAddress ?? '',
    IPPrefixLen: ep?.IPPrefixLen ?? 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

/** A container's endpoint on a network the engine does not own (a swarm overlay), by network name. */
export interface ForeignEndpoint {
  NetworkID: string;
  EndpointID: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
  Aliases: string[];
  DNSNames: string[];
  /** Networks with a gateway (local bridges); swarm endpoints show none. */
  Gateway?: string;
  /** The address was asked for (`--ip`): shown under IPAMConfig. Swarm addresses always are. */
  StaticIp?: boolean;
  /** The `--ip` asked for, before the container runs and has it. */
  RequestedIp?: string;
  /** On an `--ipv6` network. */
  IPv6Address?: string;
  IPv6PrefixLen?: number;
  IPv6Gateway?: string;
  /** The IPv6 address was asked for (`--ip6`), as given. */
  RequestedIp6?: string;
}

/** IPAMConfig as dockerd shows it: the addresses asked for (Go omits empty ones), null when none. */
function ipamConfigOf(e: ForeignEndpoint): Record<string, string> | null {
  // Docker asks its IPAM for the address the swarm allocated: it shows as the static config.
  const v4 = e.StaticIp === false ? undefined : (e.RequestedIp ?? e.IPAddress);
  if (v4 === undefined && !e.RequestedIp6) return null;
  return {
    ...(v4 !== undefined ? { IPv4Address: v4 } : {}),
    ...(e.RequestedIp6 ? { IPv6Address: e.RequestedIp6 } : {}),
  };
}

function foreignEntry(e: ForeignEndpoint) {
  return {
    IPAMConfig: ipamConfigOf(e),
    Links: null,
    Aliases: e.Aliases.length ? e.Aliases : null,
    MacAddress: e.MacAddress,
    DriverOpts: null,
    NetworkID: e.NetworkID,
    EndpointID: e.EndpointID,
    Gateway: e.Gateway ?? '',
    IPAddress: e.IPAddress,
    IPPrefixLen: e.IPPrefixLen,
    IPv6Gateway: e.IPv6Gateway ?? '',
    GlobalIPv6Address: e.IPv6Address ?? '',
    GlobalIPv6PrefixLen: e.IPv6PrefixLen ?? 0,
    DNSNames: e.DNSNames,
  };
}

function networks(
  r: ContainerRecord,
  ep: EndpointInfo | undefined,
  bridgeId: string,
  foreign: Record<string, ForeignEndpoint> = {},
): Record<string, unknown> {
  const mode = r.hostConfig.NetworkMode ?? 'default';
  // Swarm task containers are created with mode `none` and get their overlay endpoints from the agent.
  if (mode === 'host' || (mode === 'none' && !Object.keys(foreign).length))
    return { [mode]: networkEntry(undefined, '') };
  const asked = r.endpointSettings ?? {};
  const out: Record<string, unknown> = Object.fromEntries(
    Object.entries(foreign).map(([name, e]) => [name, withRequestedSettings(foreignEntry(e), asked[name])]),
  );
  // A container whose own network is a swarm one has no default bridge endpoint to show.
  if (ep || ((mode === 'default' || mode === 'bridge') && !r.leftDefaultBridge))
    out.bridge = withRequestedSettings(networkEntry(ep, bridgeId), asked.bridge ?? asked.default);
  return out;
}

function mounts(r: ContainerRecord) {
  if (r.mountPoints) return r.mountPoints.filter((mp) => !mp.Unlisted).map(mountPointView);
  const binds = (r.hostConfig.Binds ?? []).map((b) => {
    const [src, dst, mode = ''] = b.split(':');
    return {
      Type: 'bind',
      Source: src,
      Destination: dst,
      Mode: mode,
      RW: !mode.split(',').includes('ro'),
      Propagation: 'rprivate',
    };
  });
  const api = (
    Array.isArray(r.hostConfig.Mounts)
      ? (r.hostConfig.Mounts as { Type?: string; Source?: string; Target?: string; ReadOnly?: boolean }[])
      : []
  ).map((m) => ({
    Type: m.Type ?? '',
    Source: m.Source ?? '',
    Destination: m.Target ?? '',
    Mode: '',
    RW: !m.ReadOnly,
    Propagation: m.Type === 'bind' ? 'rprivate' : '',
  }));
  return [...binds, ...api];
}

/** `NetworkSettings.Ports`: every exposed or published port, with its host bindings or null. */
function inspectPorts(r: ContainerRecord): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const out: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const k of Object.keys(r.config.ExposedPorts ?? {})) out[k] = null;
  for (const p of r.published ?? [])
    (out[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  return out;
}

/** ps `Ports`: published ones with their public side (`0.0.0.0:8080->8000/tcp`), exposed ones without. */
function summaryPorts(r: ContainerRecord) {
  const published = (r.published ?? []).map((p) => ({
    IP: p.hostIp,
    PrivatePort: p.containerPort,
    PublicPort: p.hostPort,
    Type: p.proto,
  }));
  const exposed = Object.keys(r.config.ExposedPorts ?? {})
    .map((k) => {
      const [port, type = 'tcp'] = k.split('/');
      return { PrivatePort: Number(port), Type: type };
    })
    .filter((e) => !published.some((p) => p.PrivatePort === e.PrivatePort && p.Type === e.Type));
  return [...published, ...exposed];
}

export function inspectView(
  r: ContainerRecord,
  p: ReturnType<typeof containerPaths>,
  ep: EndpointInfo | undefined,
  bridgeId: string,
  execIds: string[] | null,
  foreign?: Record<string, ForeignEndpoint>,
): ContainerInspect {
  const st = r.state;
  return {
    Id: r.id,
    Created: r.created,
    Path: r.path,
    Args: r.args,
    State: {
      Status: st.Status,
      Running: st.Status === 'running' || st.Status === 'paused',
      Paused: st.Status === 'paused',
      Restarting: false,
      OOMKilled: st.OOMKilled,
      Dead: st.Status === 'dead',
      Pid: st.Pid,
      ExitCode: st.ExitCode,
      Error: st.Error,
      StartedAt: st.StartedAt,
      FinishedAt: st.FinishedAt,
      ...(st.Health ? { Health: st.Health } : {}),
    },
    Image: r.imageId,
    ResolvConfPath: p.resolvConf,
    HostnamePath: p.hostname,
    HostsPath: p.hosts,
    LogPath: p.log,
    Name: r.name,
    RestartCount: r.restartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: execIds,
    HostConfig: {
      NetworkMode: 'default',
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
      Binds: null,
      LogConfig: { Type: 'json-file', Config: {} },
      Runtime: 'runc',
      ...r.hostConfig,
    },
    GraphDriver: { Name: 'overlay2', Data: { MergedDir: p.rootfs, UpperDir: p.upper, WorkDir: p.work } },
    Mounts: mounts(r),
    Config: { ...r.config, Image: r.image, Labels: r.config.Labels ?? {} },
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      SandboxKey: st.Pid ? `/proc/${st.Pid}/ns/net` : '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: inspectPorts(r),
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: ep?.EndpointID ?? '',
      Gateway: ep?.Gateway ?? '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: ep?.IPAddress ?? '',
      IPPrefixLen: ep?.IPPrefixLen ?? 0,
      IPv6Gateway: '',
      MacAddress: ep?.MacAddress ?? '',
      Networks: networks(r, ep, bridgeId, foreign),
    },
  };
}

export function summaryView(
  r: ContainerRecord,
  ep: EndpointInfo | undefined,
  bridgeId: string,
  foreign?: Record<string, ForeignEndpoint>,
): ContainerSummary {
  return {
    Id: r.id,
    Names: [r.name],
    Image: r.image,
    ImageID: r.imageId,
    Command: [r.path, ...r.args].join(' '),
    Created: Math.floor(Date.parse(r.created) / 1000),
    Ports: summaryPorts(r),
    Labels: r.config.Labels ?? {},
    State: r.state.Status,
    Status: statusText(r),
    HostConfig: { NetworkMode: r.hostConfig.NetworkMode ?? 'default' },
    NetworkSettings: { Networks: networks(r, ep, bridgeId, foreign) },
    Mounts: mounts(r),
  };
}
