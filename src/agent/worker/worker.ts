import type { Task, TaskStatus } from '../../cluster/types.js';
import { taskStateRank as rank } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { AgentLink, AssignedFiles, AssignmentChanges } from '../link.js';
import { taskFiles } from '../executor/task-files.js';
import type { TaskExecutor } from '../executor/executor.js';
import { TaskRunner } from './task-runner.js';
import { SerialQueue } from '../../util/serial-queue.js';

/**
 * The worker (swarmkit agent/worker.go): turns the set of tasks assigned to this node into
 * running containers and keeps the two in step. Every assignment message is the complete
 * set, so each one reconciles: new tasks get a runner, changed ones are updated, tasks no
 * longer assigned lose their container, and containers of tasks nobody assigned (left from
 * before a restart or a reconnect) are removed. One runner and one container per task ID:
 * never duplicates.
 */
/** How often assignments look for containers no runner drives, after the first time. */
const ORPHAN_RESCAN_MS = 30_000;
/** Least time between two status calls of a busy worker. */
const REPORT_INTERVAL_MS = 100;

export class Worker {
  private readonly runners = new Map<string, TaskRunner>();
  /** Reconciling one set at a time keeps removals from racing creations. */
  private readonly assignments = new SerialQueue();
  private stopped = false;
  private membership?: NodeJS.Timeout;
  private lastNodeId?: string;
  /** Secrets and configs of the assigned tasks, as the last assignment sent them: memory only. */
  private files?: AssignedFiles;

  constructor(
    private readonly link: AgentLink,
    private readonly executor: TaskExecutor,
    private readonly nodeId: () => string | undefined,
    private readonly log: Logger,
  ) {}

  start(checkMs = 2000): void {
    this.link.onAssignments((tasks, files, changes) => this.enqueue(tasks, false, files, changes));
    // Leaving the swarm ends the session without a last assignment: this node then runs no tasks.
    this.lastNodeId = this.nodeId();
    this.membership = setInterval(() => {
      const id = this.nodeId();
      if (this.lastNodeId && !id) {
        this.log.info('left the swarm: removing task containers');
        this.enqueue([], true);
      }
      this.lastNodeId = id;
    }, checkMs);
    this.membership.unref();
  }

  private enqueue(tasks: Task[], leaving = false, files?: AssignedFiles, changes?: AssignmentChanges): void {
    if (this.stopped) return;
    this.log.debug({ tasks: tasks.length, changed: changes?.tasks.length }, 'assignments received');
    void this.assignments
      .run(() => this.assign(tasks, leaving, files, changes))
      .catch((err) => {
        this.inStep = false;
        this.log.error({ err }, 'assignment failed');
      });
  }

  /** Stops driving tasks; containers keep running (conmon holds them). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.membership);
    for (const r of this.runners.values()) r.detach();
    this.runners.clear();
  }

  /** What runs here now: task ID → observed state (tests and diagnostics). */
  states(): Map<string, string> {
    return new Map([...this.runners].map(([id, r]) => [id, r.state]));
  }

  /**
   * Reconciles the runners with the node's assignments: with `changes` (and the runners in step
   * with the previous set) only what changed is looked at, as swarmkit's worker.Update does.
   */
  async assign(tasks: Task[], leaving = false, files?: AssignedFiles, changes?: AssignmentChanges): Promise<void> {
    const nodeId = this.nodeId();
    if (!nodeId && !leaving) {
      this.inStep = false;
      return;
    }
    this.files = files;
    if (changes && this.inStep && !leaving) return this.applyChanges(changes, nodeId!);
    this.inStep = true;
    for (const t of tasks) {
      const r = this.runners.get(t.ID);
      if (r) {
        r.update(t);
        continue;
      }
      this.addRunner(t, nodeId!);
    }
    const gone: Promise<void>[] = [];
    const closing = new Set<string>();
    // Every task has its runner now: as many runners as tasks means none is left over.
    const ids = this.runners.size !== tasks.length || leaving ? new Set(tasks.map((t) => t.ID)) : undefined;
    for (const [id, r] of ids ? this.runners : []) {
      if (ids!.has(id)) continue;
      this.runners.delete(id);
      closing.add(id);
      gone.push(r.close().catch((err) => this.log.warn({ err, task: id }, 'removing task container failed')));
    }
    // Orphans (containers no runner drives) date from before this agent started, since a
    // runner removes its own container: the first set finds them, later ones only now and then
    // (listing every container on each message cost a busy node more than its tasks did).
    const scan = leaving || !this.orphansScannedAt || Date.now() - this.orphansScannedAt > ORPHAN_RESCAN_MS;
    if (scan) this.orphansScannedAt = Date.now();
    for (const c of scan ? this.executor.list() : []) {
      // A closing runner removes its own container; only containers nobody drives are orphans.
      if (this.runners.has(c.taskId) || closing.has(c.taskId)) continue;
      this.log.info({ task: c.taskId, container: c.containerId }, 'removing container of a task not assigned here');
      gone.push(
        (async () => {
          if (c.running) await this.executor.stop(c.containerId);
          await this.executor.remove(c.containerId);
        })().catch((err) => this.log.warn({ err, task: c.taskId }, 'removing orphan container failed')),
      );
    }
    await Promise.all(gone);
  }

