import type { Node, Service, Task } from '../../cluster/types.js';
import { isDesiredRunnable, isTerminal } from '../../cluster/task-state.js';

/** A published port used on a node in host mode: `tcp/8080`. */
export type HostPort = string;

/** What the scheduler knows about one node: its tasks and what they take. */
export class NodeInfo {
  /** Active tasks placed here (desired to run, not yet ended), by ID. */
  readonly tasks = new Map<string, Task>();
  readonly countByService = new Map<string, number>();
  readonly usedHostPorts = new Set<HostPort>();
  availableCpu: number;
  availableMemory: number;
  /** Recent failures of tasks per service (timestamps, ms): faulty nodes sort last. */
  readonly failures = new Map<string, number[]>();

  constructor(readonly node: Node) {
    this.availableCpu = node.Description?.Resources?.NanoCPUs ?? 0;
    this.availableMemory = node.Description?.Resources?.MemoryBytes ?? 0;
  }

  get id(): string {
    return this.node.ID;
  }

  addTask(t: Task, service: Service | undefined): boolean {
    if (this.tasks.has(t.ID)) return false;
    this.tasks.set(t.ID, t);
    this.countByService.set(t.ServiceID, (this.countByService.get(t.ServiceID) ?? 0) + 1);
    const r = t.Spec.Resources?.Reservations;
    this.availableCpu -= r?.NanoCPUs ?? 0;
    this.availableMemory -= r?.MemoryBytes ?? 0;
    for (const p of hostPorts(service)) this.usedHostPorts.add(p);
    return true;
  }

  /** Undoes addTask (the task ended, moved or was deleted). */
  removeTask(taskId: string, services: Map<string, Service>): boolean {
    const had = this.tasks.get(taskId);
    if (!had) return false;
    this.tasks.delete(taskId);
    const n = (this.countByService.get(had.ServiceID) ?? 1) - 1;
    if (n > 0) this.countByService.set(had.ServiceID, n);
    else this.countByService.delete(had.ServiceID);
    const r = had.Spec.Resources?.Reservations;
    this.availableCpu += r?.NanoCPUs ?? 0;
    this.availableMemory += r?.MemoryBytes ?? 0;
    if (hostPorts(services.get(had.ServiceID)).length) {
      // Another task of the node may hold the same port: recount from what is left.
      this.usedHostPorts.clear();
      for (const o of this.tasks.values())
        for (const p of hostPorts(services.get(o.ServiceID))) this.usedHostPorts.add(p);
    }
    return true;
  }

  serviceCount(serviceId: string): number {
    return this.countByService.get(serviceId) ?? 0;
  }

  recentFailures(serviceId: string, now: number): number {
    const f = this.failures.get(serviceId);
    if (!f) return 0;
    while (f.length && f[0] < now - FAILURE_WINDOW_MS) f.shift();
    return f.length;
  }
}

export const FAILURE_WINDOW_MS = 5 * 60_000;
export const MAX_FAILURES = 5;

/**
 * A task counts against its node while it is meant to run and has not ended, once placed: a
 * global task waiting in PENDING already names its node but must not collide with itself.
 */
export function occupiesNode(t: Task): boolean {
  return (
    !!t.NodeID && t.Status.State !== 'new' && t.Status.State !== 'pending' && isDesiredRunnable(t) && !isTerminal(t)
  );
}

/** The host-mode published ports a service's tasks take on their node. */
export function hostPorts(service: Service | undefined): HostPort[] {
  const ports = service?.Endpoint?.Ports ?? service?.Spec.EndpointSpec?.Ports ?? [];
  return ports
    .filter((p) => p.PublishMode === 'host' && p.PublishedPort)
    .map((p) => `${p.Protocol ?? 'tcp'}/${p.PublishedPort}`);
}

/** Builds NodeInfos for every node from the store's tasks. */
export function buildNodeInfos(nodes: Node[], tasks: Task[], services: Map<string, Service>): Map<string, NodeInfo> {
  const infos = new Map<string, NodeInfo>();
  for (const n of nodes) infos.set(n.ID, new NodeInfo(n));
  for (const t of tasks) {
    if (!occupiesNode(t)) continue;
    infos.get(t.NodeID!)?.addTask(t, services.get(t.ServiceID));
  }
  return infos;
}
