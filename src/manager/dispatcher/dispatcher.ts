import { isNetworkAttachment } from '../networks/attachments.js';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { EtcdLeaseInvalidError, type Etcd3, type Lease, type Watcher } from 'etcd3';
import type { Node, Task, TaskStatus } from '../../cluster/types.js';
import { taskStateRank } from '../../cluster/types.js';
import type { EtcdStore } from '../store/etcd-store.js';
import { VersionConflict, type StoreEvent } from '../store/store.js';
import type { Logger } from '../../util/log.js';
import type { Empty, RpcHandlers, AssignmentsMessage, AssignmentsRequest, HeartbeatRequest, HeartbeatResponse, ManagerAddr, NodeDescriptionRequest, PeerIdentity, SessionMessage, SessionRequest, TaskStatusRequest } from '../../cluster/rpc.js';
import { LIVENESS_PREFIX } from './liveness.js';
import { claimLiveness, parseLivenessValue, type LivenessHolder } from './liveness-claim.js';
import { assignedFiles } from './task-files.js';

/** SwarmKit defaults: heartbeat 5 s, TTL = 3 periods, status batches every 100 ms. */
export const DEFAULT_HEARTBEAT_MS = 5000;
export const GRACE_MULTIPLIER = 3;
const STATUS_FLUSH_MS = 100;
const URGENT_FLUSH_MS = 10;
const ASSIGNMENT_DEBOUNCE_MS = 100;
/**
 * An agent's progress short of RUNNING (ACCEPTED … STARTING) waits this long for the task's
 * next state: the states a task passes in quick succession then cost one write, not one each.
 */
const PROGRESS_HOLD_MS = 1000;
/** After a version conflict: time for the store's watch to catch up before retrying. */
const STATUS_RETRY_MS = 20;

interface Session {
  id: string;
  nodeId: string;
  /** The agent's registration attempt: the later attempt owns the node's liveness key. */
  epoch: number;
  lease: Lease;
  /** A claim of the liveness key in flight (heartbeats restore a key that is not this session's). */
  claiming?: Promise<void>;
  /** Ends the session's stream (the agent then registers again). */
  end?: () => void;
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
  /** The Engine API client CA certificate, handed to every node. */
  apiClientCA?(): string | undefined;
  /** The swarm's data-encryption key: opens the secrets sent with assignments. */
  dek?: Buffer;
}

/**
 * Tasks an agent must know about: every task assigned to it, until the task is deleted (as
 * swarmkit's dispatcher: only a deletion removes an assignment). An ended task stays, so its
 * node keeps its exited container (and log, for `docker service logs`) while the task is in
 * the service's history; the task reaper's deletion removes both.
 */
export function assignedTasks(tasks: Task[], nodeId: string): Task[] {
  return tasks.filter((t) => t.NodeID === nodeId && isAssignment(t));
}

/** Whether its node's agent must know the task (assignedTasks without the node). */
function isAssignment(t: Task): boolean {
  // Network attachments of standalone containers are not the executor's: the network agent wires them.
  return !isNetworkAttachment(t) && taskStateRank(t.Status.State) >= taskStateRank('assigned');
}

/** A task its agent may still start: only these get their secrets and configs sent along. */
function mayRun(t: Task): boolean {
  const running = taskStateRank('running');
  return taskStateRank(t.DesiredState) <= running && taskStateRank(t.Status.State) <= running;
}

/**
 * Whether a task's new version changes what its agent is told: a new assignment, a new
 * desired state, or the end of one. A status the agent reported itself does not: resending
 * the node's whole task list for each of those was most of the manager's serialization work.
 */
function changesAssignment(prev: Task | undefined, next: Task): boolean {
  return !prev || prev.NodeID !== next.NodeID || prev.DesiredState !== next.DesiredState || isAssignment(prev) !== isAssignment(next);
}

export function heartbeatPeriodMs(store: EtcdStore): number {
  const c = store.view('cluster')[0];
  const ns = c?.Spec.Dispatcher?.HeartbeatPeriod;
  return ns ? Math.max(100, Math.round(ns / 1e6)) : DEFAULT_HEARTBEAT_MS;
}

