import * as grpc from '@grpc/grpc-js';
import { setTimeout as delay } from 'node:timers/promises';
import type { NodeDescription, Task, TaskStatus } from '../../cluster/types.js';
import type { AgentLink, AssignedFiles, ManagerEndpoints } from '../link.js';
import { ManagerConnection } from '../manager-connection.js';
import type { AssignedFile, AssignmentsMessage, ManagerAddr, RpcClient, SessionMessage } from '../../cluster/rpc.js';
import type { Logger } from '../../util/log.js';

/** The managers to reach (TLS material re-read on every connect, addresses tried in order) and the node's side of it. */
export interface SessionDeps extends ManagerEndpoints {
  log: Logger;
  /** Called when the manager tells us the current manager list. */
  onManagers(list: ManagerAddr[]): void;
  description(): NodeDescription;
  /** The address this node advertises. */
  addr: string;
  onSession?(msg: SessionMessage): void;
}

const FIRST_MESSAGE_TIMEOUT_MS = 5000;
/** Assignments carry the tasks' secrets and configs (up to 1000 KiB each): swarmkit's 128 MiB, not gRPC's 4 MiB. */
const MAX_MESSAGE_BYTES = 128 << 20;
const RPC_TIMEOUT_MS = 5000;
/** No manager known yet (the list comes with the join): look again after this long. */
const NO_MANAGER_MS = 1000;

/**
 * The agent's one session to a manager: registration, heartbeats, assignments, status reports.
 * It moves to the next manager when its manager goes away. Implements AgentLink for the worker.
 */
export class AgentSession implements AgentLink {
  private stopped = false;
  private client?: RpcClient<'Dispatcher'>;
  private sessionId?: string;
  private readonly assignmentListeners: Parameters<AgentLink['onAssignments']>[0][] = [];
  private lastTasks?: Task[];
  private lastFiles?: AssignedFiles;
  private connectedWaiters: (() => void)[] = [];
  /** Picks the manager and waits between attempts (the agent's one reconnect policy). */
  private readonly connection: ManagerConnection;
  /** Aborted on stop: ends a wait between attempts. */
  private readonly stopping = new AbortController();
  /** `reconnect()` asked to register again with the same manager. */
  private sameManager = false;
  private wake?: () => void;
  /** The manager this session talks to, for `docker info`. */
  current?: string;

  constructor(private readonly d: SessionDeps) {
    this.connection = new ManagerConnection(() => d);
  }

  start(): void {
    this.run().catch((err: unknown) => this.d.log.warn({ err }, 'agent session loop failed'));
  }

  stop(): void {
    this.stopped = true;
    this.stopping.abort();
    this.client?.close();
    this.wake?.();
  }

  get connected(): boolean {
    return !!this.sessionId;
  }

  onAssignments(fn: Parameters<AgentLink['onAssignments']>[0]): void {
    this.assignmentListeners.push(fn);
    if (this.lastTasks) fn(this.lastTasks, this.lastFiles);
  }

  async reportStatus(updates: { taskId: string; status: TaskStatus }[]): Promise<void> {
    for (let i = 0; i < updates.length; i += 1024) {
      const batch = updates.slice(i, i + 1024);
      for (;;) {
        if (this.stopped) return;
        if (!this.client || !this.sessionId) {
          await new Promise<void>((r) => this.connectedWaiters.push(r));
          continue;
        }
        try {
          await this.client.call('UpdateTaskStatus', { sessionId: this.sessionId, updates: batch }, RPC_TIMEOUT_MS);
          break;
        } catch (err) {
          if ((err as grpc.ServiceError).code === grpc.status.PERMISSION_DENIED) throw err;
          this.d.log.debug({ err }, 'status report failed; retrying after reconnect');
          this.drop();
          await new Promise<void>((r) => this.connectedWaiters.push(r));
        }
      }
    }
  }

  /**
   * Tells the manager this node's description changed (a renewed certificate's TLSInfo) within
   * the current session: no re-registration, the session and its streams go on. Without a
   * session there is nothing to do: the next registration carries the new description.
   */
  async updateDescription(): Promise<void> {
    const client = this.client;
    const sessionId = this.sessionId;
    if (!client || !sessionId) return;
    try {
      await client.call('UpdateNodeDescription', { sessionId, description: this.d.description() }, RPC_TIMEOUT_MS);
    } catch (err) {
      // The session is gone or going; registering again delivers the description.
      this.d.log.warn({ err }, 'could not update the node description in the session; registering again');
      if (this.client === client) this.reconnect();
    }
  }

  /** Registers again: ends this session; the loop reconnects (same manager first). */
  reconnect(): void {
    this.sameManager = true;
    this.drop();
  }