  private async applyChanges(changes: AssignmentChanges, nodeId: string): Promise<void> {
    for (const t of changes.tasks) {
      const r = this.runners.get(t.ID);
      if (r) r.update(t);
      else this.addRunner(t, nodeId);
    }
    const gone: Promise<void>[] = [];
    for (const id of changes.removes) {
      const r = this.runners.get(id);
      if (!r) continue;
      this.runners.delete(id);
      gone.push(r.close().catch((err) => this.log.warn({ err, task: id }, 'removing task container failed')));
    }
    await Promise.all(gone);
  }

  private addRunner(t: Task, nodeId: string): void {
    const r = new TaskRunner(t, {
      executor: this.executor,
      nodeId,
      report: (id, s) => this.report(id, s),
      log: this.log,
      files: (task) => taskFiles(task, this.files),
    });
    this.runners.set(t.ID, r);
    r.kick();
  }

  /**
   * Statuses go out in the order they were reached, without holding up the runners: whatever
   * queued while one call was in flight goes in the next one (swarmkit's agent reports in the
   * background the same way), so many tasks moving at once cost a few round trips, not one each.
   */
  private report(taskId: string, status: TaskStatus): void {
    // Only a task's latest status goes (swarmkit's reporter keeps one per task): the states a
    // task passes through before the next call leaves cost nothing on the wire.
    this.reports.set(taskId, status);
    if (!this.sending)
      this.sending = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.sendReports());
  }

  private async sendReports(): Promise<void> {
    while (this.reports.size && !this.stopped) {
      // Back to back, a call at most every REPORT_INTERVAL_MS: tasks arriving a few at a time
      // then share calls (each one costs the manager a certificate lookup), and a task's
      // passing states collapse into its latest.
      // RUNNING and ends go at once: the network view (load balancers) and the orchestrator wait on them.
      const urgent = [...this.reports.values()].some((st) => rank(st.State) >= rank('running'));
      const wait = urgent ? 0 : this.lastReportAt + REPORT_INTERVAL_MS - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.lastReportAt = Date.now();
      const batch = [...this.reports].map(([taskId, status]) => ({ taskId, status }));
      this.reports = new Map();
      try {
        await this.link.reportStatus(batch);
      } catch (err) {
        // Kept for tasks still assigned here (as the runners used to retry); sent again shortly,
        // unless a newer status of the task came meanwhile.
        this.log.warn({ err }, 'status report failed; will retry');
        const newer = this.reports;
        this.reports = new Map(
          batch.filter((u) => this.runners.has(u.taskId) && !newer.has(u.taskId)).map((u) => [u.taskId, u.status]),
        );
        for (const [id, st] of newer) this.reports.set(id, st);
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
    this.sending = undefined;
  }

  private lastReportAt = 0;
  private orphansScannedAt = 0;
  /** The runners match the last set taken whole: increments can apply on top of it. */
  private inStep = false;
  /** Task ID → its latest status not yet sent, in the order tasks first reported. */
  private reports = new Map<string, TaskStatus>();
  private sending?: Promise<void>;
}