export function managerAddrs(store: EtcdStore): ManagerAddr[] {
  return store
    .view('nodes')
    .filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Addr)
    .map((n) => ({ nodeId: n.ID, addr: n.ManagerStatus!.Addr }));
}

/** Agent sessions of this manager: registration, heartbeats, assignments, task status. */
export class Dispatcher {
  private readonly sessions = new Map<string, Session>();
  /** Open agent sessions, for the metrics endpoint. */
  get sessionCount(): number {
    return this.sessions.size;
  }
  private statusQueue: QueuedStatus[] = [];
  private flushTimer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private lastFlushAt = 0;
  private readonly closers = new Set<() => void>();
  private byNode?: Map<string, Map<string, Task>>;
  private unwatchTasks?: () => void;
  /** node ID → its assignments streams' change callbacks. */
  /** Node ID → its assignment streams, each told which of the node's tasks changed. */
  private readonly assignmentStreams = new Map<string, Set<(taskIds: Iterable<string>) => void>>();
  private readonly resenders = new Set<() => void>();
  /** node ID → its sessions' listeners (nodeListeners). */
  private readonly sessionListeners = new Map<string, Set<SessionListener>>();
  private unwatchNodes?: () => void;
  /** Sessions registered per node since this dispatcher started (logged with each registration). */
  private readonly registrations = new Map<string, number>();
  /** Node ID → who holds its liveness key, from a watch (heartbeats compare their session with it). */
  private readonly livenessHolders = new Map<string, LivenessHolder>();
  private livenessWatch?: Promise<Watcher | undefined>;

  constructor(private readonly d: DispatcherDeps) {}

