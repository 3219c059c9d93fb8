import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { ApiError, badRequest, conflict, forbidden, noSuchContainer, notFound, notModified, serverError } from '../../util/errors.js';
import { newHexId } from '../../util/ids.js';
import { run } from '../../util/run.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import type { ImageStore } from '../images/store.js';
import type { BridgeNetwork } from '../network/bridge.js';
import { DEFAULT_BRIDGE } from '../network/names.js';
import { EMBEDDED_DNS, type UserBridges } from '../network/user-bridges.js';
import type { EndpointInfo } from '../types.js';
import { randomName, validName } from './names.js';
import {
  ZERO_TIME,
  containerPaths,
  listRecordIds,
  loadRecord,
  saveRecord,
  saveRecordAsync,
  forgetRecord,
  type ContainerConfig,
  type ContainerRecord,
  type HostConfig,
} from './record.js';
import { extraHostsEntries, isMounted, mountRootfs, unmountRootfs, writeEtcFiles, type HostsEntry } from './rootfs.js';
import { linkEnv, linkHostNames, normalizeLinks, parseLink } from './links.js';
import { verifyHostConfig } from './host-config.js';
import { applyUpdate, runcUpdateArgs, type UpdateConfig } from './update.js';
import { Runc, conmonCreate, processIs } from './runtime.js';
import { containerSpec } from './spec.js';
import { VolumeStore, dirSize } from '../volumes/store.js';
import { checkBindPropagation, mountForCopy, prepareMounts, releaseMounts, resolveMountPoints } from './mounts.js';
import { matchesFilters, validateFilters } from './filters.js';
import { Execs, type ExecInstance } from './exec.js';
import { EventLog } from '../events.js';
import { HealthMonitor, mergeHealthcheck, type Healthcheck } from './health.js';
import { PortPublisher, validatePortBindings, type PortBindings } from './ports.js';
import { inspectView, summaryView, type ContainerInspect, type ContainerSummary, type ForeignEndpoint } from './views.js';
import { endpointSettingsFrom, type EndpointConfigRequest } from './endpoint-settings.js';
import type { EndpointSettings } from './record.js';

export type { ContainerConfig, HostConfig, ContainerRecord } from './record.js';

/** What `create` takes: the Engine API's create body, minus networking, plus the name. */
export interface CreateOptions {
  name?: string;
  config: ContainerConfig;
  hostConfig?: HostConfig;
  /** `NetworkingConfig.EndpointsConfig` of the create request: `--ip`, `--network-alias`. */
  endpointsConfig?: Record<string, EndpointConfigRequest | null> | null;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/**
 * Runs between `runc create` and `runc start`: the container's namespaces exist (reach them
 * through `/proc/<pid>/ns/…`) but its process has not started. A throw fails the start.
 */
export type StartHook = (rec: ContainerRecord, pid: number) => Promise<void>;

const strList = (v: string[] | string | null | undefined): string[] | undefined =>
  v === null || v === undefined ? undefined : typeof v === 'string' ? [v] : v;

/** `SIGTERM`, `TERM`, `15` → the number runc and the kernel use. Docker's 400 for anything else. */
export function parseSignal(s: string): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n > 0 && n < 65) return n;
  } else {
    const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as NodeJS.Signals;
    const n = os.constants.signals[name];
    if (n !== undefined) return n;
  }
  throw badRequest(`Invalid signal: ${s}`);
}

/**
 * The node's containers: runc runs them, conmon holds their stdio, log and exit code. State
 * is a record per container on disk, so a restarted daemon adopts the containers conmon kept alive.
 * Used by the Engine API routes and directly by the swarm agent's executor.
 */
export class ContainerManager {
  readonly runc: Runc;
  readonly ports = new PortPublisher();
  private readonly records = new Map<string, ContainerRecord>();
  /** name (with slash) → ID; reserved before anything is written so concurrent creates cannot share one. */
  private readonly names = new Map<string, string>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly emitter = new EventEmitter();
  /** Exits seen per container since this daemon started: attach and `logs -f` end on a change. */
  private readonly exitSeq = new Map<string, number>();
  private readonly exitsDir: string;
  private watcher?: fs.FSWatcher;
  private poller?: NodeJS.Timeout;
  private readonly exitsPending = new Set<string>();
  private readonly startHooks: StartHook[] = [];
  /** Network modes beyond bridge/host/none that someone wires at start (attachable swarm networks). */
  private readonly networkModes: ((mode: string) => boolean)[] = [];
  private foreignEndpoints: (containerId: string) => Record<string, ForeignEndpoint> = () => ({});
  /** Consecutive quick restarts per container, for the restart policy's back-off. */
  private readonly backoff = new Map<string, number>();
  /** Containers with a restart by policy waiting for its delay: one at a time each. */
  private readonly restartsPending = new Set<string>();
  private readonly health = new Map<string, HealthMonitor>();
  private closed = false;

  private constructor(
    readonly config: DaemonConfig,
    readonly log: Logger,
    readonly images: ImageStore,
    readonly bridge: BridgeNetwork,
    /** `docker events`: what happens to containers here. */
    readonly eventLog: EventLog,
    /** Named and anonymous volumes that containers mount. */
    readonly volumes: VolumeStore,
    /** User-defined bridge networks (absent in tests of the manager alone). */
    readonly userBridges?: UserBridges,
  ) {
    const dp = daemonPaths(config);
    this.runc = new Runc(dp.runcRoot);
    this.exitsDir = dp.exits;
    this.emitter.setMaxListeners(0);
  }

  static async open(
    config: DaemonConfig, log: Logger, images: ImageStore, bridge: BridgeNetwork, events = new EventLog(),
    volumes = VolumeStore.open(config.dataRoot, log.child({ part: 'volumes' })), userBridges?: UserBridges,
  ): Promise<ContainerManager> {
    const m = new ContainerManager(config, log, images, bridge, events, volumes, userBridges);
    if (userBridges) {
      userBridges.containerName = (id) => m.records.get(id)?.name.slice(1);
      m.ports.bridges = () => [
        { device: DEFAULT_BRIDGE.device, subnet: DEFAULT_BRIDGE.subnet },
        ...userBridges.list().map((n) => ({ device: n.device, subnet: n.subnet })),
      ];
    }
    volumes.setRefs((name) => m.all().filter((r) => r.mountPoints?.some((mp) => mp.Type === 'volume' && mp.Name === name)).map((r) => r.id));
    const dp = daemonPaths(config);
    for (const d of [dp.containers, dp.runcRoot, dp.conmon, dp.exits]) fs.mkdirSync(d, { recursive: true });
    await m.adopt();
    images.setInUseCheck((imageId) => [...m.records.values()].find((r) => r.imageId === imageId)?.id);
    bridge.containerName = (id) => m.records.get(id)?.name.slice(1);
    userBridges?.refreshDns(); // names are known now
    m.watchExits();
    return m;
  }

  paths(id: string) {
    return containerPaths(this.config.dataRoot, this.config.execRoot, id);
  }

  /** Adds a step between create and start (overlay networks for swarm tasks, for instance). */
  addStartHook(hook: StartHook): void {
    this.startHooks.push(hook);
  }

  /** Lets `NetworkMode: <name>` through create; whoever accepts it must wire it in a start hook. */
  acceptNetworkMode(accepts: (mode: string) => boolean): void {
    this.networkModes.push(accepts);
  }

  /** Who knows a container's endpoints on networks the engine does not own (swarm overlays), for inspect and ps. */
  setForeignEndpoints(fn: (containerId: string) => Record<string, ForeignEndpoint>): void {
    this.foreignEndpoints = fn;
  }

