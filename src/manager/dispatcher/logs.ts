import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type {
  Empty,
  RpcHandlers,
  LogLine,
  LogSubscription,
  PeerIdentity,
  PublishLogsRequest,
} from '../../cluster/rpc.js';
import type { Task } from '../../cluster/types.js';
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
  /**
   * Following a service: tasks that appear later (scale up, replacements) and match join the
   * stream once they have a node, and the stream lasts until the client leaves (swarmkit's
   * log broker watches the selector's tasks the same way).
   */
  joins?: (t: Task) => boolean;
}

/**
 * The manager's half of `docker service logs`, like SwarmKit's log broker: every agent keeps a
 * `LogSubscriptions` stream open to every manager; a logs request becomes one subscription sent
 * to the nodes holding the tasks, whose agents answer with `PublishLogs` calls.
 */
export class LogBroker {
  /** Node ID → its agent's subscription stream to this manager. */
  private readonly agents = new Map<string, grpc.ServerWritableStream<Empty, LogSubscription>>();
  private readonly subs = new Map<string, Subscription>();

  constructor(
    private readonly store: Store,
    private readonly identify: (
      call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerUnaryCall<unknown, unknown>,
    ) => PeerIdentity | undefined,
  ) {}

  handlers(): Pick<RpcHandlers<'Dispatcher'>, 'LogSubscriptions' | 'PublishLogs'> {
    return {
      LogSubscriptions: (call: grpc.ServerWritableStream<Empty, LogSubscription>) => this.subscriptions(call),
      PublishLogs: (call: grpc.ServerUnaryCall<PublishLogsRequest, Empty>, cb: grpc.sendUnaryData<Empty>) =>
        this.publish(call, cb),
    };
  }

  /**
   * Streams the tasks' logs to `onLines` until every node is done (or, following, until
   * `signal` aborts). Nodes without a stream to this manager contribute nothing.
   */
  async logs(req: LogRequest, onLines: (nodeId: string, lines: LogLine[]) => void, signal: AbortSignal): Promise<void> {
    const id = randomBytes(12).toString('hex');
    /** Subscription IDs sent (a task joining later goes out under its own ID), with their agents. */
    const sent: { subId: string; agent: grpc.ServerWritableStream<Empty, LogSubscription> }[] = [];
    const asked = new Set<string>();
    const joining = req.follow && req.joins;
    let unwatch: (() => void) | undefined;
    await new Promise<void>((resolve) => {
      // Following a service ends only when the client leaves, not when its tasks do.
      const sub: Subscription = { pending: new Set(), onLines, finish: joining ? () => undefined : resolve };
      const ask = (subId: string, nodeId: string, taskIds: string[]) => {
        const agent = this.agents.get(nodeId);
        if (!agent || !taskIds.length) return;
        for (const t of taskIds) asked.add(t);
        this.subs.set(subId, sub);
        sub.pending.add(nodeId);
        sent.push({ subId, agent });
        agent.write({
          id: subId,
          taskIds,
          follow: req.follow,
          tail: req.tail,
          since: req.since,
        } satisfies LogSubscription);
      };
      this.subs.set(id, sub);
      for (const [nodeId, taskIds] of req.byNode) ask(id, nodeId, taskIds);
      if (joining) {
        let n = 0;
        unwatch = this.store.watch((events) => {
          for (const e of events) {
            if (e.kind !== 'tasks' || e.action === 'delete') continue;
            const t = e.object as Task;
            if (!t.NodeID || asked.has(t.ID) || !req.joins!(t)) continue;
            ask(`${id}.${++n}`, t.NodeID, [t.ID]);
          }
        });
      } else if (!sub.pending.size) resolve();
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    unwatch?.();
    for (const { subId, agent } of sent) {
      this.subs.delete(subId);
      if (!agent.destroyed)
        agent.write({ id: subId, taskIds: [], follow: false, cancel: true } satisfies LogSubscription);
    }
    this.subs.delete(id);
  }

  close(): void {
    for (const a of [...this.agents.values()]) a.end();
    this.agents.clear();
    for (const s of [...this.subs.values()]) s.finish();
  }

  private subscriptions(call: grpc.ServerWritableStream<Empty, LogSubscription>): void {
    const id = this.identify(call);
    if (!id || !this.store.get('nodes', id.nodeId)) {
      call.destroy(Object.assign(new Error('no valid swarm certificate'), { code: grpc.status.UNAUTHENTICATED }));
      return;
    }
    this.agents.get(id.nodeId)?.end();
    this.agents.set(id.nodeId, call);
    // Headers now, not with the first subscription: the agent knows its stream was taken.
    call.sendMetadata(new grpc.Metadata());
    const gone = () => {
      if (this.agents.get(id.nodeId) === call) this.agents.delete(id.nodeId);
      // A node that went away owes nothing more.
      for (const s of this.subs.values()) if (s.pending.delete(id.nodeId) && !s.pending.size) s.finish();
    };
    call.on('cancelled', gone);
    call.on('error', gone);
    call.on('close', gone);
  }

  private publish(call: grpc.ServerUnaryCall<PublishLogsRequest, Empty>, cb: grpc.sendUnaryData<Empty>): void {
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
