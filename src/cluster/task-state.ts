import type { Task, TaskState, TaskStatus } from './types.js';
import { taskStateRank } from './types.js';

/**
 * The task state machine's one rule, shared by every stage that moves tasks: observed state
 * only moves forward; managers own DesiredState, agents own Status past ASSIGNED.
 */

export const rank = taskStateRank;
export const RUNNING = rank('running');

/** Status moved past RUNNING: the task will never run again. */
export function isTerminal(t: Task): boolean {
  return rank(t.Status.State) > RUNNING;
}

/** Desired to run (or to get ready to run, during a restart delay; or, for jobs, to run to completion). */
export function isDesiredRunnable(t: Task): boolean {
  return rank(t.DesiredState) <= RUNNING || (t.DesiredState === 'complete' && !!t.JobIteration);
}

export function status(state: TaskState, message: string, extra: Partial<TaskStatus> = {}): TaskStatus {
  return { Timestamp: new Date().toISOString(), State: state, Message: message, ...extra };
}

/** A copy with DesiredState raised (never lowered) and UpdatedAt bumped; undefined when nothing changes. */
export function withDesired(t: Task, desired: TaskState): Task | undefined {
  if (rank(desired) <= rank(t.DesiredState)) return undefined;
  return { ...t, DesiredState: desired, UpdatedAt: new Date().toISOString() };
}

/**
 * Applies an observed status to a task: only forward moves are taken (the dispatcher drops
 * any status lower than the stored one, swarmkit dispatcher.go). Undefined when stale.
 */
export function withStatus(t: Task, s: TaskStatus): Task | undefined {
  if (rank(s.State) < rank(t.Status.State)) return undefined;
  if (
    rank(s.State) === rank(t.Status.State) &&
    s.Message === t.Status.Message &&
    s.Err === t.Status.Err &&
    JSON.stringify(s.ContainerStatus) === JSON.stringify(t.Status.ContainerStatus)
  )
    return undefined;
  return { ...t, Status: s, UpdatedAt: new Date().toISOString() };
}
