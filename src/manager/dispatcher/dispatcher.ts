import { isNetworkAttachment } from '../networks/attachments.js';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';
import type { Node, Task, TaskStatus } from '../../cluster/types.js';
import { taskStateRank } from '../../cluster/types.js';
import type { EtcdStore } from '../store/etcd-store.js';
import { VersionConflict, type StoreEvent } from '../store/store.js';
import type { Logger } from '../../util/log.js';
import type { AssignmentsMessage, AssignmentsRequest, HeartbeatRequest, HeartbeatResponse, ManagerAddr, NodeDescriptionRequest, PeerIdentity, SessionMessage, SessionRequest, TaskStatusRequest } from '../../cluster/rpc.js';
import { LIVENESS_PREFIX } from './liveness.js';
import { assignedFiles } from './task-files.js';

/** SwarmKit defaults: heartbeat 5 s, TTL = 3 periods, status batches every 100 ms. */
export const DEFAULT_HEARTBEAT_MS = 5000;
export const GRACE_MULTIPLIER = 3;
const STATUS_FLUSH_MS = 100;
const ASSIGNMENT_DEBOUNCE_MS = 100;
/** After a version conflict: time for the store's watch to catch up before retrying. */
const STATUS_RETRY_MS = 20;

interface Session {
  id: string;
  nodeId: string;
  lease: Lease;
}

export interface DispatcherDeps {
  store: EtcdStore;
  client: Etcd3;
  log: Logger;
  /** Identity of the caller from its client certificate (undefined: none or not ours). */
  identify(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): PeerIdentity | undefined;
  rootCA(): string;
  /** The root the CA signs with: a node holding a certificate from another one asks for a new one. */
  signingRoot(): string;
  /** The swarm's data-encryption key: opens the secrets sent with assignments. */
  dek?: Buffer;
}

/** Tasks an agent must know about: assigned to it and either wanted running or still to be stopped. */
export function assignedTasks(tasks: Task[], nodeId: string): Task[] {
  const running = taskStateRank('running');
  return tasks.filter(
    // Network attachments of standalone containers are not the executor's: the network agent wires them.
    (t) => t.NodeID === nodeId && !isNetworkAttachment(t) && taskStateRank(t.Status.State) >= taskStateRank('assigned') && (taskStateRank(t.DesiredState) <= running || taskStateRank(t.Status.State) <= running),
  );
}

export function heartbeatPeriodMs(store: EtcdStore): number {
  const c = store.list('cluster')[0];
  const ns = c?.Spec.Dispatcher?.HeartbeatPeriod;
  return ns ? Math.max(100, Math.round(ns / 1e6)) : DEFAULT_HEARTBEAT_MS;
}

export function managerAddrs(store: EtcdStore): ManagerAddr[] {
  return store
    .list('nodes')
    .filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Addr)
    .map((n) => ({ nodeId: n.ID, addr: n.ManagerStatus!.Addr }));
}

/** Agent sessions of this manager: registration, heartbeats, assignments, task status. */
export class Dispatcher {
  private readonly sessions = new Map<string, Session>();
  private statusQueue: { nodeId: string; taskId: string; status: TaskStatus }[] = [];
  private flushTimer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private lastFlushAt = 0;
  private readonly closers = new Set<() => void>();
  private byNode?: Map<string, Map<string, Task>>;
  private unwatchTasks?: () => void;
  /** node ID → its assignments streams' change callbacks. */
  private readonly assignmentStreams = new Map<string, Set<() => void>>();
  private readonly resenders = new Set<() => void>();
  /** Sessions registered per node since this dispatcher started (logged with each registration). */
  private readonly registrations = new Map<string, number>();

  constructor(private readonly d: DispatcherDeps) {}

