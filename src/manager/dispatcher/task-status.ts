import type { TaskStatus } from '../../cluster/types.js';
import { taskStateRank } from '../../cluster/types.js';
import type { TaskStatusUpdate } from '../../cluster/rpc.js';
import type { EtcdStore } from '../store/etcd-store.js';
import { LeaderLost, VersionConflict } from '../store/store.js';
import type { Logger } from '../../util/log.js';

const STATUS_FLUSH_MS = 100;
const URGENT_FLUSH_MS = 10;
/**
 * An agent's progress short of RUNNING (ACCEPTED … STARTING) waits this long for the task's
 * next state: the states a task passes in quick succession then cost one write, not one each.
 */
const PROGRESS_HOLD_MS = 1000;
/** After a version conflict: time for the store's watch to catch up before retrying. */
const STATUS_RETRY_MS = 20;
/** After a failed write (etcd timed out or unreachable): a pause before the batch is tried again. */
const STATUS_FAILURE_RETRY_MS = 500;

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

/** The task statuses agents report, written to the store in batches. */
export class TaskStatusWriter {
  private statusQueue: QueuedStatus[] = [];
  private flushTimer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private lastFlushAt = 0;
  private flushDueAt = 0;
  private closed = false;

  constructor(
    private readonly store: EtcdStore,
    private readonly log: Logger,
  ) {}

  /** Queues one update of a node's task (checked to be the node's). */
  push(nodeId: string, u: TaskStatusUpdate): void {
    this.statusQueue.push({ nodeId, ...u, queuedAt: Date.now() });
  }

  /** Schedules the write of a report's updates (pushed before). */
  written(updates: TaskStatusUpdate[]): void {
    // The first status after a quiet spell is written at once; a burst at most every STATUS_FLUSH_MS.
    // RUNNING and ends are what load balancers and orchestrators wait for: at most URGENT_FLUSH_MS.
    const urgent = updates.some((u) => !isProgress(u.status));
    this.scheduleFlush(Math.max(0, this.lastFlushAt + (urgent ? URGENT_FLUSH_MS : STATUS_FLUSH_MS) - Date.now()));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.flushTimer);
  }

  /** The earliest due flush wins: a RUNNING status never waits behind held progress. */
  private scheduleFlush(delayMs: number): void {
    if (this.flushing || this.closed) return;
    const due = Date.now() + delayMs;
    if (this.flushTimer && this.flushDueAt <= due) return;
    clearTimeout(this.flushTimer);
    this.flushDueAt = due;
    this.flushTimer = setTimeout(
      () => void this.flush().catch((err: unknown) => this.log.warn({ err }, 'task status flush failed')),
      delayMs,
    );
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
    const { due, held } = this.due(queue);
    const changes = [];
    for (const { taskId, status } of due.values()) {
      // The cache's object, not a copy: the write is a new object with the new status.
      const t = this.store.viewOne('tasks', taskId);
      if (!t || taskStateRank(status.State) < taskStateRank(t.Status.State)) continue;
      if (status.State === t.Status.State && status.Timestamp === t.Status.Timestamp) continue;
      changes.push({ kind: 'tasks' as const, op: 'update' as const, object: { ...t, Status: status } });
    }
    let retryMs = 0;
    const t0 = performance.now();
    this.flushing = this.store.commit(changes).then(
      () => {
        this.log.debug({ statuses: changes.length, ms: Math.round(performance.now() - t0) }, 'task statuses written');
      },
      (e) => {
        const conflict = e instanceof VersionConflict;
        if (!conflict) this.log.warn({ err: e }, 'task status write failed; will retry');
        // Another manager leads now: its dispatcher gets the agents' reports from here on.
        if (this.closed || e instanceof LeaderLost) return;
        // A timed-out write may have landed: the retry skips statuses the cache already holds.
        this.statusQueue = [...due.values(), ...this.statusQueue];
        retryMs = conflict ? STATUS_RETRY_MS : STATUS_FAILURE_RETRY_MS;
      },
    );
    await this.flushing;
    this.flushing = undefined;
    // Statuses that came during the write go at once (or after a conflict's pause); held
    // progress when it is due.
    const arrived = this.statusQueue.length > 0;
    this.statusQueue.push(...held);
    if (arrived) this.scheduleFlush(retryMs);
    else if (held.length)
      this.scheduleFlush(
        Math.max(retryMs, held.reduce((m, u) => Math.min(m, u.queuedAt), Infinity) + PROGRESS_HOLD_MS - Date.now()),
      );
  }

  /** The latest status of each task, split into those to write now and progress still held. */
  private due(queue: QueuedStatus[]): { due: Map<string, QueuedStatus>; held: QueuedStatus[] } {
    const now = Date.now();
    const latest = new Map<string, QueuedStatus>();
    for (const u of queue) {
      const prev = latest.get(u.taskId);
      if (!prev || taskStateRank(u.status.State) >= taskStateRank(prev.status.State))
        latest.set(u.taskId, prev ? { ...u, queuedAt: Math.min(u.queuedAt, prev.queuedAt) } : u);
    }
    const held: QueuedStatus[] = [];
    for (const u of latest.values()) {
      if (isProgress(u.status) && now - u.queuedAt < PROGRESS_HOLD_MS) {
        held.push(u);
        latest.delete(u.taskId);
      }
    }
    return { due: latest, held };
  }
}