  // --- lookup -----------------------------------------------------------------------------

  /** Docker's lookup: full ID, then exact name, then a unique ID prefix. 404 otherwise. */
  get(ref: string): ContainerRecord {
    const byId = this.records.get(ref);
    if (byId) return byId;
    const byName = this.names.get(ref.startsWith('/') ? ref : '/' + ref);
    if (byName && this.records.has(byName)) return this.records.get(byName)!;
    if (ref.indexOf('/', 1) > 0) {
      const linked = this.byLinkName(ref);
      if (linked) return linked;
    }
    if (/^[a-f0-9]+$/.test(ref)) {
      const matches = [...this.records.keys()].filter((id) => id.startsWith(ref));
      if (matches.length > 1) throw badRequest(`Multiple IDs found with provided prefix: ${ref}`);
      if (matches.length === 1) return this.records.get(matches[0])!;
    }
    throw noSuchContainer(ref);
  }

  find(ref: string): ContainerRecord | undefined {
    try {
      return this.get(ref);
    } catch {
      return undefined;
    }
  }

  all(): ContainerRecord[] {
    return [...this.records.values()];
  }

  isRunning(ref: string): boolean {
    return this.get(ref).state.Status === 'running';
  }

  /** Number of exits seen for this container since the daemon started. */
  exits(id: string): number {
    return this.exitSeq.get(id) ?? 0;
  }

  counts(): { total: number; running: number; paused: number; stopped: number } {
    const all = this.all();
    const running = all.filter((r) => r.state.Status === 'running').length;
    const paused = all.filter((r) => r.state.Status === 'paused').length;
    return { total: all.length, running, paused, stopped: all.length - running - paused };
  }

  endpoint(id: string): EndpointInfo | undefined {
    const ep = this.bridge.endpoints().find((e) => e.containerId === id);
    if (!ep) return undefined;
    const gw = '172.17.0.1';
    return { NetworkID: this.bridge.networkIds.bridge, EndpointID: ep.endpointId, Gateway: gw, IPAddress: ep.ip, IPPrefixLen: 16, MacAddress: ep.mac };
  }

  inspect(ref: string): ContainerInspect {
    const rec = this.get(ref);
    return inspectView(rec, this.paths(rec.id), this.endpoint(rec.id), this.bridge.networkIds.bridge, this.execIds(rec.id), this.otherEndpoints(rec.id));
  }

  /** `docker ps`: running ones unless `all`; filters as Docker's (`label`, `name`, `id`, `status`, …). */
  list(opts: { all?: boolean; filters?: Map<string, string[]>; limit?: number } = {}): ContainerSummary[] {
    const filters = opts.filters ?? new Map<string, string[]>();
    validateFilters(filters);
    // An explicit status filter shows non-running containers too, as in Docker.
    const all = opts.all || filters.has('status') || filters.has('exited');
    let out = this.all()
      .filter((r) => all || hasProcess(r))
      .filter((r) => matchesFilters(r, filters, (img) => this.imageMatches(r, img)))
      .sort((a, b) => b.created.localeCompare(a.created));
    if (opts.limit && opts.limit > 0) out = out.slice(0, opts.limit);
    return out.map((r) => summaryView(r, this.endpoint(r.id), this.bridge.networkIds.bridge, this.otherEndpoints(r.id)));
  }

  /** Endpoints beyond the default bridge: user-defined bridges, then swarm networks. */
  private otherEndpoints(id: string): Record<string, ForeignEndpoint> {
    const own: Record<string, ForeignEndpoint> = {};
    for (const { network: n, endpoint: e } of this.userBridges?.endpointsOf(id) ?? []) {
      own[n.name] = {
        NetworkID: n.id, EndpointID: e.endpointId, IPAddress: e.ip, IPPrefixLen: Number(n.subnet.split('/')[1]), MacAddress: e.mac,
        Aliases: e.aliases, DNSNames: [this.records.get(id)?.name.slice(1) ?? '', ...e.aliases, id.slice(0, 12)].filter(Boolean),
        Gateway: n.internal ? '' : n.gateway, StaticIp: e.staticIp,
        ...(e.ip6 && n.v6 ? { IPv6Address: e.ip6, IPv6PrefixLen: Number(n.v6.subnet.split('/')[1]), IPv6Gateway: n.internal ? '' : n.v6.gateway } : {}),
        ...(e.staticIp6 ? { RequestedIp6: this.records.get(id)?.endpointSettings?.[n.name]?.IPv6Address ?? e.ip6 } : {}),
      };
    }
    // Networks to join at the next start show without an address, as in Docker.
    const rec = this.records.get(id);
    const mode = rec?.hostConfig.NetworkMode ?? 'default';
    for (const name of [mode, ...(rec?.connectedNetworks ?? [])]) {
      const n = this.userBridgeOf(name);
      if (!n || own[n.name] || mode === 'host' || mode === 'none') continue;
      const s = rec?.endpointSettings?.[name];
      own[n.name] = {
        NetworkID: '', EndpointID: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '', Aliases: s?.Aliases ?? [], DNSNames: [],
        Gateway: '', StaticIp: !!s?.IPv4Address, RequestedIp: s?.IPv4Address, RequestedIp6: s?.IPv6Address,
      };
    }
    return { ...own, ...this.foreignEndpoints(id) };
  }

  /** The user bridge a network mode or connected network names, if it is one. */
  private userBridgeOf(name: string) {
    return this.userBridges?.find(name);
  }

  /** Containers carrying every `key=value` given (the swarm agent finds its tasks this way). */
  listByLabels(labels: Record<string, string>): ContainerRecord[] {
    return this.all().filter((r) => Object.entries(labels).every(([k, v]) => r.config.Labels?.[k] === v));
  }

  private imageMatches(r: ContainerRecord, ref: string): boolean {
    if (r.image === ref || r.imageId === ref) return true;
    try {
      return this.images.lookup(ref).id === r.imageId;
    } catch {
      return false;
    }
  }

  // --- lifecycle ----------------------------------------------------------------------------

