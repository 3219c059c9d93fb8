import * as grpc from '@grpc/grpc-js';
import type { ContainerManager, ContainerRecord } from '../engine/containers/manager.js';
import { followLog, readLog, type LogEntry } from '../engine/containers/logs.js';
import { clientCredentials, RpcClient, type LogLine, type LogSubscription } from '../cluster/rpc.js';
import type { SwarmMembership } from './link.js';
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
 * subscription is answered from the task containers' log files.
 */
export class LogAgent {
  private readonly streams = new Map<
    string,
    { client: RpcClient<'Dispatcher'>; stream: grpc.ClientReadableStream<LogSubscription> }
  >();
  private readonly running = new Map<string, AbortController>();
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
    for (const addr of [...this.streams.keys()]) this.drop(addr);
    for (const ac of this.running.values()) ac.abort();
  }

  /** One stream per manager; streams to managers that went away (or after leaving) close. */
  private reconcile(): void {
    const target = this.swarm.agentTarget();
    const wanted = new Set(target?.managers() ?? []);
    for (const addr of [...this.streams.keys()]) if (!wanted.has(addr)) this.drop(addr);
    if (!target) return;
    for (const addr of wanted) {
      if (this.streams.has(addr)) continue;
      const tls = target.tls();
      const client = new RpcClient('Dispatcher', addr, clientCredentials(tls.ca, tls.cert, tls.key));
      const stream = client.stream('LogSubscriptions', {});
      this.streams.set(addr, { client, stream });
      stream.on('data', (s: LogSubscription) => this.onSubscription(client, s));
      const ended = () => {
        if (this.streams.get(addr)?.stream === stream) this.drop(addr);
      };
      stream.on('error', (err) => {
        this.log.debug({ err, manager: addr }, 'log subscription stream ended');
        ended();
      });
      stream.on('end', ended);
    }
  }

  private drop(addr: string): void {
    const s = this.streams.get(addr);
    this.streams.delete(addr);
    s?.stream.cancel();
    s?.client.close();
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