  /** gRPC handlers for the dispatcher service. */
  handlers(): Pick<RpcHandlers<'Dispatcher'>, 'Session' | 'Heartbeat' | 'UpdateNodeDescription' | 'UpdateTaskStatus' | 'Assignments'> {
    return {
      Session: (call: grpc.ServerWritableStream<SessionRequest, SessionMessage>) => void this.session(call),
      Heartbeat: (call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>, cb: grpc.sendUnaryData<HeartbeatResponse>) => void this.heartbeat(call, cb),
      UpdateNodeDescription: (call: grpc.ServerUnaryCall<NodeDescriptionRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => void this.updateNodeDescription(call, cb),
      UpdateTaskStatus: (call: grpc.ServerUnaryCall<TaskStatusRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => this.updateTaskStatus(call, cb),
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
    this.unwatchNodes?.();
    this.unwatchNodes = undefined;
    this.byNode = undefined;
    for (const s of this.sessions.values()) s.lease.release();
    this.sessions.clear();
    void this.livenessWatch?.then((w) => w?.cancel()).catch(() => undefined);
    this.livenessWatch = undefined;
    clearTimeout(this.flushTimer);
  }

  private auth(call: Parameters<DispatcherDeps['identify']>[0]): PeerIdentity {
    const id = this.d.identify(call);
    if (!id) throw Object.assign(new Error('no valid swarm certificate'), { code: grpc.status.UNAUTHENTICATED });
    if (!this.d.store.viewOne('nodes', id.nodeId)) throw Object.assign(new Error(`node ${id.nodeId} is not a member of this swarm`), { code: grpc.status.PERMISSION_DENIED });
    return id;
  }

  /** auth() for a server stream: a refused caller's stream ends with the error. */
  private authStream(call: grpc.ServerWritableStream<unknown, unknown>): PeerIdentity | undefined {
    try {
      return this.auth(call);
    } catch (e) {
      call.destroy(e as Error);
      return undefined;
    }
  }

  private async session(call: grpc.ServerWritableStream<SessionRequest, SessionMessage>): Promise<void> {
    const id = this.authStream(call);
    if (!id) return;
    const req = call.request;
    const observed = peerIp(call.getPeer());
    const periodMs = heartbeatPeriodMs(this.d.store);
    const ttl = Math.max(2, Math.ceil((periodMs * GRACE_MULTIPLIER) / 1000));
    const lease = this.d.client.lease(ttl, { autoKeepAlive: false });
    // An agent too old to send an epoch: its registration counts from when it arrived here.
    const epoch = Number.isSafeInteger(req.epoch) && req.epoch! > 0 ? req.epoch! : Date.now();
    const session: Session = { id: randomBytes(12).toString('hex'), nodeId: id.nodeId, epoch, lease };
    // Listened for before the registration's writes: a stream the agent gave up on while they
    // were in flight (an election made them slow) must not become a session.
    let gone = false;
    const early = () => { gone = true; };
    call.on('cancelled', early);
    call.on('error', early);
    this.startLivenessWatch();
    try {
      await testRegistrationHold(epoch);
      await this.registerNode(id.nodeId, req, observed);
      if (gone) throw new Error('the agent left before its registration completed');
      if ((await claimLiveness(this.d.client, id.nodeId, lease, { epoch, sessionId: session.id })) === 'superseded') throw new Error('a later session of this node holds its liveness');
      this.livenessHolders.set(id.nodeId, { epoch, sessionId: session.id });
      if (gone) throw new Error('the agent left before its registration completed');
    } catch (err) {
      this.d.log.warn({ err, node: id.nodeId, session: session.id, epoch }, 'session registration failed');
      // A key this lease may hold goes with it: only a live session's lease may keep a node alive.
      lease.revoke().catch(() => undefined);
      // emit('error'), not destroy(): grpc-js sends a status to the client only for the former.
      call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: (err as Error).message });
      return;
    } finally {
      call.off('cancelled', early);
      call.off('error', early);
    }
    this.sessions.set(session.id, session);
    const registrations = (this.registrations.get(id.nodeId) ?? 0) + 1;
    this.registrations.set(id.nodeId, registrations);
    this.d.log.info({ node: id.nodeId, addr: observed, session: session.id, registrations }, 'agent session registered');
    const send = () => {
      const node = this.d.store.viewOne('nodes', id.nodeId);
      if (node) call.write({ sessionId: session.id, node, managers: managerAddrs(this.d.store), heartbeatPeriodMs: heartbeatPeriodMs(this.d.store), rootCA: this.d.rootCA(), signingRoot: this.d.signingRoot(), apiClientCA: this.d.apiClientCA?.() });
    };
    send();
    this.resenders.add(send);
    const listener = { changed: send, removed: () => end() };
    this.nodeListeners(id.nodeId).add(listener);
    const end = () => {
      const set = this.nodeListeners(id.nodeId);
      set.delete(listener);
      if (!set.size) this.sessionListeners.delete(id.nodeId);
      this.resenders.delete(send);
      this.closers.delete(end);
      // The liveness lease is left to expire: that is how the leader learns the node is gone.
      this.sessions.delete(session.id);
      call.end();
    };
    session.end = end;
    this.closers.add(end);
    call.on('cancelled', end);
    call.on('error', end);
  }

  /**
   * The sessions of a node, told when its node object (or the cluster, or a manager) changes,
   * from one store watch for all of them: one per session made every batch of task events
   * cost sessions × events.
   */
  private nodeListeners(nodeId: string): Set<SessionListener> {
    if (!this.unwatchNodes) {
      this.unwatchNodes = this.d.store.watch((evs) => {
        let all = false;
        const changed = new Set<string>();
        const removed = new Set<string>();
        for (const e of evs) {
          if (e.kind === 'cluster') all = true;
          else if (e.kind === 'nodes') {
            if ((e.object as Node).Spec.Role === 'manager') all = true;
            changed.add(e.object.ID);
            if (e.action === 'delete') removed.add(e.object.ID);
          }
        }
        const notify = all ? [...this.sessionListeners.values()] : [...changed].map((n) => this.sessionListeners.get(n) ?? new Set<SessionListener>());
        for (const set of notify) for (const l of [...set]) l.changed();
        for (const n of removed) for (const l of [...(this.sessionListeners.get(n) ?? [])]) l.removed();
      });
    }
    let set = this.sessionListeners.get(nodeId);
    if (!set) this.sessionListeners.set(nodeId, (set = new Set()));
    return set;
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

  /** Lease renewals that failed since the last warning (at most one warning per 5 s). */
  private renewFailures = { count: 0, since: 0 };
  private renewalFailed(err: unknown): void {
    const f = this.renewFailures;
    f.count++;
    if (Date.now() - f.since < 5000) return;
    this.d.log.warn({ err, failures: f.count }, 'session lease renewals failed');
    f.count = 0;
    f.since = Date.now();
  }

  private async heartbeat(call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>, cb: grpc.sendUnaryData<HeartbeatResponse>): Promise<void> {
    try {
      const id = this.auth(call);
      const s = this.sessions.get(call.request.sessionId);
      if (!s || s.nodeId !== id.nodeId) return cb({ code: grpc.status.NOT_FOUND, details: 'session invalid' });
      // Answered at once, the lease renewed behind it: under load an etcd round trip took
      // longer than the agent's deadline, and agents whose heartbeat timed out reconnected,
      // re-registering and adding more writes.
      s.lease.keepaliveOnce().then(() => this.keepLiveness(s), (err) => {
        // Gone (expired): the agent must register again. Anything else (etcd busy): the next
        // heartbeat renews it; ending the session would only add a registration's writes.
        if (!(err instanceof EtcdLeaseInvalidError)) return this.renewalFailed(err);
        this.d.log.warn({ node: s.nodeId }, 'session lease expired; ending the session');
        s.end?.();
      });
      cb(null, { periodMs: heartbeatPeriodMs(this.d.store) });
    } catch (e) {
      cb(e as grpc.ServiceError);
    }
  }

  /**
   * After a renewal: the node's liveness key must be this session's. Missing (deleted, or put by
   * an earlier session whose lease expired) or an earlier session's: it is put back on this
   * session's lease. A later session's: this one is stale and ends (its agent registered since).
   */
  private keepLiveness(s: Session): void {
    const h = this.livenessHolders.get(s.nodeId);
    if (h?.sessionId === s.id || s.claiming || !this.sessions.has(s.id)) return;
    if (h && h.epoch > s.epoch) {
      this.d.log.warn({ node: s.nodeId, session: s.id, holder: h.sessionId }, 'a later session of this node holds its liveness; ending this one');
      s.end?.();
      return;
    }
    s.claiming = claimLiveness(this.d.client, s.nodeId, s.lease, { epoch: s.epoch, sessionId: s.id }).then((r) => {
      if (r === 'superseded') return s.end?.();
      if (!this.sessions.has(s.id)) return;
      if (this.livenessHolders.get(s.nodeId)?.sessionId !== s.id) this.d.log.warn({ node: s.nodeId, session: s.id, was: h?.sessionId ?? null }, 'liveness key restored by the live session');
      this.livenessHolders.set(s.nodeId, { epoch: s.epoch, sessionId: s.id });
    }, (err) => this.renewalFailed(err)).finally(() => { s.claiming = undefined; });
  }

  /** One watch of every node's liveness key, so a heartbeat knows without a read whether its key is its own. */
  private startLivenessWatch(): void {
    if (this.livenessWatch) return;
    const w = this.d.client.watch().prefix(LIVENESS_PREFIX).create().then((watcher) => {
      const nodeOf = (key: Buffer) => key.toString().slice(LIVENESS_PREFIX.length);
      watcher.on('put', (kv) => {
        const h = parseLivenessValue(kv.value.toString());
        if (h) this.livenessHolders.set(nodeOf(kv.key), h);
        else this.livenessHolders.delete(nodeOf(kv.key));
      });
      watcher.on('delete', (kv) => this.livenessHolders.delete(nodeOf(kv.key)));
      return watcher;
    }, (err) => {
      this.d.log.warn({ err }, 'liveness watch failed; retrying with the next session');
      this.livenessWatch = undefined;
      return undefined;
    });
    this.livenessWatch = w;
  }

  /**
   * A new description within a live session (its certificate renewed from a new root during a
   * rotation): the node keeps its session, assignments and state; the rotation loop sees TLSInfo.
   */
  private async updateNodeDescription(call: grpc.ServerUnaryCall<NodeDescriptionRequest, Empty>, cb: grpc.sendUnaryData<Empty>): Promise<void> {
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
    const id = this.authStream(call);
    if (!id) return;
    const byNode = this.taskIndex();
    // What the agent was last told, by task ID: after the complete first message only the
    // difference goes out. Resending a node's whole list on every change cost the manager
    // (tasks per node)² serializations while a big service was being placed.
    const told = new Map<string, Task>();
    /** Tasks of this node changed since the last message: a message costs what changed. */
    const pending = new Set<string>();
    const send = (complete: boolean) => {
      const mine = byNode.get(id.nodeId);
      const tasks: Task[] = [];
      const removes: string[] = [];
      if (complete) {
        for (const t of assignedTasks([...(mine?.values() ?? [])], id.nodeId)) tasks.push(t);
      } else {
        for (const tid of pending) {
          const t = mine?.get(tid);
          const was = told.get(tid);
          if (t && t.NodeID === id.nodeId && isAssignment(t)) {
            if (!was || changesAssignment(was, t)) tasks.push(t);
          } else if (was) removes.push(tid);
        }
      }
      pending.clear();
      for (const tid of removes) told.delete(tid);
      for (const t of tasks) told.set(t.ID, t);
      if (!complete && !tasks.length && !removes.length) return;
      call.write({ type: complete ? 'complete' : 'incremental', tasks, ...(removes.length ? { removes } : {}), ...assignedFiles(this.d.store, this.d.dek, tasks.filter(mayRun)) });
    };
    send(true);
    let timer: NodeJS.Timeout | undefined;
    let lastSent = Date.now();
    // The first change after a quiet spell goes out at once (changes of the same turn together);
    // during a burst, a message at most every ASSIGNMENT_DEBOUNCE_MS.
    const changed = (taskIds: Iterable<string>) => {
      for (const tid of taskIds) pending.add(tid);
      if (!timer) timer = setTimeout(() => { timer = undefined; lastSent = Date.now(); send(false); }, Math.max(0, lastSent + ASSIGNMENT_DEBOUNCE_MS - Date.now()));
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
      /** Node ID → its tasks whose assignment changed in these events. */
      const touched = new Map<string, string[]>();
      const touch = (nodeId: string, taskId: string) => {
        let l = touched.get(nodeId);
        if (!l) touched.set(nodeId, (l = []));
        l.push(taskId);
      };
      for (const e of evs) {
        if (e.kind !== 'tasks') continue;
        const t = e.object as Task;
        const prev = nodeOf.get(t.ID);
        if (e.action === 'delete') {
          if (prev) {
            byNode.get(prev)?.delete(t.ID);
            touch(prev, t.ID);
          }
          nodeOf.delete(t.ID);
        } else {
          const before = prev ? byNode.get(prev)?.get(t.ID) : undefined;
          put(t);
          if (changesAssignment(before, t)) {
            if (prev) touch(prev, t.ID);
            if (t.NodeID && t.NodeID !== prev) touch(t.NodeID, t.ID);
          }
        }
      }
      for (const [n, ids] of touched) for (const fn of this.assignmentStreams.get(n) ?? []) fn(ids);
    });
    for (const t of this.d.store.view('tasks')) put(t);
    return byNode;
  }

  private updateTaskStatus(call: grpc.ServerUnaryCall<TaskStatusRequest, Empty>, cb: grpc.sendUnaryData<Empty>): void {
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
      this.statusQueue.push({ nodeId: id.nodeId, ...u, queuedAt: Date.now() });
    }
    // The first status after a quiet spell is written at once; a burst at most every STATUS_FLUSH_MS.
    // RUNNING and ends are what load balancers and orchestrators wait for: at most URGENT_FLUSH_MS.
    const urgent = (call.request.updates ?? []).some((u) => !isProgress(u.status));
    this.scheduleFlush(Math.max(0, this.lastFlushAt + (urgent ? URGENT_FLUSH_MS : STATUS_FLUSH_MS) - Date.now()));
    cb(null, {});
  }