  async create(opts: CreateOptions): Promise<{ Id: string; Warnings: string[] }> {
    const cfg = opts.config ?? {};
    if (!cfg.Image) throw badRequest('No image specified'); // Docker's "config.Image" check
    const hostConfig: HostConfig = verifyHostConfig({ NetworkMode: 'default', ...(opts.hostConfig ?? {}) });
    const mode = hostConfig.NetworkMode ?? 'default';
    const userBridge = this.userBridgeOf(mode);
    if (!['default', 'bridge', 'host', 'none'].includes(mode) && !userBridge && !this.networkModes.some((f) => f(mode))) throw badRequest(`network ${mode} not found`);
    const settings: NonNullable<ContainerRecord['endpointSettings']> = {};
    // API 1.41 (dockerd 20.10 verifyNetworkingConfig): one network at create, the others by connect.
    const asked = Object.keys(opts.endpointsConfig ?? {});
    if (asked.length > 1) throw badRequest(`Container cannot be connected to network endpoints: ${asked.join(', ')}`);
    for (const [net, ec] of Object.entries(opts.endpointsConfig ?? {})) {
      const s = endpointSettingsFrom(ec);
      if (!s) continue;
      if (this.userBridgeOf(net)) this.userBridges!.validate(net, { ip: s.IPv4Address, ip6: s.IPv6Address });
      else if ((s.IPv4Address || s.IPv6Address) && ['default', 'bridge'].includes(net)) throw badRequest('user specified IP address is supported on user defined networks only');
      else if (s.Aliases && ['default', 'bridge'].includes(net)) throw badRequest('network-scoped alias is supported only for containers in user defined networks');
      settings[net] = s;
    }
    let name: string;
    if (opts.name) {
      name = validName(opts.name);
      const owner = this.names.get(name);
      if (owner) {
        throw conflict(`Conflict. The container name "${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
    } else {
      do name = '/' + randomName(); while (this.names.has(name));
    }
    if (typeof cfg.MacAddress === 'string' && cfg.MacAddress !== '' && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(cfg.MacAddress)) throw badRequest(`${cfg.MacAddress} is not a valid mac address`);
    const links = normalizeLinks(hostConfig.Links, name);
    if (links.length) {
      if (mode === 'host') throw badRequest("conflicting options: host type networking can't be used with links. This would result in undefined behavior");
      for (const l of links) {
        const child = parseLink(l).child;
        try {
          this.get(child);
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) throw badRequest(`could not get container for ${child.slice(1)}: No such container: ${child.slice(1)}`);
          throw e;
        }
      }
      hostConfig.Links = links;
    }
    const id = newHexId();
    this.names.set(name, id);
    const p = this.paths(id);
    /** Anonymous volumes made for this create, removed again if it fails. */
    const madeVolumes: string[] = [];
    try {
      const img = await this.images.resolve(cfg.Image);
      const entrypoint = strList(cfg.Entrypoint) ?? (cfg.Entrypoint === undefined || cfg.Entrypoint === null ? img.config.Entrypoint ?? [] : []);
      // An entrypoint given at create time drops the image's Cmd, as in Docker.
      const cmd = strList(cfg.Cmd) ?? (strList(cfg.Entrypoint) ? [] : img.config.Cmd ?? []);
      const argv = [...entrypoint, ...cmd];
      if (argv.length === 0) throw badRequest('No command specified');
      const env = mergeEnv(img.config.Env ?? [], cfg.Env ?? []);
      if (!env.some((e) => e.startsWith('PATH='))) env.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
      const config: ContainerConfig = {
        ...cfg,
        Hostname: cfg.Hostname || id.slice(0, 12),
        Domainname: cfg.Domainname ?? '',
        User: cfg.User || img.config.User || '',
        Env: env,
        Cmd: cmd,
        Entrypoint: strList(cfg.Entrypoint) ?? (img.config.Entrypoint?.length ? img.config.Entrypoint : null),
        WorkingDir: cfg.WorkingDir || img.config.WorkingDir || '',
        Labels: { ...(img.config.Labels ?? {}), ...(cfg.Labels ?? {}) },
        ...(img.config.ExposedPorts || cfg.ExposedPorts ? { ExposedPorts: { ...(img.config.ExposedPorts ?? {}), ...(cfg.ExposedPorts ?? {}) } } : {}),
        StopSignal: cfg.StopSignal || img.config.StopSignal || undefined,
        Tty: cfg.Tty === true,
        OpenStdin: cfg.OpenStdin === true,
        StdinOnce: cfg.StdinOnce === true,
      };
      const health = mergeHealthcheck(cfg.Healthcheck as Healthcheck | undefined, img.config.Healthcheck);
      if (health) config.Healthcheck = health;
      if (config.StopSignal) parseSignal(config.StopSignal);
      const rec: ContainerRecord = {
        id,
        name,
        created: new Date().toISOString(),
        image: cfg.Image,
        imageId: img.id,
        path: argv[0],
        args: argv.slice(1),
        config,
        hostConfig,
        state: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
        restartCount: 0,
        ...(Object.keys(settings).length ? { endpointSettings: settings } : {}),
      };
      // Bad binds and mounts are refused now, not at start (the user is looked up at start, in the rootfs).
      validatePortBindings(hostConfig.PortBindings);
      rec.mountPoints = resolveMountPoints(this.volumes, hostConfig, cfg.Volumes, img.config.Volumes, (ref) => this.get(ref), madeVolumes);
      fs.mkdirSync(p.dir, { recursive: true });
      for (const d of [p.upper, p.work, p.rootfs]) fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(p.log, '');
      await saveRecordAsync(p.record, rec);
      this.records.set(id, rec);
      this.log.info({ id, name, image: cfg.Image }, 'container created');
      this.event(rec, 'create');
      return { Id: id, Warnings: [] };
    } catch (e) {
      this.names.delete(name);
      this.records.delete(id);
      fs.rmSync(p.dir, { recursive: true, force: true });
      for (const v of madeVolumes) await this.volumes.remove(v).catch(() => undefined);
      throw e;
    }
  }

  start(ref: string): Promise<void> {
    const rec = this.get(ref);
    return this.locked(rec.id, () => this.doStart(rec));
  }

  private async doStart(rec: ContainerRecord): Promise<void> {
    if (!this.records.has(rec.id)) throw noSuchContainer(rec.id);
    if (rec.state.Status === 'running') throw notModified();
    if (rec.state.Status === 'paused') throw conflict('cannot start a paused container, try unpause instead');
    if (rec.state.Status === 'removing') throw conflict(`container ${rec.id} is marked for removal and cannot be started`);
    const p = this.paths(rec.id);
    const id = rec.id;
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    const hostname = rec.config.Hostname || id.slice(0, 12);
    let pid = 0;
    const t: Record<string, number> = {};
    let t0 = performance.now();
    const lap = (k: string) => { const n = performance.now(); t[k] = Math.round(n - t0); t0 = n; };
    try {
      const img = await this.images.resolve(rec.imageId);
      // A previous run's state, if a crash left any (teardown removes it otherwise). Its conmon
      // must be gone before we go on, or its late exit file would pass for this run's.
      if (fs.existsSync(path.join(this.runc.root, id))) {
        const old = readPid(p.conmonPid);
        await this.runc.delete(id);
        for (let i = 0; i < 60 && processIs(old, 'conmon'); i++) await new Promise((r) => setTimeout(r, 50));
      }
      await mountRootfs(img.layerDirs, p);
      await prepareMounts(this.volumes, rec, p.rootfs);
      checkBindPropagation(rec);
      lap('mount');
      const links = this.resolveLinks(rec);
      const etc = { domainname: rec.config.Domainname || undefined, extra: [...extraHostsEntries(rec.hostConfig.ExtraHosts), ...links.hosts] };
      this.etcOptions.set(id, etc);
      writeEtcFiles(p, hostname, etc);
      const spec = containerSpec(rec, p, hostname, links.env) as { linux: { namespaces: { type: string }[] } };
      if (mode === 'host') spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
      fs.writeFileSync(p.spec, JSON.stringify(spec));
      fs.mkdirSync(p.run, { recursive: true });
      fs.rmSync(path.join(this.exitsDir, id), { force: true });
      fs.rmSync(path.join(p.run, 'exit'), { force: true });
      pid = await conmonCreate({
        id, name: rec.name.slice(1), bundle: p.bundle, runDir: p.run, pidFile: p.pidFile, conmonPidFile: p.conmonPid,
        exitDir: this.exitsDir, logPath: p.log, runcRoot: this.runc.root, tty: rec.config.Tty === true,
        stdin: rec.config.OpenStdin === true, stdinOnce: rec.config.StdinOnce === true, stderrFile: p.conmonStderr,
      });
      rec.conmonPid = readPid(p.conmonPid);
      lap('create');
      if ((mode === 'default' || mode === 'bridge') && !rec.leftDefaultBridge) {
        const ep = await this.bridge.connect(id, pid, typeof rec.config.MacAddress === 'string' && rec.config.MacAddress ? rec.config.MacAddress.toLowerCase() : undefined);
        writeEtcFiles(p, hostname, { ...etc, ip: ep.IPAddress });
        const exposed = Object.keys(rec.config.ExposedPorts ?? {});
        rec.published = this.ports.resolve(id, rec.hostConfig.PortBindings as PortBindings | undefined, exposed, rec.hostConfig.PublishAllPorts === true);
        await this.ports.publish(id, ep.IPAddress, rec.published);
      }
      const primary = await this.joinUserBridges(rec, pid);
      if (mode !== 'default' && mode !== 'bridge' && (rec.connectedNetworks ?? []).includes(DEFAULT_BRIDGE.name)) await this.bridge.connectLater(id, pid);
      // A default-bridge container connected to user bridges keeps its ports on the default bridge.
      if (primary && mode !== 'default' && mode !== 'bridge') {
        writeEtcFiles(p, hostname, { ...etc, ip: primary.ip });
        const exposed = Object.keys(rec.config.ExposedPorts ?? {});
        rec.published = this.ports.resolve(id, rec.hostConfig.PortBindings as PortBindings | undefined, exposed, rec.hostConfig.PublishAllPorts === true);
        await this.ports.publish(id, primary.ip, rec.published);
      }
      lap('network');
      for (const hook of this.startHooks) await hook(rec, pid);
      await this.runc.start(id, pid);
      lap('start');
    } catch (e) {
      const msg = runtimeMessage(e);
      this.log.warn({ id, err: msg }, 'container failed to start');
      await this.teardown(rec);
      const notFound = /executable file not found|no such file or directory/.test(msg);
      const denied = /permission denied/.test(msg);
      rec.state.Error = msg;
      rec.state.ExitCode = notFound ? 127 : denied ? 126 : 128;
      saveRecord(p.record, rec);
      if (rec.hostConfig.AutoRemove) setImmediate(() => void this.remove(id, { force: true, volumes: true }).catch(() => undefined));
      if (e instanceof ApiError) throw e;
      throw new ApiError(notFound || denied ? 400 : 500, `failed to create task for container: failed to create shim task: OCI runtime create failed: ${msg}: unknown`);
    }
    rec.state = { ...rec.state, Status: 'running', Pid: pid, ExitCode: 0, Error: '', StartedAt: new Date().toISOString(), OOMKilled: false, Health: undefined };
    rec.manuallyStopped = false;
    await saveRecordAsync(p.record, rec);
    this.watchHealth(rec);
    this.log.info({ id, pid, ms: t }, 'container started');
    this.event(rec, 'start');
  }

  /** What the last start wrote into a container's /etc/hosts besides its own line (ExtraHosts, links). */
  private readonly etcOptions = new Map<string, { domainname?: string; extra: HostsEntry[] }>();

  /**
   * A container's own line in /etc/hosts once its address is known elsewhere (a swarm task's
   * network, from a start hook): `<ip> <hostname> <aliases…>`, what `hostname -i` reads.
   */
  setOwnAddress(id: string, ip: string, aliases: string[] = []): void {
    const rec = this.get(id);
    writeEtcFiles(this.paths(rec.id), rec.config.Hostname || rec.id.slice(0, 12), { ...(this.etcOptions.get(rec.id) ?? { extra: [] }), ip, aliases });
  }

  /**
   * The running containers a start links to (default bridge only, as in Docker; on user
   * networks names resolve by DNS): their /etc/hosts lines and `<ALIAS>_…` variables.
   */
  private resolveLinks(rec: ContainerRecord): { hosts: HostsEntry[]; env: string[] } {
    const out = { hosts: [] as HostsEntry[], env: [] as string[] };
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    const stored = Array.isArray(rec.hostConfig.Links) ? (rec.hostConfig.Links as string[]) : [];
    if (!stored.length || (mode !== 'default' && mode !== 'bridge')) return out;
    for (const l of stored) {
      const link = parseLink(l);
      const child = this.find(link.child);
      const ip = child ? this.endpoint(child.id)?.IPAddress : undefined;
      if (!child || !hasProcess(child) || !ip) throw conflict(`Cannot link to a non running container: ${link.child} AS ${link.name}`);
      out.hosts.push({ ip, names: linkHostNames(link, child.config.Hostname || child.id.slice(0, 12)) });
      out.env.push(...linkEnv(link, ip, child.config.Env ?? [], Object.keys(child.config.ExposedPorts ?? {})));
    }
    return out;
  }

  /** `DELETE /containers/<parent>/<alias>?link=true`: the parent forgets the link; both containers stay. */
  removeLink(ref: string): void {
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    // dockerd's ContainerRm looks the name up first: an unknown name is a 404 before any link check.
    if (!this.find(name)) this.get(ref); // the 404 names the container as it was asked for
    const cut = name.lastIndexOf('/');
    if (cut <= 0) throw serverError('Conflict, cannot remove the default link name of the container');
    const parent = this.find(name.slice(0, cut));
    if (!parent) throw serverError(`Cannot get parent ${name.slice(0, cut)} for link ${name}`);
    const kept = (parent.hostConfig.Links as string[]).filter((l) => parseLink(l).name !== name);
    parent.hostConfig.Links = kept.length ? kept : null;
    saveRecord(this.paths(parent.id).record, parent);
  }

  /** `/<parent>/<alias>` → the linked container, as dockerd's name lookup finds it. */
  private byLinkName(ref: string): ContainerRecord | undefined {
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    const cut = name.lastIndexOf('/');
    if (cut <= 0) return undefined;
    const parentId = this.names.get(name.slice(0, cut));
    const parent = parentId ? this.records.get(parentId) : undefined;
    const links = Array.isArray(parent?.hostConfig.Links) ? (parent!.hostConfig.Links as string[]) : [];
    const link = links.map(parseLink).find((l) => l.name === name);
    const childId = link ? this.names.get(link.child) : undefined;
    return childId ? this.records.get(childId) : undefined;
  }

  /** Undoes a run: runc state, network endpoint, rootfs mount. Safe to repeat. */
  private async teardown(rec: ContainerRecord, t: Record<string, number> = {}): Promise<void> {
    let t0 = performance.now();
    const lap = (k: string) => { const n = performance.now(); t[k] = Math.round(n - t0); t0 = n; };
    this.health.get(rec.id)?.stop();
    this.health.delete(rec.id);
    await this.ports.unpublish(rec.id).catch((e) => this.log.warn({ err: e, id: rec.id }, 'unpublishing ports failed'));
    rec.published = undefined;
    lap('ports');
    if (!this.runc.removeStopped(rec.id)) await this.runc.delete(rec.id);
    lap('runcDelete');
    await this.bridge.disconnect(rec.id).catch((e) => this.log.warn({ err: e, id: rec.id }, 'bridge disconnect failed'));
    await this.userBridges?.disconnectAll(rec.id).catch((e) => this.log.warn({ err: e, id: rec.id }, 'bridge network disconnect failed'));
    lap('network');
    await unmountRootfs(this.paths(rec.id).rootfs);
    lap('umount');
    await releaseMounts(this.volumes, rec, this.log);
    rec.conmonPid = undefined;
  }

  /** StopSignal (default SIGTERM), then SIGKILL after `timeoutSec` (default: StopTimeout or 10; -1 waits forever). */
  async stop(ref: string, timeoutSec?: number): Promise<void> {
    const rec = this.get(ref);
    // Also cancels a pending restart by policy.
    rec.manuallyStopped = true;
    // Off the event loop: a scale-down stops many containers at once.
    await saveRecordAsync(this.paths(rec.id).record, rec).catch((e) => { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; });
    // A start in flight (a restart by policy, say) finishes first, then is stopped.
    await this.locked(rec.id, async () => undefined);
    rec.manuallyStopped = true; // that start cleared it
    if (!hasProcess(rec)) throw notModified();
    await this.thaw(rec);
    const t = timeoutSec ?? rec.config.StopTimeout ?? 10;
    const sig = parseSignal(rec.config.StopSignal || 'SIGTERM');
    this.event(rec, 'kill', { signal: String(sig) });
    await this.signal(rec, sig);
    if (await this.waitNotRunning(rec.id, t < 0 ? undefined : t * 1000)) return this.event(rec, 'stop');
    this.log.info({ id: rec.id, timeoutSec: t }, 'container ignored its stop signal; killing');
    await this.signal(rec, 9);
    if (!(await this.waitNotRunning(rec.id, 30_000))) throw serverError(`container ${rec.id} did not exit after SIGKILL`);
    this.event(rec, 'stop');
  }

  /** `docker pause` / `unpause`: the freezer cgroup, through runc. */
  async pause(ref: string): Promise<void> {
    const rec = this.get(ref);
    await this.locked(rec.id, async () => {
      if (rec.state.Status === 'paused') throw conflict(`Container ${rec.id} is already paused`);
      if (rec.state.Status !== 'running') throw conflict(`Container ${rec.id} is not running`);
      await this.runc.pause(rec.id);
      rec.state.Status = 'paused';
      saveRecord(this.paths(rec.id).record, rec);
      this.event(rec, 'pause');
    });
  }

  async unpause(ref: string): Promise<void> {
    const rec = this.get(ref);
    await this.locked(rec.id, async () => {
      if (rec.state.Status !== 'paused') throw conflict(`Container ${rec.id} is not paused`);
      await this.runc.resume(rec.id);
      rec.state.Status = 'running';
      saveRecord(this.paths(rec.id).record, rec);
      this.event(rec, 'unpause');
    });
  }

  /** `docker rename`. */
  rename(ref: string, newName: string): void {
    const rec = this.get(ref);
    const name = validName(newName);
    if (name === rec.name) throw conflict(`Renaming a container with the same name as its current name`);
    const owner = this.names.get(name);
    if (owner) throw conflict(`Conflict. The container name "${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`);
    this.names.delete(rec.name);
    this.names.set(name, rec.id);
    const oldName = rec.name;
    rec.name = name;
    saveRecord(this.paths(rec.id).record, rec);
    this.event(rec, 'rename', { oldName });
    this.userBridges?.refreshDns();
  }

  /** Records the networks a container joins beyond its NetworkMode (`docker network connect` / `disconnect`). */
  setConnectedNetworks(ref: string, names: string[]): void {
    const rec = this.get(ref);
    if (names.length) rec.connectedNetworks = names;
    else delete rec.connectedNetworks;
    saveRecord(this.paths(rec.id).record, rec);
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
      if (!['default', 'bridge', 'host', 'none'].includes(n) && !this.userBridgeOf(n) && !this.networkModes.some((f) => f(n))) throw notFound(`network ${n} not found`);
    }
    const names = [mode, ...(rec.connectedNetworks ?? [])].filter((n, i, a) => a.indexOf(n) === i && this.userBridgeOf(n));
    let primary: { ip: string; gateway: string } | undefined;
    for (const name of names) {
      const s = rec.endpointSettings?.[name];
      const ep = await this.userBridges!.connect(name, rec.id, pid, { ip: s?.IPv4Address, ip6: s?.IPv6Address, aliases: s?.Aliases, mac: s?.MacAddress, links: s?.Links });
      if (!primary) primary = { ip: ep.ip, gateway: this.userBridgeOf(name)!.gateway };
    }
    if (primary) await this.useEmbeddedDns(rec, pid, primary.gateway);
    return primary;
  }

  /** Docker's 127.0.0.11, led to the resolver on `gateway`. The file in place: it is bind-mounted by inode. */
  private async useEmbeddedDns(rec: ContainerRecord, pid: number, gateway: string): Promise<void> {
    await this.userBridges!.redirectResolver(pid, gateway);
    fs.writeFileSync(this.paths(rec.id).resolvConf, `nameserver ${EMBEDDED_DNS}\noptions ndots:0\n`);
  }

  /** Whether `network` names a user-defined bridge (the API routes connect/disconnect through here then). */
  isUserBridge(network: string): boolean {
    return !!this.userBridgeOf(network);
  }

  /** `docker network connect` to a user bridge: now when running, and at every start. */
  async connectUserBridge(ref: string, network: string, settings: EndpointSettings = {}): Promise<void> {
    const rec = this.get(ref);
    const n = this.userBridgeOf(network);
    if (!n) throw notFound(`network ${network} not found`);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (mode === 'host' || mode.startsWith('container:')) throw badRequest('container sharing network namespace with another container or host cannot be connected to any other network');
    if (mode === 'none') throw badRequest('container cannot be connected to multiple networks with one of the networks in private (none) mode');
    this.userBridges!.validate(n.name, { ip: settings.IPv4Address, ip6: settings.IPv6Address });
    const joined = mode === n.name || mode === n.id || (rec.connectedNetworks ?? []).includes(n.name);
    if (joined && (rec.state.Status !== 'running' || n.endpoints[rec.id])) throw forbidden(`endpoint with name ${rec.name.slice(1)} already exists in network ${n.name}`);
    await this.locked(rec.id, async () => {
      if (rec.state.Status === 'running' || rec.state.Status === 'paused') {
        await this.userBridges!.connect(n.name, rec.id, rec.state.Pid, { ip: settings.IPv4Address, ip6: settings.IPv6Address, aliases: settings.Aliases, mac: settings.MacAddress, links: settings.Links });
        // The first user bridge a container joins brings the embedded resolver; later ones keep it.
        if (this.userBridges!.endpointsOf(rec.id).length === 1) await this.useEmbeddedDns(rec, rec.state.Pid, n.gateway);
      }
      if (!joined) rec.connectedNetworks = [...(rec.connectedNetworks ?? []), n.name];
      if (Object.keys(settings).length) rec.endpointSettings = { ...(rec.endpointSettings ?? {}), [n.name]: settings };
      saveRecord(this.paths(rec.id).record, rec);
    });
  }

  /** `docker network connect bridge`: the default bridge as an extra network (or back after a disconnect). */
  async connectDefaultBridge(ref: string): Promise<void> {
    const rec = this.get(ref);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (mode === 'host' || mode.startsWith('container:')) throw badRequest('container sharing network namespace with another container or host cannot be connected to any other network');
    if (mode === 'none') throw badRequest('container cannot be connected to multiple networks with one of the networks in private (none) mode');
    const primary = mode === 'default' || mode === 'bridge';
    const joined = primary ? !rec.leftDefaultBridge : (rec.connectedNetworks ?? []).includes(DEFAULT_BRIDGE.name);
    if (joined) throw forbidden(`endpoint with name ${rec.name.slice(1)} already exists in network ${DEFAULT_BRIDGE.name}`);
    await this.locked(rec.id, async () => {
      if (rec.state.Status === 'running' || rec.state.Status === 'paused') await this.bridge.connectLater(rec.id, rec.state.Pid);
      if (primary) delete rec.leftDefaultBridge;
      else rec.connectedNetworks = [...(rec.connectedNetworks ?? []), DEFAULT_BRIDGE.name];
      saveRecord(this.paths(rec.id).record, rec);
    });
  }

  /** `docker network disconnect bridge`. */
  async disconnectDefaultBridge(ref: string): Promise<void> {
    const rec = this.get(ref);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    const primary = mode === 'default' || mode === 'bridge';
    const joined = primary ? !rec.leftDefaultBridge : (rec.connectedNetworks ?? []).includes(DEFAULT_BRIDGE.name);
    if (!joined) throw serverError(`container ${rec.id} is not connected to network ${DEFAULT_BRIDGE.name}`);
    await this.locked(rec.id, async () => {
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
      saveRecord(this.paths(rec.id).record, rec);
    });
  }

  /** `docker network disconnect` from a user bridge. */
  async disconnectUserBridge(ref: string, network: string): Promise<void> {
    const rec = this.get(ref);
    const n = this.userBridgeOf(network);
    if (!n) throw notFound(`network ${network} not found`);
    await this.locked(rec.id, async () => {
      const had = await this.userBridges!.disconnect(n.name, rec.id);
      const listed = (rec.connectedNetworks ?? []).includes(n.name);
      if (!had && !listed) throw serverError(`container ${rec.id} is not connected to network ${n.name}`);
      const kept = (rec.connectedNetworks ?? []).filter((x) => x !== n.name);
      if (kept.length) rec.connectedNetworks = kept;
      else delete rec.connectedNetworks;
      if (rec.endpointSettings) delete rec.endpointSettings[n.name];
      saveRecord(this.paths(rec.id).record, rec);
    });
  }

  /** `docker update`: new limits and restart policy, stored and (resources) applied to a running container. */
  update(ref: string, u: UpdateConfig): Promise<{ Warnings: string[] }> {
    const rec = this.get(ref);
    return this.locked(rec.id, async () => {
      if (rec.state.Status === 'removing' || rec.state.Status === 'dead') throw badRequest(`Cannot update container ${rec.id}: container is marked for removal and cannot be "update"`);
      const { next, warnings } = applyUpdate(rec.id, rec.hostConfig, u);
      const args = runcUpdateArgs(u);
      if (hasProcess(rec) && args.length) {
        const r = await this.runc.update(rec.id, args);
        if (r.code !== 0) throw serverError(`Cannot update container ${rec.id}: ${(r.stderr || r.stdout).trim()}`);
      }
      rec.hostConfig = next;
      saveRecord(this.paths(rec.id).record, rec);
      this.event(rec, 'update');
      return { Warnings: warnings };
    });
  }

  /**
   * Runs `fn` on the container's merged root filesystem (`docker cp`, `export`, `commit`): the
   * running container's own mount, or one made for the call while it is stopped.
   */
  async withRootfs<T>(ref: string, fn: (rootfs: string, rec: ContainerRecord) => Promise<T>, opts: { live?: boolean } = {}): Promise<T> {
    const rec = this.get(ref);
    const p = this.paths(rec.id);
    // `live`: the container's view with its volumes and binds (docker cp): a running one's through its init.
    const procRoot = `/proc/${rec.state.Pid}/root`;
    if (opts.live && hasProcess(rec) && rec.state.Pid > 0 && fs.existsSync(procRoot)) return fn(procRoot, rec);
    if (hasProcess(rec) && isMounted(p.rootfs)) return fn(p.rootfs, rec);
    // Stopped: held against a start meanwhile, which would mount (and later unmount) it too.
    return this.locked(rec.id, async () => {
      if (rec.state.Status === 'removing') throw conflict(`container ${rec.id} is marked for removal`);
      if (isMounted(p.rootfs)) return fn(p.rootfs, rec);
      const img = await this.images.resolve(rec.imageId);
      await mountRootfs(img.layerDirs, p);
      let release = async () => undefined as void;
      try {
        if (opts.live) release = await mountForCopy(this.volumes, rec, p.rootfs);
        return await fn(p.rootfs, rec);
      } finally {
        await unmountRootfs(p.rootfs);
        await release();
      }
    });
  }

  /** The image's layer directories under the container's upper dir (`docker diff`, `commit`). */
  async layers(ref: string): Promise<{ rec: ContainerRecord; upper: string; lower: string[] }> {
    const rec = this.get(ref);
    const img = await this.images.resolve(rec.imageId);
    return { rec, upper: this.paths(rec.id).upper, lower: img.layerDirs };
  }

  /** `docker top`: `ps` output for the container's processes. */
  async top(ref: string, psArgs = '-ef'): Promise<{ Titles: string[]; Processes: string[][] }> {
    const rec = this.get(ref);
    if (rec.state.Status !== 'running' && rec.state.Status !== 'paused') throw conflict(`Container ${rec.id} is not running`);
    const pids = new Set(await this.runc.ps(rec.id));
    const r = await run('ps', psArgs.split(/\s+/).filter(Boolean));
    const lines = r.stdout.split('\n').filter(Boolean);
    const titles = lines[0].trim().split(/\s+/);
    const pidCol = titles.indexOf('PID');
    if (pidCol < 0) throw serverError(`Couldn't find PID field in ps output`);
    const rows = lines.slice(1).map((l) => {
      const f = l.trim().split(/\s+/);
      return [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')];
    });
    return { Titles: titles, Processes: rows.filter((f) => pids.has(Number(f[pidCol]))) };
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const rec = this.get(ref);
    const sig = parseSignal(signal);
    if (!hasProcess(rec)) throw conflict(`Cannot kill container: ${ref}: Container ${rec.id} is not running`);
    if (sig === 9) await this.thaw(rec);
    this.event(rec, 'kill', { signal: String(sig) });
    await this.runc.kill(rec.id, sig, sig === 9);
    if (sig === 9) await this.waitNotRunning(rec.id, 30_000);
  }

  async restart(ref: string, timeoutSec?: number): Promise<void> {
    const rec = this.get(ref);
    if (hasProcess(rec)) await this.stop(rec.id, timeoutSec).catch((e) => { if (!(e instanceof ApiError && e.status === 304)) throw e; });
    await this.start(rec.id).catch((e) => { if (!(e instanceof ApiError && e.status === 304)) throw e; });
    rec.restartCount++;
    saveRecord(this.paths(rec.id).record, rec);
    this.event(rec, 'restart');
  }

  /** `docker container prune`: every stopped container; the space is their writable layers', as dockerd counts it. */
  async prune(): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    for (const r of this.all()) {
      if (hasProcess(r) || this.restartsPending.has(r.id) || r.state.Status === 'removing') continue;
      const size = dirSize(this.paths(r.id).upper);
      try {
        await this.remove(r.id);
      } catch (e) {
        // Started or removed meanwhile: not this prune's to take.
        if (e instanceof ApiError && (e.status === 409 || e.status === 404)) continue;
        throw e;
      }
      deleted.push(r.id);
      space += size;
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: space };
  }

  /** dockerd 20.10's refusal to remove a live container without force (daemon/delete.go). */
  private removeRunningError(rec: ContainerRecord) {
    const state = this.restartsPending.has(rec.id) && !hasProcess(rec) ? 'restarting' : rec.state.Status;
    const procedure = state === 'paused' ? 'Unpause and then stop the container before attempting removal or force remove' : 'Stop the container before attempting removal or force remove';
    return conflict(`You cannot remove a ${state} container ${rec.id}. ${procedure}`);
  }

  /** `docker rm [-f]`: a running container needs `force` (then SIGKILL). */
  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const rec = this.get(ref);
    // Waiting for a restart by policy counts as running, as dockerd's "restarting" state does.
    if (!opts.force && (hasProcess(rec) || this.restartsPending.has(rec.id))) throw this.removeRunningError(rec);
    if (hasProcess(rec)) {
      await this.thaw(rec);
      await this.signal(rec, 9);
      if (!(await this.waitNotRunning(rec.id, 30_000))) throw serverError(`container ${rec.id} did not exit after SIGKILL`);
    }
    await this.locked(rec.id, async () => {
      if (!this.records.has(rec.id)) return;
      // An exit handled meanwhile may have scheduled a restart by policy: still live, as in dockerd.
      if (hasProcess(rec) || (!opts.force && this.restartsPending.has(rec.id))) throw this.removeRunningError(rec);
      rec.state.Status = 'removing';
      await this.teardown(rec);
      const p = this.paths(rec.id);
      // On the thread pool: a removal burst must not hold the event loop (unlink per file).
      await Promise.all([p.dir, p.run].map((d) => fs.promises.rm(d, { recursive: true, force: true })));
      forgetRecord(p.record);
      fs.rmSync(path.join(this.exitsDir, rec.id), { force: true });
      this.records.delete(rec.id);
      this.etcOptions.delete(rec.id);
      if (this.names.get(rec.name) === rec.id) this.names.delete(rec.name);
      for (const [eid, e] of this.execs) if (e.containerId === rec.id) this.execs.delete(eid);
      this.log.info({ id: rec.id }, 'container removed');
      this.event(rec, 'destroy');
      // `rm -v`: the container's anonymous volumes go with it; named ones stay.
      if (opts.volumes) {
        for (const mp of rec.mountPoints ?? []) {
          if (mp.Anonymous && mp.Name) await this.volumes.remove(mp.Name).catch((e) => this.log.warn({ err: e, volume: mp.Name }, 'removing anonymous volume failed'));
        }
      }
    });
    this.emitter.emit(`removed:${rec.id}`);
  }

  /**
   * `POST /containers/{id}/wait`: resolves with the exit code once the condition holds.
   * Register before starting the container (as `docker run` does) to catch fast exits.
   */
  wait(ref: string, condition: WaitCondition = 'not-running', signal?: AbortSignal): Promise<{ StatusCode: number; Error?: { Message: string } }> {
    const rec = this.get(ref);
    const id = rec.id;
    const result = () => ({ StatusCode: rec.state.ExitCode, ...(rec.state.Error ? { Error: { Message: rec.state.Error } } : {}) });
    if (condition === 'not-running' && !hasProcess(rec)) return Promise.resolve(result());
    return new Promise((resolve) => {
      const ev = condition === 'removed' ? `removed:${id}` : `exit:${id}`;
      const done = () => {
        this.emitter.off(ev, done);
        this.emitter.off(`removed:${id}`, done);
        resolve(result());
      };
      this.emitter.on(ev, done);
      if (ev !== `removed:${id}`) this.emitter.on(`removed:${id}`, done);
      signal?.addEventListener('abort', () => {
        this.emitter.off(ev, done);
        this.emitter.off(`removed:${id}`, done);
      });
    });
  }

  /** True once the container is not running (false after `ms`). */
  waitNotRunning(id: string, ms?: number): Promise<boolean> {
    const rec = this.records.get(id);
    if (!rec || !hasProcess(rec)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onExit = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = ms === undefined ? undefined : setTimeout(() => {
        this.emitter.off(`exit:${id}`, onExit);
        resolve(false);
      }, ms);
      this.emitter.once(`exit:${id}`, onExit);
    });
  }

