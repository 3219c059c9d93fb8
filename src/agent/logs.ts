import * as grpc from '@grpc/grpc-js';
import type { ContainerManager, ContainerRecord } from '../engine/containers/manager.js';
import { followLog, readLog, type LogEntry } from '../engine/containers/logs.js';
import type { LogLine, LogSubscription, RpcClient } from '../cluster/rpc.js';
import type { ManagerEndpoints, SwarmMembership } from './link.js';
import { ManagerConnection } from './manager-connection.js';
import type { Logger } from '../util/log.js';
import { SerialQueue } from '../util/serial-queue.js';

const TASK_LABEL = 'com.docker.swarm.task.id';
const CHECK_MS = 2000;
const FLUSH_MS = 100;
const BATCH = 500;
const READY_POLL_MS = 250;

/**
 * The agent's half of `docker service logs` (see manager/dispatcher/logs.ts): a subscription
 * stream to every manager, so whichever manager serves the API reaches this node; each
 * subscription is answered from the task containers' log files. Each manager's stream is its
 * own ManagerConnection over that one address: reopened after the agent's one reconnect
 * delay, given up when the manager leaves the list.
 */
export class LogAgent {
  /** Manager address → its stream now (none between attempts). */
  private readonly streams = new Map<string, { stream?: grpc.ClientReadableStream<LogSubscription> }>();
  private readonly running = new Map<string, AbortController>();
  /** Aborted on stop: ends the waits between attempts. */
  private readonly stopping = new AbortController();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly containers: ContainerManager,
    private readonly swarm: SwarmMembership,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.reconcile(), CHECK_MS);
    this.timer.unref();
    this.reconcile();
  }

  stop(): void {
    clearInterval(this.timer);
    this.stopping.abort();
    for (const s of this.streams.values()) s.stream?.cancel();
    for (const ac of this.running.values()) ac.abort();
  }

  /** One stream per manager (a manager that joined gets one); streams to managers that went away (or after leaving) close. */
  private reconcile(): void {
    const wanted = new Set(this.swarm.agentTarget()?.managers() ?? []);
    for (const [addr, s] of this.streams) if (!wanted.has(addr)) s.stream?.cancel();
    for (const addr of wanted) {
      if (this.streams.has(addr)) continue;
      this.follow(addr).catch((err: unknown) => this.log.warn({ err, manager: addr }, 'log subscription loop failed'));
    }
  }

  /** Keeps a subscription stream open to the manager at `addr` while it is one of the node's managers. */
  private async follow(addr: string): Promise<void> {
    const slot: { stream?: grpc.ClientReadableStream<LogSubscription> } = {};
    this.streams.set(addr, slot);
    const connection = new ManagerConnection(() => {
      const target = this.swarm.agentTarget();
      return target?.managers().includes(addr) ? { tls: () => target.tls(), managers: () => [addr] } : undefined;
    });
    try {
      while (!this.stopping.signal.aborted) {
        const picked = connection.pick();
        if (!picked) return;
        await this.subscribe(connection, picked.target, addr, slot);
        await connection.failed({ signal: this.stopping.signal });
      }
    } finally {
      this.streams.delete(addr);
    }
  }

  /** One subscription stream to `addr`; resolves when it ends. */
  private subscribe(
    connection: ManagerConnection,
    target: ManagerEndpoints,
    addr: string,
    slot: { stream?: grpc.ClientReadableStream<LogSubscription> },
  ): Promise<void> {
    const client = connection.client(target, addr);
    const stream = client.stream('LogSubscriptions', {});
    slot.stream = stream;
    return new Promise<void>((resolve) => {
      // The manager took the stream (it sends its headers at once): failures start over from the shortest delay.
      stream.on('metadata', () => connection.succeeded());
      stream.on('data', (s: LogSubscription) => this.onSubscription(client, s));
      stream.on('error', (err) => {
        this.log.debug({ err, manager: addr }, 'log subscription stream ended');
        resolve();
      });
      stream.on('end', () => resolve());
    }).finally(() => {
      slot.stream = undefined;
      client.close();
    });
  }

  private onSubscription(client: RpcClient<'Dispatcher'>, s: LogSubscription): void {
    if (s.cancel) {
      this.running.get(s.id)?.abort();
      return;
    }
    const ac = new AbortController();
    this.running.set(s.id, ac);
    this.serve(client, s, ac)
      .catch((err) => this.log.debug({ err, subscription: s.id }, 'log subscription failed'))
      .finally(() => this.running.delete(s.id));
  }

  private async serve(client: RpcClient<'Dispatcher'>, s: LogSubscription, ac: AbortController): Promise<void> {
    let buf: LogLine[] = [];
    const sending = new SerialQueue();
    const send = (done = false) => {
      const lines = buf;
      buf = [];
      return sending.run(async () => {
        if (ac.signal.aborted && !done) return;
        for (let i = 0; i < lines.length || (i === 0 && done); i += BATCH) {
          const batch = lines.slice(i, i + BATCH);
          const last = i + BATCH >= lines.length;
          try {
            await client.call('PublishLogs', { subscriptionId: s.id, lines: batch, done: done && last });
          } catch {
            ac.abort(); // the manager no longer wants them
            return;
          }
        }
      });
    };
    const flusher = setInterval(() => {
      if (buf.length) send().catch((err: unknown) => this.log.warn({ err, subscription: s.id }, 'log lines not sent'));
    }, FLUSH_MS);
    try {
      await Promise.all(
        s.taskIds.map((taskId) =>
          this.taskLogs(taskId, s, ac.signal, (e) => {
            buf.push({ taskId, stream: e.stream, time: e.time, data: e.data.toString('base64') });
          }),
        ),
      );
    } finally {
      clearInterval(flusher);
    }
    await send(true);
  }

  /**
   * Following: a task's container once it has started (a new task's container is created and
   * started after its subscription arrives), as moby's controller waits for it to be ready.
   */
  private async started(taskId: string, signal: AbortSignal): Promise<ContainerRecord | undefined> {
    for (;;) {
      const rec = this.containers.listByLabels({ [TASK_LABEL]: taskId })[0];
      if (rec && rec.state.Status !== 'created') return rec;
      if (signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, READY_POLL_MS);
        signal.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        }
      });
    }
  }

  /** One task's container log: the last `tail` lines since `since`, then new ones while following. */
  private async taskLogs(
    taskId: string,
    s: LogSubscription,
    signal: AbortSignal,
    push: (e: LogEntry) => void,
  ): Promise<void> {
    const rec = s.follow
      ? await this.started(taskId, signal)
      : this.containers.listByLabels({ [TASK_LABEL]: taskId })[0];
    if (!rec) return;
    const file = this.containers.paths(rec.id).log;
    const seq = this.containers.exits(rec.id);
    const since = s.since ?? 0;
    const { entries, offset } = readLog(file, 0);
    let picked = entries.filter((e) => !since || e.ms >= since * 1000);
    if (s.tail !== undefined && s.tail >= 0) picked = s.tail === 0 ? [] : picked.slice(-s.tail);
    for (const e of picked) push(e);
    const running = rec.state.Status === 'running' || rec.state.Status === 'paused';
    if (!s.follow || !running || signal.aborted) return;
    await followLog(file, {
      offset,
      onEntry: (e) => push(e),
      done: () => this.containers.exits(rec.id) !== seq || !this.containers.find(rec.id),
      signal,
    });
  }
}
