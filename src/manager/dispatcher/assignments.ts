import type * as grpc from '@grpc/grpc-js';
import { isNetworkAttachment } from '../networks/attachments.js';
import type { Task } from '../../cluster/types.js';
import { taskStateRank } from '../../cluster/types.js';
import type { EtcdStore } from '../store/etcd-store.js';
import type { StoreEvent } from '../store/store.js';
import type { AssignmentsMessage, AssignmentsRequest } from '../../cluster/rpc.js';
import { assignedFiles } from './task-files.js';
import { withRegistryCredentials } from './task-credentials.js';

const ASSIGNMENT_DEBOUNCE_MS = 100;

/**
 * Tasks an agent must know about: every task assigned to it, until the task is deleted (as
 * swarmkit's dispatcher: only a deletion removes an assignment). An ended task stays, so its
 * node keeps its exited container (and log, for `docker service logs`) while the task is in
 * the service's history; the task reaper's deletion removes both.
 */
export function assignedTasks(tasks: Task[], nodeId: string): Task[] {
  return tasks.filter((t) => t.NodeID === nodeId && isAssignment(t));
}

/** Whether its node's agent must know the task (assignedTasks without the node). */
function isAssignment(t: Task): boolean {
  // Network attachments of standalone containers are not the executor's: the network agent wires them.
  return !isNetworkAttachment(t) && taskStateRank(t.Status.State) >= taskStateRank('assigned');
}

/** A task its agent may still start: only these get their secrets and configs sent along. */
function mayRun(t: Task): boolean {
  const running = taskStateRank('running');
  return taskStateRank(t.DesiredState) <= running && taskStateRank(t.Status.State) <= running;
}

/**
 * Whether a task's new version changes what its agent is told: a new assignment, a new
 * desired state, or the end of one. A status the agent reported itself does not: resending
 * the node's whole task list for each of those was most of the manager's serialization work.
 */
function changesAssignment(prev: Task | undefined, next: Task): boolean {
  return (
    !prev ||
    prev.NodeID !== next.NodeID ||
    prev.DesiredState !== next.DesiredState ||
    isAssignment(prev) !== isAssignment(next)
  );
}

/** The dispatcher's Assignments streams, fed by one index of tasks by node. */
export class AssignmentStreams {
  private byNode?: Map<string, Map<string, Task>>;
  private unwatchTasks?: () => void;
  /** Node ID → its assignment streams, each told which of the node's tasks changed. */
  private readonly streams = new Map<string, Set<(taskIds: Iterable<string>) => void>>();

  constructor(
    private readonly store: EtcdStore,
    /** The swarm's data-encryption key now (it changes with a rotation): opens the secrets sent with assignments. */
    private readonly dek: () => Buffer | undefined,
    /** The dispatcher's open streams, ended on close. */
    private readonly closers: Set<() => void>,
  ) {}

  /** The task `taskId` if it is assigned to `nodeId` (the node's own index: no store read). */
  nodeTask(nodeId: string, taskId: string): Task | undefined {
    return this.taskIndex().get(nodeId)?.get(taskId);
  }

  close(): void {
    this.unwatchTasks?.();
    this.unwatchTasks = undefined;
    this.byNode = undefined;
  }