  /** Subscribes to a container's exits and removal; returns the unsubscribe. */
  onExit(id: string, fn: () => void): () => void {
    this.emitter.on(`exit:${id}`, fn);
    this.emitter.on(`removed:${id}`, fn);
    return () => {
      this.emitter.off(`exit:${id}`, fn);
      this.emitter.off(`removed:${id}`, fn);
    };
  }

  /** Subscribes to a container's health status changes; returns the unsubscribe. */
  onHealth(id: string, fn: () => void): () => void {
    this.emitter.on(`health:${id}`, fn);
    return () => {
      this.emitter.off(`health:${id}`, fn);
    };
  }

  /** A container event for `docker events`: image, name and labels as attributes, as dockerd sends them. */
  event(rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.eventLog.emit('container', action, rec.id, { ...(rec.config.Labels ?? {}), image: rec.image, name: rec.name.slice(1), ...extra });
  }

  /** Runs the container's health check, if it has one; status changes become events. */
  private watchHealth(rec: ContainerRecord): void {
    const mon = new HealthMonitor(rec, this.runc.root, this.paths(rec.id), (changed) => {
      if (!this.records.has(rec.id)) return;
      saveRecord(this.paths(rec.id).record, rec);
      if (changed && rec.state.Health) {
        this.event(rec, `health_status: ${rec.state.Health.Status}`);
        this.emitter.emit(`health:${rec.id}`);
      }
    });
    this.health.set(rec.id, mon);
    mon.start();
  }

