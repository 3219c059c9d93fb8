import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Task } from '../../cluster/types.js';
import { clientCredentials, DispatcherClient, unary, type AttachNetworkRequest, type AttachNetworkResponse, type DetachNetworkRequest } from '../../cluster/rpc.js';
import type { SwarmNode } from '../../cluster/swarm-node.js';
import type { Engine } from '../../engine/engine.js';
import type { ContainerRecord } from '../../engine/containers/manager.js';
import { ApiError } from '../../util/errors.js';
import { attachmentSpec } from '../../manager/networks/attachments.js';
import type { Logger } from '../../util/log.js';

const TASK_LABEL = 'com.docker.swarm.task.id';
const LOCAL_MODES = new Set(['default', 'bridge', 'host', 'none']);
/** Docker's swarm request timeout; the manager gives up waiting for an address before it. */
const ATTACH_DEADLINE_MS = 20_000;

/** `rpc error: code = PermissionDenied desc = …`, as Go's gRPC prints a status. */
function rpcText(e: grpc.ServiceError): string {
  const name = (grpc.status[e.code] ?? 'Unknown').toLowerCase().replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());
  return `rpc error: code = ${name} desc = ${e.details ?? e.message}`;
}

/** One standalone container's attachment to a swarm network on this node. */
export interface StandaloneEndpoint {
  task: Task;
  containerId: string;
  netnsPath: string;
}

/**
 * Standalone containers on attachable swarm networks (`docker run --network <overlay>`): at
 * start the node asks a manager for an attachment (an address allocated cluster-wide, kept in
 * the store as a task-like object), the network agent wires it like a local task; when the
 * container dies or is removed the attachment is given back.
 */
export class StandaloneAttachments {
  private readonly byContainer = new Map<string, { task: Task; pid: number }>();
  private unsubscribe?: () => void;
  /** Attach and detach calls in order: a restart's attach must not overtake the detach of its death. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly engine: Engine,
    private readonly swarm: SwarmNode,
    private readonly log: Logger,
    /** Applies the node's network plan (and waits for it). */
    private readonly apply: () => Promise<void>,
    private readonly resolver: () => string,
  ) {}

  install(): void {
    // Any other name may be a swarm network while in a swarm; the manager says at start.
    this.engine.containers.acceptNetworkMode((mode) => !!this.swarm.agentTarget() && !mode.startsWith('container:'));
    this.engine.containers.addStartHook((rec, pid) => this.beforeStart(rec, pid));
    this.unsubscribe = this.engine.containers.eventLog.subscribe(undefined, (e) => {
      if (e.Type === 'container' && (e.Action === 'die' || e.Action === 'destroy')) void this.release(e.Actor.ID, e.Action === 'destroy');
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
    for (const t of ownInView) {
      const cid = attachmentSpec(t)?.ContainerID;
      const rec = cid ? this.engine.containers.find(cid) : undefined;
      if (rec && !this.byContainer.has(rec.id) && rec.state.Status === 'running' && rec.hostConfig.NetworkMode && !LOCAL_MODES.has(rec.hostConfig.NetworkMode)) {
        this.byContainer.set(rec.id, { task: t, pid: rec.state.Pid });
      }
    }
    const out: StandaloneEndpoint[] = [];
    for (const [containerId, a] of this.byContainer) {
      const rec = this.engine.containers.find(containerId);
      const pid = rec?.state.Status === 'running' && rec.state.Pid ? rec.state.Pid : a.pid;
      const netnsPath = `/proc/${pid}/ns/net`;
      if (pid && fs.existsSync(netnsPath)) out.push({ task: a.task, containerId, netnsPath });
    }
    return out;
  }

  private async beforeStart(rec: ContainerRecord, pid: number): Promise<void> {
    const mode = rec.hostConfig.NetworkMode ?? 'default';
    if (LOCAL_MODES.has(mode) || mode.startsWith('container:') || rec.config.Labels?.[TASK_LABEL]) return;
    let res: AttachNetworkResponse;
    try {
      res = await this.serial(() => this.call<AttachNetworkRequest, AttachNetworkResponse>('AttachNetwork', { containerId: rec.id, containerName: rec.name.slice(1), network: mode }, ATTACH_DEADLINE_MS));
    } catch (e) {
      const err = e as grpc.ServiceError;
      if (err.code === grpc.status.NOT_FOUND) throw new ApiError(404, `network ${mode} not found`);
      // The manager waits for the leader's allocator; Docker's words when that takes too long.
      if (err.code === grpc.status.DEADLINE_EXCEEDED) throw new ApiError(500, 'attaching to network failed, make sure your network options are correct and check manager logs: context deadline exceeded');
      throw new ApiError(500, `Could not attach to network ${mode}: ${err.code !== undefined ? rpcText(err) : err.message}`);
    }
    // In place: the file is bind-mounted into the container by inode.
    fs.writeFileSync(this.engine.containers.paths(rec.id).resolvConf, `nameserver ${this.resolver()}\noptions ndots:0\n`);
    this.byContainer.set(rec.id, { task: res.task, pid });
    await this.apply();
  }

  /** The container stopped (its endpoint goes) or was removed (the manager frees its address). */
  private async release(containerId: string, removed: boolean): Promise<void> {
    const had = this.byContainer.delete(containerId);
    // Asked on every removal: an attachment made before a daemon restart may not be in the map.
    if ((!removed && !had) || !this.swarm.agentTarget()) return;
    await this.serial(() => this.call<DetachNetworkRequest, object>('DetachNetwork', { containerId })).catch((err) => this.log.warn({ err, containerId }, 'network detach failed'));
    if (had) await this.apply();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** A unary dispatcher call on the first manager that answers. */
  private async call<Req, Res>(name: string, req: Req, deadlineMs?: number): Promise<Res> {
    const target = this.swarm.agentTarget();
    if (!target) throw Object.assign(new Error('This node is not a swarm manager.'), { code: grpc.status.UNAVAILABLE, details: 'node is not part of a swarm' });
    const tls = target.tls();
    let last: unknown;
    for (const addr of target.managers()) {
      const client = new DispatcherClient(addr, clientCredentials(tls.ca, tls.cert, tls.key));
      try {
        return await unary<Req, Res>(client, name, req, deadlineMs);
      } catch (e) {
        last = e;
        if ((e as grpc.ServiceError).code !== grpc.status.UNAVAILABLE) throw e;
      } finally {
        client.close();
      }
    }
    throw last ?? new Error('no manager reachable');
  }
}