  /** The earliest due flush wins: a RUNNING status never waits behind held progress. */
  private scheduleFlush(delayMs: number): void {
    if (this.flushing) return;
    const due = Date.now() + delayMs;
    if (this.flushTimer && this.flushDueAt <= due) return;
    clearTimeout(this.flushTimer);
    this.flushDueAt = due;
    this.flushTimer = setTimeout(() => void this.flush(), delayMs);
  }

  private flushDueAt = 0;

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
    const now = Date.now();
    const latest = new Map<string, QueuedStatus>();
    for (const u of queue) {
      const prev = latest.get(u.taskId);
      if (!prev || taskStateRank(u.status.State) >= taskStateRank(prev.status.State)) latest.set(u.taskId, prev ? { ...u, queuedAt: Math.min(u.queuedAt, prev.queuedAt) } : u);
    }
    const held: QueuedStatus[] = [];
    for (const u of latest.values()) {
      if (isProgress(u.status) && now - u.queuedAt < PROGRESS_HOLD_MS) {
        held.push(u);
        latest.delete(u.taskId);
      }
    }
    const changes = [];
    for (const { taskId, status } of latest.values()) {
      // The cache's object, not a copy: the write is a new object with the new status.
      const t = this.d.store.viewOne('tasks', taskId);
      if (!t || taskStateRank(status.State) < taskStateRank(t.Status.State)) continue;
      if (status.State === t.Status.State && status.Timestamp === t.Status.Timestamp) continue;
      changes.push({ kind: 'tasks' as const, op: 'update' as const, object: { ...t, Status: status } });
    }
    let retryMs = 0;
    const t0 = performance.now();
    this.flushing = this.d.store.commit(changes).then(() => {
      this.d.log.debug({ statuses: changes.length, ms: Math.round(performance.now() - t0) }, 'task statuses written');
    }, (e) => {
      if (!(e instanceof VersionConflict)) {
        this.d.log.warn({ err: e }, 'task status write failed');
        return;
      }
      this.statusQueue = [...latest.values(), ...this.statusQueue];
      retryMs = STATUS_RETRY_MS;
    });
    await this.flushing;
    this.flushing = undefined;
    // Statuses that came during the write go at once (or after a conflict's pause); held
    // progress when it is due.
    const arrived = this.statusQueue.length > 0;
    this.statusQueue.push(...held);
    if (arrived) this.scheduleFlush(retryMs);
    else if (held.length) this.scheduleFlush(Math.max(retryMs, held.reduce((m, u) => Math.min(m, u.queuedAt), Infinity) + PROGRESS_HOLD_MS - Date.now()));
  }
}