  /**
   * Signals the container's init straight from here when it is still conmon's child (no
   * `runc kill` process per stop; the check guards against a reused PID). SIGKILL to the init
   * of the container's own PID namespace ends every process in it, as `runc kill --all` would.
   */
  private async signal(rec: ContainerRecord, sig: number): Promise<void> {
    if (rec.state.Pid && rec.conmonPid && parentPid(rec.state.Pid) === rec.conmonPid) {
      try {
        process.kill(rec.state.Pid, sig);
        return;
      } catch { /* gone meanwhile: runc decides */ }
    }
    await this.runc.kill(rec.id, sig, sig === 9).catch(() => undefined);
  }

  /** Signals reach frozen processes only once thawed. */
  private async thaw(rec: ContainerRecord): Promise<void> {
    if (rec.state.Status !== 'paused') return;
    await this.runc.resume(rec.id).catch(() => undefined);
    rec.state.Status = 'running';
    saveRecord(this.paths(rec.id).record, rec);
  }

  // --- exits ------------------------------------------------------------------------------

  /** conmon writes `<exits>/<id>` when a container's init exits; we watch the directory (and poll, in case a watch event is lost). */
  private watchExits(): void {
    const scan = () => {
      let files: string[] = [];
      try {
        files = fs.readdirSync(this.exitsDir);
      } catch { /* gone during purge */ }
      for (const f of files) this.queueExit(f);
    };
    try {
      this.watcher = fs.watch(this.exitsDir, (_ev, f) => { if (f) this.queueExit(f.toString()); });
      this.watcher.on('error', () => undefined);
    } catch (e) {
      this.log.warn({ err: e }, 'cannot watch exit directory; polling only');
    }
    this.poller = setInterval(scan, 1000);
    this.poller.unref();
    scan();
  }

