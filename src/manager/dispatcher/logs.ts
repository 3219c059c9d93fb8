import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { LogLine, LogSubscription, PeerIdentity, PublishLogsRequest } from '../../cluster/rpc.js';
import type { Store } from '../store/store.js';

interface Subscription {
  /** Nodes that still owe lines (not yet `done`). */
  pending: Set<string>;
  onLines(nodeId: string, lines: LogLine[]): void;
  finish(): void;
}

export interface LogRequest {
  /** Node ID → the task IDs whose container logs it holds. */
  byNode: Map<string, string[]>;
  follow: boolean;
  tail?: number;
  since?: number;
}

/**
 * The manager's half of `docker service logs`, like SwarmKit's log broker: every agent keeps a
 * `LogSubscriptions` stream open to every manager; a logs request becomes one subscription sent
 * to the nodes holding the tasks, whose agents answer with `PublishLogs` calls.
 */
export class LogBroker {
  /** Node ID → its agent's subscription stream to this manager. */
  private readonly agents = new Map<string, grpc.ServerWritableStream<object, LogSubscription>>();
  private readonly subs = new Map<string, Subscription>();

  constructor(private readonly store: Store, private readonly identify: (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerUnaryCall<unknown, unknown>) => PeerIdentity | undefined) {}

  handlers(): grpc.UntypedServiceImplementation {
    return {
      LogSubscriptions: (call: grpc.ServerWritableStream<object, LogSubscription>) => this.subscriptions(call),
      PublishLogs: (call: grpc.ServerUnaryCall<PublishLogsRequest, object>, cb: grpc.sendUnaryData<object>) => this.publish(call, cb),
    };
  }

  /**
   * Streams the tasks' logs to `onLines` until every node is done (or, following, until
   * `signal` aborts). Nodes without a stream to this manager contribute nothing.
   */
  async logs(req: LogRequest, onLines: (nodeId: string, lines: LogLine[]) => void, signal: AbortSignal): Promise<void> {
    const id = randomBytes(12).toString('hex');
    const sent: grpc.ServerWritableStream<object, LogSubscription>[] = [];
    await new Promise<void>((resolve) => {
      const sub: Subscription = { pending: new Set(), onLines, finish: resolve };
      this.subs.set(id, sub);
      for (const [nodeId, taskIds] of req.byNode) {
        const agent = this.agents.get(nodeId);
        if (!agent || !taskIds.length) continue;
        sub.pending.add(nodeId);
        sent.push(agent);
        agent.write({ id, taskIds, follow: req.follow, tail: req.tail, since: req.since } satisfies LogSubscription);
      }
      if (!sub.pending.size) resolve();
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.subs.delete(id);
    for (const agent of sent) if (!agent.destroyed) agent.write({ id, taskIds: [], follow: false, cancel: true } satisfies LogSubscription);
  }

  close(): void {
    for (const a of [...this.agents.values()]) a.end();
    this.agents.clear();
    for (const s of [...this.subs.values()]) s.finish();
  }

  private subscriptions(call: grpc.ServerWritableStream<object, LogSubscription>): void {
    const id = this.identify(call);
    if (!id || !this.store.get('nodes', id.nodeId)) {
      call.destroy(Object.assign(new Error('no valid swarm certificate'), { code: grpc.status.UNAUTHENTICATED }));
      return;
    }
    this.agents.get(id.nodeId)?.end();
    this.agents.set(id.nodeId, call);
    const gone = () => {
      if (this.agents.get(id.nodeId) === call) this.agents.delete(id.nodeId);
      // A node that went away owes nothing more.
      for (const s of this.subs.values()) if (s.pending.delete(id.nodeId) && !s.pending.size) s.finish();
    };
    call.on('cancelled', gone);
    call.on('error', gone);
    call.on('close', gone);
  }

  private publish(call: grpc.ServerUnaryCall<PublishLogsRequest, object>, cb: grpc.sendUnaryData<object>): void {
    const id = this.identify(call);
    if (!id) {
      cb({ code: grpc.status.UNAUTHENTICATED, details: 'no valid swarm certificate' });
      return;
    }
    const req = call.request;
    const sub = this.subs.get(req.subscriptionId);
    if (!sub) {
      // The client left: tell the agent to stop.
      cb({ code: grpc.status.NOT_FOUND, details: `log subscription ${req.subscriptionId} not found` });
      return;
    }
    if (req.lines?.length) sub.onLines(id.nodeId, req.lines);
    if (req.done && sub.pending.delete(id.nodeId) && !sub.pending.size) sub.finish();
    cb(null, {});
  }
}
