import type { Cluster, Node, Service, Task, TaskSpec } from '../../cluster/types.js';
import { RUNNING, rank, status } from '../../cluster/task-state.js';
import { newSwarmId } from '../../util/ids.js';
import type { StoreEvent } from '../store/store.js';
import { nodeMatches, parseConstraints } from '../scheduler/constraint.js';

/**
 * Task facts every leader loop shares: how tasks are made, which state they are in, and the
 * one rule of the state machine (observed state only moves forward; managers own
 * DesiredState, agents own Status past ASSIGNED).
 */

export function isReplicated(s: Service): boolean {
  return !!s.Spec.Mode?.Replicated || (!s.Spec.Mode?.Global && !s.Spec.Mode?.ReplicatedJob && !s.Spec.Mode?.GlobalJob);
}
export function isGlobal(s: Service): boolean {
  return !!s.Spec.Mode?.Global || !!s.Spec.Mode?.GlobalJob;
}
export function isJob(s: Service): boolean {
  return !!s.Spec.Mode?.ReplicatedJob || !!s.Spec.Mode?.GlobalJob;
}
export function replicasOf(s: Service): number {
  return s.Spec.Mode?.Replicated?.Replicas ?? 1;
}

/**
 * An agent reporting progress short of RUNNING (ACCEPTED … STARTING) on a task still wanted
 * running: no orchestration or reaping decision depends on it, and at scale these are most
 * of the task events, so loops skip them instead of running a pass over every task.
 */
export function isAgentProgress(e: StoreEvent): boolean {
  if (e.kind !== 'tasks' || e.action !== 'update') return false;
  const t = e.object as Task;
  const r = rank(t.Status.State);
  return r >= rank('accepted') && r < RUNNING && rank(t.DesiredState) <= RUNNING;
}

/**
 * Whether the allocator has anything to give a service's tasks: addresses on its networks
 * (ingress too, when it publishes ports) or the service's endpoint (allocator.ts).
 */
export function needsAllocation(service: Service): boolean {
  const t = service.Spec.TaskTemplate;
  return !!(t.Networks?.length || service.Spec.Networks?.length || service.Spec.EndpointSpec?.Ports?.length);
}

/**
 * A task as the orchestrators create it (swarmkit orchestrator.NewTask): NEW, desired RUNNING.
 * One the allocator has nothing for starts PENDING, as the allocator would have left it at
 * once: at scale that saves a write per task.
 */
export function newTask(service: Service, slot: number | undefined, nodeId?: string): Task {
  const now = new Date().toISOString();
  const t: Task = {
    ID: newSwarmId(),
    Version: { Index: 0 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: taskSpecOf(service.Spec.TaskTemplate),
    ServiceID: service.ID,
    ServiceAnnotations: {
      Name: service.Spec.Name,
      ...(service.Spec.Labels ? { Labels: { ...service.Spec.Labels } } : {}),
    },
    Status: needsAllocation(service) ? status('new', 'created') : status('pending', 'pending task scheduling'),
    DesiredState: 'running',
    ...(service.SpecVersion ? { SpecVersion: { ...service.SpecVersion } } : {}),
  };
  if (slot !== undefined) t.Slot = slot;
  if (nodeId) t.NodeID = nodeId;
  if (service.JobStatus) {
    t.JobIteration = { ...service.JobStatus.JobIteration };
    t.DesiredState = 'complete';
  }
  return t;
}

/**
 * A task's spec from its service's template, without the registry credentials: those stay on
 * the service alone (sealed) and the dispatcher hands them to the task's node with the task.
 */
function taskSpecOf(template: TaskSpec): TaskSpec {
  if (template.ContainerSpec?.PullOptions) return structuredClone(withoutPullOptions(template));
  // A frozen template (the store cache's) is shared as it is: nothing changes a task's spec in
  // place, and at 100,000 tasks a copy each was a tenth of the orchestrator's time.
  return Object.isFrozen(template) ? template : structuredClone(template);
}

/** A template as its tasks carry it (taskSpecOf): credentials alone never make a task dirty (swarmkit IsTaskDirty). */
function withoutPullOptions(template: TaskSpec): TaskSpec {
  if (!template.ContainerSpec?.PullOptions) return template;
  const ContainerSpec = { ...template.ContainerSpec };
  delete ContainerSpec.PullOptions;
  return { ...template, ContainerSpec };
}

/**
 * A task needs replacing only when what it runs changed (swarmkit IsTaskDirty): a change of
 * placement constraints alone leaves tasks whose node still meets them where they are.
 */
export function isTaskDirty(service: Service, t: Task, node?: Node): boolean {
  if (service.SpecVersion && t.SpecVersion && service.SpecVersion.Index === t.SpecVersion.Index) return false;
  const { Placement: wantPlacement, ...want } = withoutPullOptions(service.Spec.TaskTemplate);
  const { Placement: hasPlacement, ...has } = t.Spec;
  if (JSON.stringify(canonicalSpec(want)) !== JSON.stringify(canonicalSpec(has))) return true;
  if (JSON.stringify(canonicalSpec(wantPlacement ?? {})) === JSON.stringify(canonicalSpec(hasPlacement ?? {})))
    return false;
  const onlyConstraints =
    JSON.stringify(canonicalSpec({ ...(wantPlacement ?? {}), Constraints: undefined })) ===
    JSON.stringify(canonicalSpec({ ...(hasPlacement ?? {}), Constraints: undefined }));
  if (!onlyConstraints || !node) return true;
  try {
    return !nodeMatches(parseConstraints(wantPlacement?.Constraints ?? []), node);
  } catch {
    return true;
  }
}

function canonicalSpec(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonicalSpec);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || x === null) continue;
      out[k] = canonicalSpec(x);
    }
    return out;
  }
  return v;
}

/** Nodes that can no longer hold tasks: gone, DOWN or drained (swarmkit orchestrator.InvalidNode). */
export function invalidNode(n: Node | undefined): boolean {
  return !n || n.Status.State === 'down' || n.Spec.Availability === 'drain';
}

/** Task history kept per slot (cluster setting; default 5; negative keeps everything). */
export function historyLimit(cluster: Cluster | undefined): number {
  return cluster?.Spec.Orchestration?.TaskHistoryRetentionLimit ?? 5;
}

export const DEFAULT_RESTART_DELAY_NS = 5e9;

/** Tasks of one service, grouped the way Swarm groups them: by slot, or by node for global services. */
export function slotKey(service: Service, t: Task): string {
  return isGlobal(service) ? `n:${t.NodeID ?? ''}` : `s:${t.Slot ?? 0}`;
}
