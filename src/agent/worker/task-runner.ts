import type { Task, TaskState, TaskStatus } from '../../cluster/types.js';
import { taskStateRank as rank } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { TaskContainer, TaskExecutor } from '../executor/executor.js';
import type { TaskFile } from '../executor/task-files.js';

export interface RunnerContext {
  executor: TaskExecutor;
  nodeId: string;
  /** Queues the status for the managers; never waits for them (the worker sends in order). */
  report(taskId: string, status: TaskStatus): void;
  log: Logger;
  /** The task's secret and config files; throws when one did not come with the assignments. */
  files?(task: Task): TaskFile[];
  /** How long a task on a service's networks keeps running after it left the load balancers; default LB_DRAIN_MS. */
  drainMs?: number;
}

/**
 * Every node follows the network view within 0.5 s on a quiet machine (bench/mesh-ready.ts);
 * Docker waits 2 s for its gossip to converge after it takes a task out of its load balancers,
 * which also covers a loaded machine and lets requests already sent to the task finish.
 */
export const LB_DRAIN_MS = 2000;

/**
 * One assigned task on this node, driven one step at a time towards its desired state
 * exactly as swarmkit's exec.Do does: ASSIGNED → ACCEPTED → PREPARING (pull, create) →
 * READY → STARTING → RUNNING → COMPLETE / FAILED, SHUTDOWN when the managers want it down.
 * Pause states (up to READY) advance only while below the desired state; a fatal error
 * before STARTING rejects the task, after it fails it. Every change is reported upwards.
 */
export class TaskRunner {
  private status: TaskStatus;
  private container?: TaskContainer;
  private running?: Promise<void>;
  private again = false;
  private unwatch?: () => void;
  private closed = false;
  /** This runner started the container: a stopped one in STARTING has exited, not yet begun. */
  private startIssued = false;
  /** The container has a health check: it ends STARTING only when healthy. */
  private healthChecked = false;
  /** The container was stopped for being unhealthy: the cause of its exit. */
  private unhealthy = false;

  constructor(
    private task: Task,
    private readonly ctx: RunnerContext,
  ) {
    this.status = task.Status;
    this.container = ctx.executor.find(task.ID);
  }

  get id(): string {
    return this.task.ID;
  }

  get state(): TaskState {
    return this.status.State;
  }