  /** Ends the current session so the loop reconnects (to the next manager). */
  private drop(): void {
    this.sessionId = undefined;
    this.client?.close();
    this.client = undefined;
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const picked = this.connection.pick();
      if (!picked) {
        await delay(NO_MANAGER_MS, undefined, { signal: this.stopping.signal }).catch(() => undefined);
        continue;
      }
      try {
        await this.connect(picked.target, picked.addr);
      } catch (err) {
        this.d.log.info({ err, manager: picked.addr }, 'session to manager ended');
      }
      this.sessionId = undefined;
      this.current = undefined;
      this.client?.close();
      this.client = undefined;
      if (this.stopped) break;
      const sameManager = this.sameManager;
      this.sameManager = false;
      await this.connection.failed({ sameManager, signal: this.stopping.signal });
    }
  }

  /** One session; resolves or rejects when it ends. */
  private async connect(target: ManagerEndpoints, addr: string): Promise<void> {
    const client = this.connection.client(target, addr, { 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
    this.client = client;
    const stream = client.stream('Session', {
      description: this.d.description(),
      addr: this.d.addr,
      epoch: nextEpoch(),
    });
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('session closed by manager')));
      this.wake = () => resolve();
    });
    ended.catch(() => undefined);
    const first = await Promise.race([
      new Promise<SessionMessage>((resolve) => stream.once('data', resolve)),
      ended.then(() => {
        throw new Error('session ended');
      }),
      sleep(FIRST_MESSAGE_TIMEOUT_MS).then(() => {
        throw new Error('no session message from manager');
      }),
    ]);
    let period = first.heartbeatPeriodMs;
    const onMessage = (m: SessionMessage) => {
      this.sessionId = m.sessionId;
      period = m.heartbeatPeriodMs;
      if (m.managers.length) this.d.onManagers(m.managers);
      this.d.onSession?.(m);
    };
    onMessage(first);
    stream.on('data', onMessage);
    this.current = addr;
    // Registered: the next failure waits the shortest delay again (swarmkit's agent resets its backoff here).
    this.connection.succeeded();
    this.d.log.info({ manager: addr, session: first.sessionId }, 'session established');

    const assignments = client.stream('Assignments', { sessionId: first.sessionId });
    // The node's whole set, kept from the stream's complete first message and its increments.
    const assigned = new Map<string, Task>();
    const files = { secrets: new Map<string, AssignedFile>(), configs: new Map<string, AssignedFile>() };
    assignments.on('data', (m: AssignmentsMessage) => {
      if (m.type !== 'incremental') {
        assigned.clear();
        files.secrets.clear();
        files.configs.clear();
      }
      for (const id of m.removes ?? []) assigned.delete(id);
      for (const t of m.tasks) assigned.set(t.ID, t);
      for (const f of m.secrets ?? []) files.secrets.set(f.ID, f);
      for (const f of m.configs ?? []) files.configs.set(f.ID, f);
      this.lastTasks = [...assigned.values()];
      this.lastFiles = { secrets: [...files.secrets.values()], configs: [...files.configs.values()] };
      const changes = m.type === 'incremental' ? { tasks: m.tasks, removes: m.removes ?? [] } : undefined;
      for (const fn of this.assignmentListeners) {
        try {
          fn(this.lastTasks, this.lastFiles, changes);
        } catch (err) {
          this.d.log.error({ err }, 'assignment listener threw');
        }
      }
    });
    const assignmentsEnded = new Promise<never>((_, reject) => {
      assignments.on('error', reject);
      assignments.on('end', () => reject(new Error('assignments closed')));
    });
    assignmentsEnded.catch(() => undefined);

    for (const w of this.connectedWaiters.splice(0)) w();

    // Heartbeats: one now, then one per period the manager returns.
    const heartbeats = (async () => {
      for (;;) {
        if (this.stopped || this.client !== client) return;
        const r = await client.call('Heartbeat', { sessionId: this.sessionId ?? '' }, RPC_TIMEOUT_MS);
        period = r.periodMs || period;
        const jitter = (Math.random() - 0.5) * Math.min(1000, period * 0.2);
        await sleep(Math.max(50, period + jitter));
      }
    })();
    try {
      await Promise.race([ended, assignmentsEnded, heartbeats]);
    } finally {
      stream.cancel();
      assignments.cancel();
    }
  }
}

let lastEpoch = 0;
/**
 * A registration attempt's epoch: the time, strictly increasing within this process (and, by
 * the clock, across its restarts), so the manager can tell the attempt the agent lives in from
 * one it abandoned.
 */
function nextEpoch(): number {
  lastEpoch = Math.max(lastEpoch + 1, Date.now());
  return lastEpoch;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
