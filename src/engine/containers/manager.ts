import fs from 'node:fs';
import type { Logger } from '../../util/log.js';
import { conflict, serverError } from '../../util/errors.js';
import { run } from '../../util/run.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import type { ImageStore } from '../images/store.js';
import type { BridgeNetwork } from '../network/bridge.js';
import { DEFAULT_BRIDGE } from '../network/names.js';
import type { UserBridges } from '../network/user-bridges.js';
import type { EndpointInfo } from '../types.js';
import { VolumeStore } from '../volumes/store.js';
import { EventLog } from '../events.js';
import { ContainerNetworks } from './container-networks.js';
import { createContainer, type CreateOptions } from './create.js';
import { Execs } from './exec.js';
import { ExitMonitor } from './exit-monitor.js';
import { matchesFilters, validateFilters } from './filters.js';
import { HealthWatch } from './health-watch.js';
import { ContainerLifecycle } from './lifecycle.js';
import { mountForCopy } from './mounts.js';
import { PortPublisher } from './ports.js';
import type { ContainerRecord, EndpointSettings } from './record.js';
import { restoreContainers } from './restore.js';
import { isMounted, mountRootfs, unmountRootfs } from './rootfs.js';
import type { Runc } from './runtime.js';
import { ContainerStarter, type StartHook } from './start.js';
import { ContainerTable, hasProcess, type WaitCondition } from './table.js';
import type { UpdateConfig } from './update.js';
import {
  inspectView,
  summaryView,
  type ContainerInspect,
  type ContainerSummary,
  type ForeignEndpoint,
} from './views.js';

export type { ContainerConfig, HostConfig, ContainerRecord } from './record.js';
export type { CreateOptions } from './create.js';
export type { StartHook } from './start.js';
export type { WaitCondition } from './table.js';
export { parseSignal } from './signals.js';

/**
 * The node's containers: runc runs them, conmon holds their stdio, log and exit code. State
 * is a record per container on disk, so a restarted daemon adopts the containers conmon kept alive.
 * Used by the Engine API routes and directly by the swarm agent's executor.
 *
 * A façade over its parts: the table (records, names, locks, waiters), the lifecycle and the
 * start path, the containers' networks, the exit monitor with restart policies, health checks,
 * and the restore at boot.
 */