/**
 * Tests only: SHOAL_TEST_REGISTRATION_HOLD_FILE names a file holding an epoch; while it exists,
 * registrations of that epoch or earlier wait before their writes (a manager whose store is
 * slow during an election), so a test can hold one back until the agent has a session elsewhere.
 */
async function testRegistrationHold(epoch: number): Promise<void> {
  const f = process.env.SHOAL_TEST_REGISTRATION_HOLD_FILE;
  if (!f) return;
  const { readFileSync } = await import('node:fs');
  const holds = () => {
    try {
      return epoch <= Number(readFileSync(f, 'utf8'));
    } catch {
      return false;
    }
  };
  while (holds()) await new Promise((r) => setTimeout(r, 100));
}

interface SessionListener {
  changed(): void;
  removed(): void;
}

interface QueuedStatus {
  nodeId: string;
  taskId: string;
  status: TaskStatus;
  /** When the first status of the task still queued came in. */
  queuedAt: number;
}

function isProgress(s: TaskStatus): boolean {
  const r = taskStateRank(s.State);
  return r >= taskStateRank('accepted') && r < taskStateRank('running');
}

/** "ipv4:10.0.0.2:51234" or "10.0.0.2:51234" → "10.0.0.2". */
function peerIp(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const m = /^\[?([^\]]+?)\]?:\d+$/.exec(p);
  return (m ? m[1] : p).replace(/^::ffff:/, '');
}