  private queueExit(id: string): void {
    if (!/^[a-f0-9]{64}$/.test(id) || this.exitsPending.has(id)) return;
    if (!fs.existsSync(path.join(this.exitsDir, id))) return;
    this.log.debug({ id }, 'exit file seen');
    this.exitsPending.add(id);
    void this.locked(id, () => this.handleExit(id))
      .catch((e) => this.log.error({ err: e, id }, 'exit handling failed'))
      .finally(() => this.exitsPending.delete(id));
  }

  private async handleExit(id: string): Promise<void> {
    const file = path.join(this.exitsDir, id);
    let code: number;
    try {
      code = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    } catch {
      return;
    }
    const rec = this.records.get(id);
    fs.rmSync(file, { force: true });
    if (!rec || !hasProcess(rec)) return;
    await this.markExited(rec, Number.isFinite(code) ? code : 255);
  }

  private async markExited(rec: ContainerRecord, code: number): Promise<void> {
    this.health.get(rec.id)?.stop();
    rec.state = { ...rec.state, Status: 'exited', Pid: 0, ExitCode: code, FinishedAt: new Date().toISOString() };
    this.exitSeq.set(rec.id, this.exits(rec.id) + 1);
    this.event(rec, 'die', { exitCode: String(code) });
    // Waiters (stop, wait, the swarm task) learn of the exit now; the write and clean-up
    // below still hold the container's lock, so a start or remove waits for them.
    this.emitter.emit(`exit:${rec.id}`);
    await saveRecordAsync(this.paths(rec.id).record, rec);
    const t: Record<string, number> = {};
    await this.teardown(rec, t);
    this.log.info({ id: rec.id, code, ms: t }, 'container exited');
    if (rec.hostConfig.AutoRemove) {
      setImmediate(() => void this.remove(rec.id, { force: true, volumes: true }).catch((e) => this.log.warn({ err: e, id: rec.id }, 'auto-remove failed')));
    } else if (this.wantsRestart(rec)) {
      this.scheduleRestart(rec);
    }
  }