  /** A newer copy of the task from the managers (desired state may have changed). */
  update(task: Task): void {
    // The session hands over the node's whole set on every message; only a changed copy matters.
    if (task === this.task) return;
    this.task = task;
    // The manager's copy never goes back; if it is ahead (e.g. after a restart of this agent), take it.
    if (rank(task.Status.State) > rank(this.status.State)) this.status = task.Status;
    // Behind: a report of ours was lost on the way (a session that ended, a write that failed).
    // Say it again, as swarmkit's worker reports every task's status to each new session.
    else if (rank(task.Status.State) < rank(this.status.State)) this.ctx.report(task.ID, this.status);
    this.kick();
  }

  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          // Each state is reported as it is reached, without waiting for the managers: the
          // next step (a container start, say) does not wait for a round trip.
          while (!this.closed && (await this.step())) this.ctx.report(this.task.ID, this.status);
        } catch (e) {
          this.ctx.log.warn({ err: e, task: this.task.ID }, 'task step failed; will retry');
          setTimeout(() => this.kick(), 1000).unref();
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Stops watching (the container stays, as when the daemon stops). */
  detach(): void {
    this.closed = true;
    this.unwatch?.();
  }

  /** The task is no longer assigned here: its container goes. */
  async close(): Promise<void> {
    this.detach();
    await this.running;
    const c = this.ctx.executor.find(this.task.ID);
    if (!c) return;
    if (c.running) {
      await this.drain(this.task);
      await this.ctx.executor.stop(c.containerId, this.task.Spec.ContainerSpec?.StopGracePeriod);
    }
    await this.ctx.executor.remove(c.containerId);
  }

  /**
   * Drain first, then stop: a task the managers want down has already left the network view
   * (VIPs, DNS, the routing mesh of every node drop it within LB_DRAIN_MS), so it keeps
   * answering what was sent to it meanwhile, and only then gets its stop signal.
   */
  private async drain(t: Task): Promise<void> {
    if (!t.ServiceID || !(t.NetworksAttachments?.length || t.Endpoint?.Ports?.length)) return;
    await new Promise((r) => setTimeout(r, this.ctx.drainMs ?? LB_DRAIN_MS));
  }

  private transition(state: TaskState, message: string, extra: Partial<TaskStatus> = {}): true {
    // Err only when this move sets one. Left out rather than deleted: a deleted property puts the
    // object in V8's slow dictionary mode, and this runs four times per task.
    const { Err: _previousErr, ...rest } = this.status;
    this.status = {
      ...rest,
      ...extra,
      State: state,
      Message: message,
      Timestamp: new Date().toISOString(),
    };
    if (this.container && rank(state) >= rank('starting')) {
      this.status.ContainerStatus = {
        ContainerID: this.container.containerId,
        ...(this.container.pid ? { PID: this.container.pid } : {}),
        ...(extra.ContainerStatus ?? {}),
      };
    }
    return true;
  }

  private fatal(err: unknown, exitCode?: number): true {
    const state: TaskState = rank(this.status.State) < rank('starting') ? 'rejected' : 'failed';
    this.status = {
      ...this.status,
      State: state,
      Err: (err as Error).message ?? String(err),
      Timestamp: new Date().toISOString(),
    };
    if (this.container)
      this.status.ContainerStatus = {
        ContainerID: this.container.containerId,
        ...(this.container.pid ? { PID: this.container.pid } : {}),
        ...(exitCode !== undefined ? { ExitCode: exitCode } : {}),
      };
    return true;
  }

  /** One transition; false when there is nothing to do until something changes. */
  private async step(): Promise<boolean> {
    const t = this.task;
    const s = this.status.State;
    if (rank(t.DesiredState) >= rank('shutdown')) {
      if (rank(s) >= rank('complete')) return false;
      this.unwatch?.();
      const c = this.ctx.executor.find(t.ID);
      if (c?.running) {
        await this.drain(t);
        await this.ctx.executor.stop(c.containerId, t.Spec.ContainerSpec?.StopGracePeriod);
      }
      return this.transition('shutdown', 'shutdown');
    }
    if (rank(s) > rank(t.DesiredState)) return false;
    switch (s) {
      case 'preparing':
        try {
          this.container = await this.ctx.executor.prepare(t, this.ctx.nodeId, this.ctx.files?.(t));
        } catch (e) {
          return this.fatal(e);
        }
        return this.transition('ready', 'prepared');
      case 'starting':
        return this.checkStarting();
      case 'running':
        return this.checkRunning();
    }
    if (rank(s) >= rank(t.DesiredState)) return false;
    switch (s) {
      case 'new':
      case 'pending':
      case 'assigned':
        return this.transition('accepted', 'accepted');
      case 'accepted':
        return this.transition('preparing', 'preparing');
      case 'ready':
        return this.transition('starting', 'starting');
    }
    return false;
  }

  /** Kicks the runner when the container exits, is removed or changes health. */
  private watchExit(): void {
    this.unwatch?.();
    if (!this.container) return;
    const id = this.container.containerId;
    const offExit = this.ctx.executor.onExit(id, () => this.kick());
    const offHealth = this.ctx.executor.onHealth?.(id, () => this.kick());
    this.unwatch = () => {
      offExit();
      offHealth?.();
    };
  }

  /**
   * STARTING: starts the container; one with a health check (its own or its image's) stays
   * STARTING until healthy, as moby's controller.Start waits, so `service ps`, replica counts
   * and rolling updates see it as not yet running. Unhealthy first stops it; the exit fails the task.
   */
  private async checkStarting(): Promise<boolean> {
    const t = this.task;
    // Before the start the prepared container is known; after it, its state is looked up afresh.
    let c = (this.startIssued ? undefined : this.container) ?? this.ctx.executor.find(t.ID);
    if (!c) return this.fatal(new Error(`No such container: ${this.container?.containerId ?? t.ID}`));
    if (!c.running && !this.startIssued) {
      try {
        this.startIssued = true;
        c = await this.ctx.executor.start(c.containerId);
      } catch (e) {
        return this.fatal(e);
      }
    }
    this.container = { ...c, pid: c.pid ?? this.container?.pid };
    if (!this.unwatch) this.watchExit();
    if (c.health) this.healthChecked = true;
    if (c.health === 'unhealthy') c = await this.stopUnhealthy(c);
    if (c.running && c.health === 'starting') return false;
    // Without a health check the start alone makes it RUNNING (an exit is then seen there).
    if (c.running || c.exitCode === 0 || !this.healthChecked)
      return this.transition('running', 'started', hostPortStatus(t));
    return this.exited(c);
  }

  /** RUNNING: waits for the container to end (also when adopted after a restart or reconnect); unhealthy stops it. */
  private async checkRunning(): Promise<boolean> {
    let c = this.ctx.executor.find(this.task.ID);
    if (!c) {
      this.unwatch?.();
      return this.fatal(new Error(`No such container: ${this.container?.containerId ?? this.task.ID}`), undefined);
    }
    this.container = { ...c, pid: c.pid ?? this.container?.pid };
    if (c.running && !this.unwatch) this.watchExit();
    if (c.health === 'unhealthy') c = await this.stopUnhealthy(c);
    if (c.running) return false;
    return this.exited(c);
  }

  /** moby's controller: an unhealthy container is shut down, and its exit carries the cause. */
  private async stopUnhealthy(c: TaskContainer): Promise<TaskContainer> {
    this.unhealthy = true;
    await this.ctx.executor.stop(c.containerId, this.task.Spec.ContainerSpec?.StopGracePeriod);
    return this.ctx.executor.find(this.task.ID) ?? { ...c, running: false };
  }

  private exited(c: TaskContainer): true {
    this.unwatch?.();
    if (c.exitCode === 0) return this.transition('complete', 'finished', { ContainerStatus: { ExitCode: 0 } });
    return this.fatal(new Error(exitMessage(c.exitCode, this.unhealthy)), c.exitCode);
  }
}

/** moby's exitError text; an unhealthy container's exit names the cause (ErrContainerUnhealthy). */
export function exitMessage(code: number | undefined, unhealthy: boolean): string {
  return `task: non-zero exit (${code})${unhealthy ? ': dockerexec: unhealthy container' : ''}`;
}

/** Host-mode published ports are the node's: reported so `service ps` shows them (swarmkit PortStatus). */
function hostPortStatus(t: Task): Partial<TaskStatus> {
  const ports = (t.Endpoint?.Ports ?? []).filter((p) => p.PublishMode === 'host');
  return ports.length ? { PortStatus: { Ports: ports } } : {};
}