  /** Streams node `nodeId`'s assignments: the complete set, then what changes. */
  open(call: grpc.ServerWritableStream<AssignmentsRequest, AssignmentsMessage>, nodeId: string): void {
    const byNode = this.taskIndex();
    // What the agent was last told, by task ID: after the complete first message only the
    // difference goes out. Resending a node's whole list on every change cost the manager
    // (tasks per node)² serializations while a big service was being placed.
    const told = new Map<string, Task>();
    /** Tasks of this node changed since the last message: a message costs what changed. */
    const pending = new Set<string>();
    const send = (complete: boolean) => {
      const mine = byNode.get(nodeId);
      const tasks: Task[] = [];
      const removes: string[] = [];
      if (complete) {
        for (const t of assignedTasks([...(mine?.values() ?? [])], nodeId)) tasks.push(t);
      } else {
        for (const tid of pending) {
          const t = mine?.get(tid);
          const was = told.get(tid);
          if (t && t.NodeID === nodeId && isAssignment(t)) {
            if (!was || changesAssignment(was, t)) tasks.push(t);
          } else if (was) removes.push(tid);
        }
      }
      pending.clear();
      for (const tid of removes) told.delete(tid);
      for (const t of tasks) told.set(t.ID, t);
      if (!complete && !tasks.length && !removes.length) return;
      call.write({
        type: complete ? 'complete' : 'incremental',
        tasks: withRegistryCredentials(this.store, this.dek(), tasks, mayRun),
        ...(removes.length ? { removes } : {}),
        ...assignedFiles(this.store, this.dek(), tasks.filter(mayRun)),
      });
    };
    send(true);
    let timer: NodeJS.Timeout | undefined;
    let lastSent = Date.now();
    // The first change after a quiet spell goes out at once (changes of the same turn together);
    // during a burst, a message at most every ASSIGNMENT_DEBOUNCE_MS.
    const changed = (taskIds: Iterable<string>) => {
      for (const tid of taskIds) pending.add(tid);
      if (!timer)
        timer = setTimeout(
          () => {
            timer = undefined;
            lastSent = Date.now();
            send(false);
          },
          Math.max(0, lastSent + ASSIGNMENT_DEBOUNCE_MS - Date.now()),
        );
    };
    let streams = this.streams.get(nodeId);
    if (!streams) this.streams.set(nodeId, (streams = new Set()));
    streams.add(changed);
    const end = () => {
      streams.delete(changed);
      if (!streams.size) this.streams.delete(nodeId);
      clearTimeout(timer);
      this.closers.delete(end);
      call.end();
    };
    this.closers.add(end);
    call.on('cancelled', end);
    call.on('error', end);
  }

  /**
   * Tasks by node, kept from one store watch: an assignments stream reads only its node's
   * tasks, instead of every stream copying the whole task list on every change (which made
   * the manager's time grow with nodes × tasks).
   */
  private taskIndex(): Map<string, Map<string, Task>> {
    if (this.byNode) return this.byNode;
    const byNode = (this.byNode = new Map());
    const nodeOf = new Map<string, string>();
    const put = (t: Task) => {
      const prev = nodeOf.get(t.ID);
      if (prev !== undefined && prev !== t.NodeID) byNode.get(prev)?.delete(t.ID);
      if (!t.NodeID) {
        nodeOf.delete(t.ID);
        return;
      }
      nodeOf.set(t.ID, t.NodeID);
      let m = byNode.get(t.NodeID);
      if (!m) byNode.set(t.NodeID, (m = new Map()));
      m.set(t.ID, t);
    };
    this.unwatchTasks = this.store.watch((evs: StoreEvent[]) => {
      /** Node ID → its tasks whose assignment changed in these events. */
      const touched = new Map<string, string[]>();
      const touch = (nodeId: string, taskId: string) => {
        let l = touched.get(nodeId);
        if (!l) touched.set(nodeId, (l = []));
        l.push(taskId);
      };
      for (const e of evs) {
        if (e.kind !== 'tasks') continue;
        const t = e.object as Task;
        const prev = nodeOf.get(t.ID);
        if (e.action === 'delete') {
          if (prev) {
            byNode.get(prev)?.delete(t.ID);
            touch(prev, t.ID);
          }
          nodeOf.delete(t.ID);
        } else {
          const before = prev ? byNode.get(prev)?.get(t.ID) : undefined;
          put(t);
          if (changesAssignment(before, t)) {
            if (prev) touch(prev, t.ID);
            if (t.NodeID && t.NodeID !== prev) touch(t.NodeID, t.ID);
          }
        }
      }
      for (const [n, ids] of touched) for (const fn of this.streams.get(n) ?? []) fn(ids);
    });
    for (const t of this.store.view('tasks')) put(t);
    return byNode;
  }
}
