import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { EtcdStore } from '../store/etcd-store.js';
import type { Logger } from '../../util/log.js';
import type { PeerIdentity, RpcHandlers } from '../../cluster/rpc.js';
import { AssignmentStreams } from './assignments.js';
import { heartbeatPeriodMs, Sessions } from './sessions.js';
import { TaskStatusWriter } from './task-status.js';
import { managerMetrics } from '../metrics.js';

export { assignedTasks } from './assignments.js';
export { DEFAULT_HEARTBEAT_MS, GRACE_MULTIPLIER, heartbeatPeriodMs, managerAddrs } from './sessions.js';

export interface DispatcherDeps {
  store: EtcdStore;
  client: Etcd3;
  log: Logger;
  /** Identity of the caller from its client certificate (undefined: none or not ours). */
  identify(
    call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  ): PeerIdentity | undefined;
  rootCA(): string;
  /** The root the CA signs with: a node holding a certificate from another one asks for a new one. */
  signingRoot(): string;
  /** The Engine API client CA certificate, handed to every node. */
  apiClientCA?(): string | undefined;
  /** The swarm's data-encryption key now (it changes with a rotation): opens the secrets sent with assignments. */
  dek(): Buffer | undefined;
}

type DispatcherHandlers = Pick<
  RpcHandlers<'Dispatcher'>,
  'Session' | 'Heartbeat' | 'UpdateNodeDescription' | 'UpdateTaskStatus' | 'Assignments'
>;

/**
 * Agent sessions of this manager (swarmkit's dispatcher): each RPC checks its caller, then
 * goes to the part that owns it: sessions (registration, heartbeats, description), the
 * assignments streams, and the task status writer.
 */
export class Dispatcher {
  private readonly closers = new Set<() => void>();
  private readonly sessions: Sessions;
  private readonly assignments: AssignmentStreams;
  private readonly statuses: TaskStatusWriter;

  constructor(private readonly d: DispatcherDeps) {
    this.sessions = new Sessions(
      {
        store: d.store,
        client: d.client,
        log: d.log,
        trust: () => ({ rootCA: d.rootCA(), signingRoot: d.signingRoot(), apiClientCA: d.apiClientCA?.() }),
      },
      this.closers,
    );
    this.assignments = new AssignmentStreams(d.store, () => d.dek(), this.closers);
    this.statuses = new TaskStatusWriter(d.store, d.log);
  }

  /** Open agent sessions, for the metrics endpoint. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** gRPC handlers for the dispatcher service. */
  handlers(): DispatcherHandlers {
    return {
      Session: (call) => {
        const id = this.authStream(call);
        if (id)
          this.sessions
            .open(call, id)
            .catch((err: unknown) => this.d.log.warn({ err, node: id }, 'dispatcher session failed'));
      },
      Heartbeat: (call, cb) => {
        try {
          const id = this.auth(call);
          const s = this.sessions.of(id.nodeId, call.request.sessionId);
          if (!s) return cb({ code: grpc.status.NOT_FOUND, details: 'session invalid' });
          managerMetrics.heartbeats.inc();
          // Answered at once, the lease renewed behind it: under load an etcd round trip took
          // longer than the agent's deadline, and agents whose heartbeat timed out reconnected,
          // re-registering and adding more writes.
          this.sessions.liveness.renew(s);
          cb(null, { periodMs: heartbeatPeriodMs(this.d.store) });
        } catch (e) {
          cb(e as grpc.ServiceError);
        }
      },
      UpdateNodeDescription: (call, cb) =>
        void this.updateNodeDescription(call, cb).catch((err: unknown) =>
          this.d.log.warn({ err }, 'node description update failed'),
        ),
      UpdateTaskStatus: (call, cb) => this.updateTaskStatus(call, cb),
      Assignments: (call) => {
        const id = this.authStream(call);
        if (id) this.assignments.open(call, id.nodeId);
      },
    };
  }

  /** Sends every session its SessionMessage again (the root CA changed). */
  resendSessions(): void {
    this.sessions.resend();
  }

  close(): void {
    for (const c of [...this.closers]) c();
    this.assignments.close();
    this.sessions.close();
    this.statuses.close();
  }

  private auth(call: Parameters<DispatcherDeps['identify']>[0]): PeerIdentity {
    const id = this.d.identify(call);
    if (!id) throw Object.assign(new Error('no valid swarm certificate'), { code: grpc.status.UNAUTHENTICATED });
    if (!this.d.store.viewOne('nodes', id.nodeId))
      throw Object.assign(new Error(`node ${id.nodeId} is not a member of this swarm`), {
        code: grpc.status.PERMISSION_DENIED,
      });
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

  /**
   * A new description within a live session (its certificate renewed from a new root during a
   * rotation): the node keeps its session, assignments and state; the rotation loop sees TLSInfo.
   */
  private async updateNodeDescription(
    ...[call, cb]: Parameters<DispatcherHandlers['UpdateNodeDescription']>
  ): Promise<void> {
    try {
      const id = this.auth(call);
      const s = this.sessions.of(id.nodeId, call.request.sessionId);
      if (!s) return cb({ code: grpc.status.NOT_FOUND, details: 'session invalid' });
      await this.sessions.writeNode(id.nodeId, call.request.description);
      this.d.log.info({ node: id.nodeId, session: s.id }, 'node description updated');
      cb(null, {});
    } catch (e) {
      cb(e as grpc.ServiceError);
    }
  }

  private updateTaskStatus(...[call, cb]: Parameters<DispatcherHandlers['UpdateTaskStatus']>): void {
    let id: PeerIdentity;
    try {
      id = this.auth(call);
    } catch (e) {
      return cb(e as grpc.ServiceError);
    }
    if (!this.sessions.of(id.nodeId, call.request.sessionId))
      return cb({ code: grpc.status.NOT_FOUND, details: 'session invalid' });
    const updates = call.request.updates ?? [];
    for (const u of updates) {
      if (!this.assignments.nodeTask(id.nodeId, u.taskId))
        return cb({ code: grpc.status.PERMISSION_DENIED, details: `cannot update a task not assigned this node` });
      this.statuses.push(id.nodeId, u);
    }
    this.statuses.written(updates);
    cb(null, {});
  }
}