  /** gRPC handlers for the dispatcher service. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      Session: (call: grpc.ServerWritableStream<SessionRequest, SessionMessage>) => void this.session(call),
      Heartbeat: (call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>, cb: grpc.sendUnaryData<HeartbeatResponse>) => void this.heartbeat(call, cb),
      UpdateNodeDescription: (call: grpc.ServerUnaryCall<NodeDescriptionRequest, object>, cb: grpc.sendUnaryData<object>) => void this.updateNodeDescription(call, cb),
      UpdateTaskStatus: (call: grpc.ServerUnaryCall<TaskStatusRequest, object>, cb: grpc.sendUnaryData<object>) => this.updateTaskStatus(call, cb),
      Assignments: (call: grpc.ServerWritableStream<AssignmentsRequest, AssignmentsMessage>) => this.assignments(call),
    };
  }

  /** Sends every session its SessionMessage again (the root CA changed). */
  resendSessions(): void {
    for (const r of [...this.resenders]) r();
  }

  close(): void {
    for (const c of [...this.closers]) c();
    this.unwatchTasks?.();
    this.unwatchTasks = undefined;
    this.byNode = undefined;
    for (const s of this.sessions.values()) s.lease.release();
    this.sessions.clear();
    clearTimeout(this.flushTimer);
  }

  private auth(call: Parameters<DispatcherDeps['identify']>[0]): PeerIdentity {
    const id = this.d.identify(call);
    if (!id) throw Object.assign(new Error('no valid swarm certificate'), { code: grpc.status.UNAUTHENTICATED });
    if (!this.d.store.get('nodes', id.nodeId)) throw Object.assign(new Error(`node ${id.nodeId} is not a member of this swarm`), { code: grpc.status.PERMISSION_DENIED });
    return id;
  }

  private async session(call: grpc.ServerWritableStream<SessionRequest, SessionMessage>): Promise<void> {
    let id: PeerIdentity;
    try {
      id = this.auth(call);
    } catch (e) {
      call.destroy(e as Error);
      return;
    }
    const req = call.request;
    const observed = peerIp(call.getPeer());
    const periodMs = heartbeatPeriodMs(this.d.store);
    const ttl = Math.max(2, Math.ceil((periodMs * GRACE_MULTIPLIER) / 1000));
    const lease = this.d.client.lease(ttl, { autoKeepAlive: false });
    const session: Session = { id: randomBytes(12).toString('hex'), nodeId: id.nodeId, lease };
    try {
      await this.registerNode(id.nodeId, req, observed);
      await lease.put(LIVENESS_PREFIX + id.nodeId).value(session.id);
    } catch (err) {
      this.d.log.warn({ err, node: id.nodeId }, 'session registration failed');
      call.destroy(err as Error);
      return;
    }
    this.sessions.set(session.id, session);
    const registrations = (this.registrations.get(id.nodeId) ?? 0) + 1;
    this.registrations.set(id.nodeId, registrations);
    this.d.log.info({ node: id.nodeId, addr: observed, session: session.id, registrations }, 'agent session registered');
    const send = () => {
      const node = this.d.store.get('nodes', id.nodeId);
      if (node) call.write({ sessionId: session.id, node, managers: managerAddrs(this.d.store), heartbeatPeriodMs: heartbeatPeriodMs(this.d.store), rootCA: this.d.rootCA(), signingRoot: this.d.signingRoot() });
    };
    send();
    this.resenders.add(send);
    const unwatch = this.d.store.watch((evs) => {
      if (evs.some((e) => e.kind === 'cluster' || (e.kind === 'nodes' && (e.object.ID === id.nodeId || (e.object as Node).Spec.Role === 'manager')))) send();
      if (evs.some((e) => e.kind === 'nodes' && e.action === 'delete' && e.object.ID === id.nodeId)) end();
    });
    const end = () => {
      unwatch();
      this.resenders.delete(send);
      this.closers.delete(end);
      // The liveness lease is left to expire: that is how the leader learns the node is gone.
      this.sessions.delete(session.id);
      call.end();
    };
    this.closers.add(end);
    call.on('cancelled', end);
    call.on('error', end);
  }

  private registerNode(nodeId: string, req: SessionRequest, observed: string): Promise<void> {
    return this.writeNode(nodeId, req.description, { State: 'ready', Addr: req.addr || observed });
  }