  /** Docker's restart policies: `always`, `unless-stopped`, `on-failure[:max]`; never after `docker stop`. */
  private wantsRestart(rec: ContainerRecord): boolean {
    const p = rec.hostConfig.RestartPolicy;
    if (!p || rec.manuallyStopped || this.closed) return false;
    if (p.Name === 'always' || p.Name === 'unless-stopped') return true;
    if (p.Name === 'on-failure') return rec.state.ExitCode !== 0 && (!p.MaximumRetryCount || rec.restartCount < p.MaximumRetryCount);
    return false;
  }

  /** Restarts with Docker's back-off: 100 ms doubling per quick failure, reset after 10 s of running. */
  private scheduleRestart(rec: ContainerRecord): void {
    if (this.restartsPending.has(rec.id)) return;
    this.restartsPending.add(rec.id);
    const ran = Date.parse(rec.state.FinishedAt) - Date.parse(rec.state.StartedAt);
    const n = ran > 10_000 ? 0 : (this.backoff.get(rec.id) ?? 0) + 1;
    this.backoff.set(rec.id, n);
    const delay = Math.min(100 * 2 ** Math.max(0, n - 1), 60_000);
    const timer = setTimeout(() => {
      this.restartsPending.delete(rec.id);
      if (!this.records.has(rec.id) || hasProcess(rec) || !this.wantsRestart(rec)) return;
      void this.locked(rec.id, async () => {
        if (!this.records.has(rec.id) || hasProcess(rec) || !this.wantsRestart(rec)) return;
        rec.restartCount++;
        await this.doStart(rec);
      }).catch((e) => this.log.warn({ err: e, id: rec.id }, 'restart by policy failed'));
    }, delay);
    timer.unref();
  }

