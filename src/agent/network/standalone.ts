import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Task } from '../../cluster/types.js';
import type { RequestOf, ResponseOf, UnaryMethodName } from '../../cluster/rpc.js';
import { ManagerConnection } from '../manager-connection.js';
import type { SwarmMembership } from '../link.js';
import type { Engine } from '../../engine/engine.js';
import type { ContainerRecord } from '../../engine/containers/manager.js';
import { ApiError, badRequest, forbidden, notFound, serverError } from '../../util/errors.js';
import { attachmentSpec } from '../../cluster/attachment-task.js';
import type { Logger } from '../../util/log.js';
import { SerialQueue } from '../../util/serial-queue.js';

const TASK_LABEL = 'com.docker.swarm.task.id';
const LOCAL_MODES = new Set(['default', 'bridge', 'host', 'none']);
/** Docker's swarm request timeout; the manager gives up waiting for an address before it. */
const ATTACH_DEADLINE_MS = 20_000;

/** `rpc error: code = PermissionDenied desc = …`, as Go's gRPC prints a status. */
function rpcText(e: grpc.ServiceError): string {
  const name = (grpc.status[e.code] ?? 'Unknown')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());
  return `rpc error: code = ${name} desc = ${e.details ?? e.message}`;
}

/** One standalone container's attachment to a swarm network on this node. */
export interface StandaloneEndpoint {
  task: Task;
  containerId: string;
  netnsPath: string;
}

/** The attachment tasks of one running container, by network ID. */
interface Joined {
  pid: number;
  tasks: Map<string, Task>;
}

const networkIdOf = (t: Task) => t.Spec.Networks?.[0]?.Target ?? t.NetworksAttachments?.[0]?.Network.ID ?? '';

/**
 * Standalone containers on attachable swarm networks (`docker run --network <overlay>`,
 * `docker network connect`): at start, or on connect, the node asks a manager for an
 * attachment (an address allocated cluster-wide, kept in the store as a task-like object), the
 * network agent wires it like a local task; when the container dies, is removed or disconnected
 * the attachment is given back.
 */
export class StandaloneAttachments {
  private readonly byContainer = new Map<string, Joined>();
  /** Attachments given back whose task the (older) view may still show: never taken back from it. */
  private readonly dropped = new Set<string>();
  private unsubscribe?: () => void;
  /** Attach and detach calls in order: a restart's attach must not overtake the detach of its death. */
  private readonly queue = new SerialQueue();
  private readonly connection = new ManagerConnection(() => this.swarm.agentTarget());

  constructor(
    private readonly engine: Engine,
    private readonly swarm: SwarmMembership,
    private readonly log: Logger,
    /** Applies the node's network plan (and waits for it). */
    private readonly apply: () => Promise<void>,
    private readonly resolver: () => string,
    /** A swarm network's name by ID, as the node's view has it (attachments taken back from the view carry only IDs). */
    private readonly networkName: (id: string) => string | undefined = () => undefined,
  ) {}

  install(): void {
    // Any other name may be a swarm network while in a swarm; the manager says at start.
    this.engine.containers.acceptNetworkMode((mode) => !!this.swarm.agentTarget() && !mode.startsWith('container:'));
    this.engine.containers.addStartHook((rec, pid) => this.beforeStart(rec, pid));
    this.unsubscribe = this.engine.containers.eventLog.subscribe(undefined, (e) => {
      if (e.Type === 'container' && (e.Action === 'die' || e.Action === 'destroy')) {
        this.release(e.Actor.ID, e.Action === 'destroy').catch((err: unknown) =>
          this.log.warn({ err, containerId: e.Actor.ID }, 'network release failed'),
        );
      }
    });
  }

  close(): void {
    this.unsubscribe?.();
  }