  /** Stores what the agent says of its node; a write with nothing new is skipped. */
  private async writeNode(nodeId: string, description: Node['Description'], status?: Node['Status']): Promise<void> {
    for (let i = 0; i < 5; i++) {
      const n = this.d.store.get('nodes', nodeId);
      if (!n) throw new Error('node removed');
      // A reconnect with nothing new must not bump the node's version under a client's update.
      if (JSON.stringify(description) === JSON.stringify(n.Description) && (!status || JSON.stringify(status) === JSON.stringify(n.Status))) return;
      n.Description = description;
      if (status) n.Status = status;
      try {
        await this.d.store.commit([{ kind: 'nodes', op: 'update', object: n }]);
        return;
      } catch (e) {
        if (!(e instanceof VersionConflict)) throw e;
      }
    }
  }

  private async heartbeat(call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>, cb: grpc.sendUnaryData<HeartbeatResponse>): Promise<void> {
    try {
      const id = this.auth(call);
      const s = this.sessions.get(call.request.sessionId);
      if (!s || s.nodeId !== id.nodeId) return cb({ code: grpc.status.NOT_FOUND, details: 'session invalid' });
      await s.lease.keepaliveOnce();
      cb(null, { periodMs: heartbeatPeriodMs(this.d.store) });
    } catch (e) {
      cb(e as grpc.ServiceError);
    }
  }

  /**
   * A new description within a live session (its certificate renewed from a new root during a
   * rotation): the node keeps its session, assignments and state; the rotation loop sees TLSInfo.
   */
  private async updateNodeDescription(call: grpc.ServerUnaryCall<NodeDescriptionRequest, object>, cb: grpc.sendUnaryData<object>): Promise<void> {
    try {
      const id = this.auth(call);
      const s = this.sessions.get(call.request.sessionId);
      if (!s || s.nodeId !== id.nodeId) return cb({ code: grpc.status.NOT_FOUND, details: 'session invalid' });
      await this.writeNode(id.nodeId, call.request.description);
      this.d.log.info({ node: id.nodeId, session: s.id }, 'node description updated');
      cb(null, {});
    } catch (e) {
      cb(e as grpc.ServiceError);
    }
  }

  private assignments(call: grpc.ServerWritableStream<AssignmentsRequest, AssignmentsMessage>): void {
    let id: PeerIdentity;
    try {
      id = this.auth(call);
    } catch (e) {
      call.destroy(e as Error);
      return;
    }
    const byNode = this.taskIndex();
    const send = () => {
      const tasks = assignedTasks([...(byNode.get(id.nodeId)?.values() ?? [])], id.nodeId);
      call.write({ tasks, ...assignedFiles(this.d.store, this.d.dek, tasks) });
    };
    send();
    let timer: NodeJS.Timeout | undefined;
    let lastSent = Date.now();
    // The first change after a quiet spell goes out at once (changes of the same turn together);
    // during a burst, a message at most every ASSIGNMENT_DEBOUNCE_MS.
    const changed = () => {
      if (!timer) timer = setTimeout(() => { timer = undefined; lastSent = Date.now(); send(); }, Math.max(0, lastSent + ASSIGNMENT_DEBOUNCE_MS - Date.now()));
    };
    let streams = this.assignmentStreams.get(id.nodeId);
    if (!streams) this.assignmentStreams.set(id.nodeId, (streams = new Set()));
    streams.add(changed);
    const end = () => {
      streams.delete(changed);
      if (!streams.size) this.assignmentStreams.delete(id.nodeId);
      clearTimeout(timer);
      this.closers.delete(end);
      call.end();
    };
    this.closers.add(end);
    call.on('cancelled', end);
    call.on('error', end);
  }