  /**
   * As dockerd at boot (daemon.restore): a stopped container is started again when its policy
   * says so to a fresh restart manager, which knows nothing of an earlier `docker stop` except
   * for `unless-stopped` (so `always` comes back even after a stop; on-failure after a non-zero exit).
   */
  private restartAtBoot(rec: ContainerRecord): void {
    if (rec.state.Status !== 'exited' || !rec.hostConfig.RestartPolicy) return;
    if (rec.manuallyStopped && rec.hostConfig.RestartPolicy.Name === 'unless-stopped') return;
    const stopped = rec.manuallyStopped;
    rec.manuallyStopped = false;
    if (this.wantsRestart(rec)) this.scheduleRestart(rec);
    else rec.manuallyStopped = stopped;
  }

  /** Picks up containers from an earlier run of the daemon: running ones are adopted, dead ones marked exited. */
  private async adopt(): Promise<void> {
    const dp = daemonPaths(this.config);
    for (const dir of fs.readdirSync(dp.containers)) {
      const p = this.paths(dir);
      const rec = /^[a-f0-9]{64}$/.test(dir) ? loadRecord(p.record) : undefined;
      if (!rec) {
        // A create that crashed half-way: nothing refers to it.
        await unmountRootfs(p.rootfs);
        fs.rmSync(p.dir, { recursive: true, force: true });
        continue;
      }
      this.records.set(rec.id, rec);
      this.names.set(rec.name, rec.id);
      if (rec.state.Status === 'removing') {
        await this.teardown(rec);
        fs.rmSync(p.dir, { recursive: true, force: true });
        fs.rmSync(p.run, { recursive: true, force: true });
        this.records.delete(rec.id);
        this.names.delete(rec.name);
        continue;
      }
      if (!hasProcess(rec)) continue;
      if (fs.existsSync(path.join(dp.exits, rec.id))) continue; // the exit watcher handles it
      const st = await this.runc.state(rec.id);
      if (st && (st.status === 'running' || st.status === 'paused')) {
        const ip = this.endpoint(rec.id)?.IPAddress ?? this.userBridges?.endpointsOf(rec.id)[0]?.endpoint.ip;
        if (ip && rec.published) this.ports.restore(rec.id, ip, rec.published);
        for (const mp of rec.mountPoints ?? []) if (mp.Type === 'volume' && mp.Name) await this.volumes.mount(mp.Name, rec.id).catch(() => undefined);
        this.log.info({ id: rec.id, pid: st.pid }, 'adopted running container');
        this.watchHealth(rec);
        continue;
      }
      // Died while we were away and conmon is gone too (e.g. killed): take its recorded exit if any.
      let code = 255;
      try {
        code = Number.parseInt(fs.readFileSync(path.join(p.run, 'exit'), 'utf8'), 10);
      } catch { /* no exit file */ }
      if (processIs(rec.conmonPid, 'conmon') && st) continue; // conmon will still report it
      await this.markExited(rec, code);
    }
    for (const id of await this.runc.list()) {
      if (!this.records.has(id)) await this.runc.delete(id);
    }
    await this.ports.apply();
    for (const rec of this.records.values()) this.restartAtBoot(rec);
  }

  // --- exec bookkeeping (the processes themselves: exec.ts) ---------------------------------------

  readonly execs = new Map<string, ExecInstance>();
  /** `docker exec`: create, start, inspect. */
  readonly exec: Execs = new Execs(this);

  private execIds(id: string): string[] | null {
    const ids = [...this.execs.values()].filter((e) => e.containerId === id).map((e) => e.id);
    return ids.length ? ids : null;
  }

  // --- plumbing ----------------------------------------------------------------------------

  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => { if (this.locks.get(id) === tail) this.locks.delete(id); });
    return next;
  }

  /** Stops watching; containers keep running under conmon. */
  async close(): Promise<void> {
    this.closed = true;
    for (const m of this.health.values()) m.stop();
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    await Promise.all([...this.locks.values()]);
  }
}

/** Running or paused: its processes exist. */
function hasProcess(r: ContainerRecord): boolean {
  return r.state.Status === 'running' || r.state.Status === 'paused';
}

/** Image env first, then the container's; a later `KEY=` replaces an earlier one. */
function mergeEnv(base: string[], over: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...over]) {
    const i = e.indexOf('=');
    out.set(i < 0 ? e : e.slice(0, i), e);
  }
  return [...out.values()];
}

/** The parent of `pid` from /proc (undefined when it is gone). */
function parentPid(pid: number): number | undefined {
  try {
    const m = /^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** runc's message without its log prefix noise. */
function runtimeMessage(e: unknown): string {
  const msg = (e as Error).message ?? String(e);
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(msg);
  return (m ? m[1] : msg).replace(/\\"/g, '"').trim();
}
