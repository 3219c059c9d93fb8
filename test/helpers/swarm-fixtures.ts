import type { Node, Service, ServiceSpec, Task } from '../../src/cluster/types.js';
import { newSwarmId } from '../../src/util/ids.js';
import { newTask } from '../../src/manager/orchestrator/task.js';
import { status } from '../../src/cluster/task-state.js';

/** Small builders for cluster objects in unit tests. */

/** The fields every stored swarm object starts with. */
function meta(id: string) {
  const now = new Date().toISOString();
  return { ID: id, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now };
}

export function makeNode(
  id: string,
  over: {
    hostname?: string;
    role?: 'worker' | 'manager';
    state?: Node['Status']['State'];
    availability?: Node['Spec']['Availability'];
    labels?: Record<string, string>;
    engineLabels?: Record<string, string>;
    addr?: string;
    cpu?: number;
    mem?: number;
    os?: string;
    arch?: string;
  } = {},
): Node {
  return {
    ...meta(id),
    Spec: { Role: over.role ?? 'worker', Availability: over.availability ?? 'active', Labels: over.labels ?? {} },
    Description: {
      Hostname: over.hostname ?? id,
      Platform: { Architecture: over.arch ?? 'x86_64', OS: over.os ?? 'linux' },
      Resources: { NanoCPUs: over.cpu ?? 2e9, MemoryBytes: over.mem ?? 2 ** 31 },
      Engine: { EngineVersion: '28.0.0', Labels: over.engineLabels ?? {} },
    },
    Status: { State: over.state ?? 'ready', Addr: over.addr ?? '192.168.1.10' },
  };
}

export function makeService(name: string, spec: Partial<ServiceSpec> = {}, id = newSwarmId()): Service {
  return {
    ...meta(id),
    Spec: {
      Name: name,
      TaskTemplate: { ContainerSpec: { Image: 'busybox' } },
      Mode: { Replicated: { Replicas: 1 } },
      ...spec,
    },
    SpecVersion: { Index: 1 },
  };
}

/** A task as the orchestrators make it (newTask), already PENDING as the allocator leaves it; `over` wins. */
export function makeTask(service: Service, over: Partial<Task> = {}): Task {
  return { ...newTask(service, undefined), Status: status('pending', 'pending task scheduling'), ...over };
}

/** Polls `cond` until true (the loops are asynchronous); fails after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