  /**
   * Tasks by node, kept from one store watch: an assignments stream reads only its node's
   * tasks, instead of every stream copying the whole task list on every change (which made
   * the manager's time grow with nodes × tasks).
   */
  private taskIndex(): Map<string, Map<string, Task>> {
    if (this.byNode) return this.byNode;
    const byNode = (this.byNode = new Map());
    const nodeOf = new Map<string, string>();
    const put = (t: Task) => {
      const prev = nodeOf.get(t.ID);
      if (prev !== undefined && prev !== t.NodeID) byNode.get(prev)?.delete(t.ID);
      if (!t.NodeID) {
        nodeOf.delete(t.ID);
        return;
      }
      nodeOf.set(t.ID, t.NodeID);
      let m = byNode.get(t.NodeID);
      if (!m) byNode.set(t.NodeID, (m = new Map()));
      m.set(t.ID, t);
    };
    this.unwatchTasks = this.d.store.watch((evs: StoreEvent[]) => {
      const touched = new Set<string>();
      for (const e of evs) {
        if (e.kind !== 'tasks') continue;
        const t = e.object as Task;
        const prev = nodeOf.get(t.ID);
        if (prev) touched.add(prev);
        if (e.action === 'delete') {
          if (prev) byNode.get(prev)?.delete(t.ID);
          nodeOf.delete(t.ID);
        } else {
          put(t);
          if (t.NodeID) touched.add(t.NodeID);
        }
      }
      for (const n of touched) for (const fn of this.assignmentStreams.get(n) ?? []) fn();
    });
    for (const t of this.d.store.list('tasks')) put(t);
    return byNode;
  }

  private updateTaskStatus(call: grpc.ServerUnaryCall<TaskStatusRequest, object>, cb: grpc.sendUnaryData<object>): void {
    let id: PeerIdentity;
    try {
      id = this.auth(call);
    } catch (e) {
      return cb(e as grpc.ServiceError);
    }
    const s = this.sessions.get(call.request.sessionId);
    if (!s || s.nodeId !== id.nodeId) return cb({ code: grpc.status.NOT_FOUND, details: 'session invalid' });
    for (const u of call.request.updates ?? []) {
      // The node's own index, not a store read: no copy of the task per status update.
      const t = this.taskIndex().get(id.nodeId)?.get(u.taskId);
      if (!t) return cb({ code: grpc.status.PERMISSION_DENIED, details: `cannot update a task not assigned this node` });
      this.statusQueue.push({ nodeId: id.nodeId, ...u });
    }
    // The first status after a quiet spell is written at once; a burst at most every STATUS_FLUSH_MS.
    this.scheduleFlush(Math.max(0, this.lastFlushAt + STATUS_FLUSH_MS - Date.now()));
    cb(null, {});
  }

  private scheduleFlush(delayMs: number): void {
    if (!this.flushTimer && !this.flushing) this.flushTimer = setTimeout(() => void this.flush(), delayMs);
  }

  /**
   * Writes queued task statuses in one batch; a status older than the stored one is dropped.
   * One flush at a time (two would race each other's versions), and a batch that loses a
   * version race goes back to the queue until the cache has caught up: an agent reports each
   * state once, so a status dropped here would leave the task behind for good.
   */
  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    this.lastFlushAt = Date.now();
    const queue = this.statusQueue;
    this.statusQueue = [];
    const latest = new Map<string, { nodeId: string; taskId: string; status: TaskStatus }>();
    for (const u of queue) {
      const prev = latest.get(u.taskId);
      if (!prev || taskStateRank(u.status.State) >= taskStateRank(prev.status.State)) latest.set(u.taskId, u);
    }
    const changes = [];
    for (const { taskId, status } of latest.values()) {
      const t = this.d.store.get('tasks', taskId);
      if (!t || taskStateRank(status.State) < taskStateRank(t.Status.State)) continue;
      if (status.State === t.Status.State && status.Timestamp === t.Status.Timestamp) continue;
      t.Status = status;
      changes.push({ kind: 'tasks' as const, op: 'update' as const, object: t });
    }
    let retryMs = 0;
    this.flushing = this.d.store.commit(changes).catch((e) => {
      if (!(e instanceof VersionConflict)) {
        this.d.log.warn({ err: e }, 'task status write failed');
        return;
      }
      this.statusQueue = [...latest.values(), ...this.statusQueue];
      retryMs = STATUS_RETRY_MS;
    });
    await this.flushing;
    this.flushing = undefined;
    if (this.statusQueue.length) this.scheduleFlush(retryMs);
  }
}

/** "ipv4:10.0.0.2:51234" or "10.0.0.2:51234" → "10.0.0.2". */
function peerIp(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const m = /^\[?([^\]]+?)\]?:\d+$/.exec(p);
  return (m ? m[1] : p).replace(/^::ffff:/, '');
}