  /**
   * Attachments whose container is alive on this node. `ownInView`: this node's attachments as
   * the manager has them; a restarted daemon takes back those of its running containers.
   */
  live(ownInView: Task[] = []): StandaloneEndpoint[] {
    const inView = new Set(ownInView.map((t) => t.ID));
    for (const id of this.dropped) if (!inView.has(id)) this.dropped.delete(id);
    for (const t of ownInView) {
      const cid = attachmentSpec(t)?.ContainerID;
      const rec = cid ? this.engine.containers.find(cid) : undefined;
      if (
        !rec ||
        rec.state.Status !== 'running' ||
        this.dropped.has(t.ID) ||
        this.byContainer.get(rec.id)?.tasks.has(networkIdOf(t))
      )
        continue;
      const mode = rec.hostConfig.NetworkMode ?? 'default';
      if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) continue;
      let j = this.byContainer.get(rec.id);
      if (!j) this.byContainer.set(rec.id, (j = { pid: rec.state.Pid, tasks: new Map() }));
      j.tasks.set(networkIdOf(t), t);
    }
    const out: StandaloneEndpoint[] = [];
    for (const [containerId, j] of this.byContainer) {
      const rec = this.engine.containers.find(containerId);
      const pid = rec?.state.Status === 'running' && rec.state.Pid ? rec.state.Pid : j.pid;
      const netnsPath = `/proc/${pid}/ns/net`;
      if (!pid || !fs.existsSync(netnsPath)) continue;
      for (const task of j.tasks.values()) out.push({ task, containerId, netnsPath });
    }
    return out;
  }

  /** `docker network connect`: joins now when the container runs, and at every start. */
  async connect(ref: string, network: string): Promise<void> {
    const rec = this.engine.containers.get(ref);
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (mode === 'host' || mode.startsWith('container:'))
      throw badRequest(
        'container sharing network namespace with another container or host cannot be connected to any other network',
      );
    if (mode === 'none')
      throw badRequest(
        'container cannot be connected to multiple networks with one of the networks in private (none) mode',
      );
    if (!this.swarm.agentTarget()) throw notFound(`network ${network} not found`);
    if (rec.state.Status !== 'running') {
      // Docker keeps it as named; the next start attaches (or fails on) it.
      if (!(rec.connectedNetworks ?? []).includes(network))
        this.engine.containers.setConnectedNetworks(rec.id, [...(rec.connectedNetworks ?? []), network]);
      return;
    }
    const j = this.byContainer.get(rec.id);
    const task = await this.attach(rec, network);
    if (j?.tasks.has(networkIdOf(task)))
      throw forbidden(
        `endpoint with name ${rec.name.slice(1)} already exists in network ${task.NetworksAttachments?.[0]?.Network.Spec?.Name ?? network}`,
      );
    const joined = this.byContainer.get(rec.id) ?? { pid: rec.state.Pid, tasks: new Map<string, Task>() };
    joined.tasks.set(networkIdOf(task), task);
    this.byContainer.set(rec.id, joined);
    const name = task.NetworksAttachments?.[0]?.Network.Spec?.Name ?? network;
    if (mode !== name && !(rec.connectedNetworks ?? []).includes(name))
      this.engine.containers.setConnectedNetworks(rec.id, [...(rec.connectedNetworks ?? []), name]);
    this.useResolver(rec);
    await this.apply();
  }

  /** `docker network disconnect`: the endpoint goes, then the manager frees the address. */
  async disconnect(ref: string, network: string): Promise<void> {
    const rec = this.engine.containers.get(ref);
    const kept = (rec.connectedNetworks ?? []).filter((n) => n !== network);
    const j = this.byContainer.get(rec.id);
    const task =
      rec.state.Status === 'running' ? [...(j?.tasks.values() ?? [])].find((t) => this.names(t, network)) : undefined;
    if (!task) {
      if (rec.state.Status === 'running' || kept.length === (rec.connectedNetworks ?? []).length) {
        throw serverError(
          `container ${rec.id} is not connected to ${rec.state.Status === 'running' ? 'network' : 'the network'} ${network}`,
        );
      }
      this.engine.containers.setConnectedNetworks(rec.id, kept);
      return;
    }
    j!.tasks.delete(networkIdOf(task));
    if (!j!.tasks.size) this.byContainer.delete(rec.id);
    this.dropped.add(task.ID);
    const name = this.nameOf(task);
    this.engine.containers.setConnectedNetworks(
      rec.id,
      (rec.connectedNetworks ?? []).filter((n) => n !== network && n !== name && n !== networkIdOf(task)),
    );
    await this.apply();
    await this.serial(() => this.call('DetachNetwork', { containerId: rec.id, networkId: networkIdOf(task) })).catch(
      (err) => this.log.warn({ err, containerId: rec.id }, 'network detach failed'),
    );
  }

  private async beforeStart(rec: ContainerRecord, pid: number): Promise<void> {
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (mode.startsWith('container:') || rec.config.Labels?.[TASK_LABEL]) return;
    // User-defined bridges are the engine's own: it joins them itself.
    const wanted = [
      ...(LOCAL_MODES.has(mode) ? [] : [mode]),
      ...(mode === 'host' || mode === 'none' ? [] : (rec.connectedNetworks ?? [])),
    ].filter((n) => !LOCAL_MODES.has(n) && !this.engine.containers.isUserBridge(n));
    if (!wanted.length) return;
    const tasks = new Map<string, Task>();
    try {
      for (const network of wanted) {
        const t = await this.attach(rec, network);
        tasks.set(networkIdOf(t), t);
      }
    } catch (e) {
      // All or nothing: the container does not start, so it holds no address.
      if (tasks.size)
        await this.serial(() => this.call('DetachNetwork', { containerId: rec.id })).catch(() => undefined);
      throw e;
    }
    this.useResolver(rec);
    // A container whose own network is a swarm one: its address there names it in /etc/hosts.
    const first = [...tasks.values()][0];
    const ip = first?.NetworksAttachments?.[0]?.Addresses?.[0]?.split('/')[0];
    if (!LOCAL_MODES.has(mode) && wanted[0] === mode && ip)
      this.engine.containers.setOwnAddress(rec.id, ip, rec.endpointSettings?.[mode]?.Aliases ?? []);
    this.byContainer.set(rec.id, { pid, tasks });
    await this.apply();
  }

  private nameOf(t: Task): string | undefined {
    return t.NetworksAttachments?.[0]?.Network.Spec?.Name ?? this.networkName(networkIdOf(t));
  }

  /** Whether `ref` (a name, an ID or an ID prefix, as the user gave it) names the network of attachment `t`. */
  private names(t: Task, ref: string): boolean {
    const id = networkIdOf(t);
    return ref === id || ref === this.nameOf(t) || (ref.length > 0 && id.startsWith(ref));
  }

  /** One attachment from a manager, its errors in Docker's words. */
  private async attach(rec: ContainerRecord, network: string): Promise<Task> {
    try {
      const res = await this.serial(() =>
        this.call(
          'AttachNetwork',
          { containerId: rec.id, containerName: rec.name.slice(1), network },
          ATTACH_DEADLINE_MS,
        ),
      );
      return res.task;
    } catch (e) {
      const err = e as grpc.ServiceError;
      if (err.code === grpc.status.NOT_FOUND) throw new ApiError(404, `network ${network} not found`);
      // The manager waits for the leader's allocator; Docker's words when that takes too long.
      if (err.code === grpc.status.DEADLINE_EXCEEDED)
        throw new ApiError(
          500,
          'attaching to network failed, make sure your network options are correct and check manager logs: context deadline exceeded',
        );
      throw new ApiError(
        500,
        `Could not attach to network ${network}: ${err.code !== undefined ? rpcText(err) : err.message}`,
      );
    }
  }

  /** Names on swarm networks resolve through the node's resolver (which forwards the rest). In place: the file is bind-mounted by inode. */
  private useResolver(rec: ContainerRecord): void {
    fs.writeFileSync(
      this.engine.containers.paths(rec.id).resolvConf,
      `nameserver ${this.resolver()}\noptions ndots:0\n`,
    );
  }

  /** The container stopped (its endpoints go) or was removed (the manager frees its addresses). */
  private async release(containerId: string, removed: boolean): Promise<void> {
    const had = this.byContainer.delete(containerId);
    // Asked on every removal: an attachment made before a daemon restart may not be in the map.
    if ((!removed && !had) || !this.swarm.agentTarget()) return;
    await this.serial(() => this.call('DetachNetwork', { containerId })).catch((err) =>
      this.log.warn({ err, containerId }, 'network detach failed'),
    );
    if (had) await this.apply();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  /** A unary dispatcher call on the first manager that answers. */
  private call<M extends UnaryMethodName<'Dispatcher'>>(
    name: M,
    req: RequestOf<'Dispatcher', M>,
    deadlineMs?: number,
  ): Promise<ResponseOf<'Dispatcher', M>> {
    return this.connection.call(name, req, deadlineMs);
  }
}