export class ContainerManager {
  readonly runc: Runc;
  readonly ports = new PortPublisher();
  /** `docker exec`: create, start, inspect. */
  readonly exec: Execs;
  private readonly table: ContainerTable;
  private readonly networks: ContainerNetworks;
  private readonly health: HealthWatch;
  private readonly starter: ContainerStarter;
  private readonly lifecycle: ContainerLifecycle;
  private readonly exitMonitor: ExitMonitor;

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
    const table = (this.table = new ContainerTable(config, log, eventLog));
    this.runc = table.runc;
    this.exec = new Execs(table);
    this.networks = new ContainerNetworks(table, bridge, this.ports, userBridges);
    this.health = new HealthWatch(table);
    const removeLater = (id: string) =>
      setImmediate(() => void this.remove(id, { force: true, volumes: true }).catch(() => undefined));
    this.starter = new ContainerStarter(table, images, volumes, this.networks, this.health, removeLater);
    this.exitMonitor = new ExitMonitor(table, this.health, {
      teardown: (rec, t) => this.starter.teardown(rec, t),
      startLocked: (rec) => this.starter.startLocked(rec),
      remove: (id, opts) => this.remove(id, opts),
    });
    this.lifecycle = new ContainerLifecycle({
      table,
      volumes,
      networks: this.networks,
      starter: this.starter,
      execs: this.exec,
      restartPending: (id) => this.exitMonitor.restartPending(id),
    });
  }

  static async open(
    config: DaemonConfig,
    log: Logger,
    images: ImageStore,
    bridge: BridgeNetwork,
    events = new EventLog(),
    volumes = VolumeStore.open(config.dataRoot, log.child({ part: 'volumes' })),
    userBridges?: UserBridges,
  ): Promise<ContainerManager> {
    const m = new ContainerManager(config, log, images, bridge, events, volumes, userBridges);
    const records = m.table.records;
    if (userBridges) {
      userBridges.containerName = (id) => records.get(id)?.name.slice(1);
      m.ports.bridges = () => [
        { device: DEFAULT_BRIDGE.device, subnet: DEFAULT_BRIDGE.subnet },
        ...userBridges.list().map((n) => ({ device: n.device, subnet: n.subnet })),
      ];
    }
    volumes.setRefs((name) =>
      m
        .all()
        .filter((r) => r.mountPoints?.some((mp) => mp.Type === 'volume' && mp.Name === name))
        .map((r) => r.id),
    );
    const dp = daemonPaths(config);
    for (const d of [dp.containers, dp.runcRoot, dp.conmon, dp.exits]) fs.mkdirSync(d, { recursive: true });
    await restoreContainers({
      table: m.table,
      networks: m.networks,
      volumes,
      health: m.health,
      exits: m.exitMonitor,
      teardown: (rec) => m.starter.teardown(rec),
    });
    images.setInUseCheck((imageId) => [...records.values()].find((r) => r.imageId === imageId)?.id);
    bridge.containerName = (id) => records.get(id)?.name.slice(1);
    userBridges?.refreshDns(); // names are known now
    m.exitMonitor.watch();
    return m;
  }

  paths(id: string) {
    return this.table.paths(id);
  }

  /** Adds a step between create and start (overlay networks for swarm tasks, for instance). */
  addStartHook(hook: StartHook): void {
    this.starter.hooks.push(hook);
  }

  /** Lets `NetworkMode: <name>` through create; whoever accepts it must wire it in a start hook. */
  acceptNetworkMode(accepts: (mode: string) => boolean): void {
    this.networks.acceptNetworkMode(accepts);
  }

  /** Who knows a container's endpoints on networks the engine does not own (swarm overlays), for inspect and ps. */
  setForeignEndpoints(fn: (containerId: string) => Record<string, ForeignEndpoint>): void {
    this.networks.setForeignEndpoints(fn);
  }

  // --- lookup -----------------------------------------------------------------------------

  /** Docker's lookup: full ID, then exact name, then a unique ID prefix. 404 otherwise. */
  get(ref: string): ContainerRecord {
    return this.table.get(ref);
  }

  find(ref: string): ContainerRecord | undefined {
    return this.table.find(ref);
  }

  all(): ContainerRecord[] {
    return this.table.all();
  }

  isRunning(ref: string): boolean {
    return this.table.isRunning(ref);
  }

  /** Number of exits seen for this container since the daemon started. */
  exits(id: string): number {
    return this.table.exits(id);
  }

  counts(): { total: number; running: number; paused: number; stopped: number } {
    const all = this.all();
    const running = all.filter((r) => r.state.Status === 'running').length;
    const paused = all.filter((r) => r.state.Status === 'paused').length;
    return { total: all.length, running, paused, stopped: all.length - running - paused };
  }

  endpoint(id: string): EndpointInfo | undefined {
    return this.networks.endpoint(id);
  }

  inspect(ref: string): ContainerInspect {
    const rec = this.get(ref);
    const n = this.networks;
    return inspectView(
      rec,
      this.paths(rec.id),
      n.endpoint(rec.id),
      this.bridge.networkIds.bridge,
      this.exec.idsOf(rec.id),
      n.otherEndpoints(rec.id),
    );
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
    return out.map((r) =>
      summaryView(r, this.endpoint(r.id), this.bridge.networkIds.bridge, this.networks.otherEndpoints(r.id)),
    );
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

  create(opts: CreateOptions): Promise<{ Id: string; Warnings: string[] }> {
    return createContainer(
      { table: this.table, images: this.images, volumes: this.volumes, networks: this.networks },
      opts,
    );
  }

  start(ref: string): Promise<void> {
    return this.lifecycle.start(ref);
  }

  /** StopSignal (default SIGTERM), then SIGKILL after `timeoutSec` (default: StopTimeout or 10; -1 waits forever). */
  stop(ref: string, timeoutSec?: number): Promise<void> {
    return this.lifecycle.stop(ref, timeoutSec);
  }

  /** `docker pause` / `unpause`: the freezer cgroup, through runc. */
  pause(ref: string): Promise<void> {
    return this.lifecycle.pause(ref);
  }

  unpause(ref: string): Promise<void> {
    return this.lifecycle.unpause(ref);
  }

  kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    return this.lifecycle.kill(ref, signal);
  }

  restart(ref: string, timeoutSec?: number): Promise<void> {
    return this.lifecycle.restart(ref, timeoutSec);
  }

  /** `docker rename`. */
  rename(ref: string, newName: string): void {
    this.lifecycle.rename(ref, newName);
  }

  /** `docker update`: new limits and restart policy, stored and (resources) applied to a running container. */
  update(ref: string, u: UpdateConfig): Promise<{ Warnings: string[] }> {
    return this.lifecycle.update(ref, u);
  }

  /** `docker container prune`: every stopped container; the space is their writable layers', as dockerd counts it. */
  prune(): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    return this.lifecycle.prune();
  }

  /** `docker rm [-f]`: a running container needs `force` (then SIGKILL). */
  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return this.lifecycle.remove(ref, opts);
  }

  /**
   * `POST /containers/{id}/wait`: resolves with the exit code once the condition holds.
   * Register before starting the container (as `docker run` does) to catch fast exits.
   */
  wait(
    ref: string,
    condition: WaitCondition = 'not-running',
    signal?: AbortSignal,
  ): Promise<{ StatusCode: number; Error?: { Message: string } }> {
    return this.table.wait(ref, condition, signal);
  }

  /** True once the container is not running (false after `ms`). */
  waitNotRunning(id: string, ms?: number): Promise<boolean> {
    return this.table.waitNotRunning(id, ms);
  }

  /** Subscribes to a container's exits and removal; returns the unsubscribe. */
  onExit(id: string, fn: () => void): () => void {
    return this.table.onExit(id, fn);
  }

  /** Subscribes to a container's health status changes; returns the unsubscribe. */
  onHealth(id: string, fn: () => void): () => void {
    return this.table.onHealth(id, fn);
  }

  /** A container event for `docker events`: image, name and labels as attributes, as dockerd sends them. */
  event(rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.table.event(rec, action, extra);
  }

  // --- networks -----------------------------------------------------------------------------

  /**
   * A container's own line in /etc/hosts once its address is known elsewhere (a swarm task's
   * network, from a start hook): `<ip> <hostname> <aliases…>`, what `hostname -i` reads.
   */
  setOwnAddress(id: string, ip: string, aliases: string[] = []): void {
    this.networks.setOwnAddress(id, ip, aliases);
  }

  /** `DELETE /containers/<parent>/<alias>?link=true`: the parent forgets the link; both containers stay. */
  removeLink(ref: string): void {
    this.networks.removeLink(ref);
  }

  /** Records the networks a container joins beyond its NetworkMode (`docker network connect` / `disconnect`). */
  setConnectedNetworks(ref: string, names: string[]): void {
    this.networks.setConnectedNetworks(ref, names);
  }

  /** Whether `network` names a user-defined bridge (the API routes connect/disconnect through here then). */
  isUserBridge(network: string): boolean {
    return this.networks.isUserBridge(network);
  }

  /** `docker network connect` to a user bridge: now when running, and at every start. */
  connectUserBridge(ref: string, network: string, settings: EndpointSettings = {}): Promise<void> {
    return this.networks.connectUserBridge(ref, network, settings);
  }

  /** `docker network connect bridge`: the default bridge as an extra network (or back after a disconnect). */
  connectDefaultBridge(ref: string): Promise<void> {
    return this.networks.connectDefaultBridge(ref);
  }

  /** `docker network disconnect bridge`. */
  disconnectDefaultBridge(ref: string): Promise<void> {
    return this.networks.disconnectDefaultBridge(ref);
  }

  /** `docker network disconnect` from a user bridge. */
  disconnectUserBridge(ref: string, network: string): Promise<void> {
    return this.networks.disconnectUserBridge(ref, network);
  }

  // --- the container's files and processes ---------------------------------------------------

  /**
   * Runs `fn` on the container's merged root filesystem (`docker cp`, `export`, `commit`): the
   * running container's own mount, or one made for the call while it is stopped.
   */
  async withRootfs<T>(
    ref: string,
    fn: (rootfs: string, rec: ContainerRecord) => Promise<T>,
    opts: { live?: boolean } = {},
  ): Promise<T> {
    const rec = this.get(ref);
    const p = this.paths(rec.id);
    // `live`: the container's view with its volumes and binds (docker cp): a running one's through its init.
    const procRoot = `/proc/${rec.state.Pid}/root`;
    if (opts.live && hasProcess(rec) && rec.state.Pid > 0 && fs.existsSync(procRoot)) return fn(procRoot, rec);
    if (hasProcess(rec) && isMounted(p.rootfs)) return fn(p.rootfs, rec);
    // Stopped: held against a start meanwhile, which would mount (and later unmount) it too.
    return this.table.locked(rec.id, async () => {
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
    if (rec.state.Status !== 'running' && rec.state.Status !== 'paused')
      throw conflict(`Container ${rec.id} is not running`);
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

  /** Stops watching; containers keep running under conmon. */
  async close(): Promise<void> {
    this.exitMonitor.close();
    this.health.stopAll();
    await this.table.lock.idle();
  }
}
