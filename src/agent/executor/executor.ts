import { isNodeLocal } from '../../cluster/network-drivers.js';
import path from 'node:path';
import type { Mount, Task } from '../../cluster/types.js';
import { GW_BRIDGE } from '../network/names.js';
import type { TaskFile } from './task-files.js';
import { expandContainerSpec, templateContext, type TemplateNode } from './task-template.js';

/**
 * What the worker needs from whatever runs a task (swarmkit exec.Controller, reduced): the
 * worker owns the task state machine, the executor owns containers. The real one drives the
 * engine's ContainerManager; benchmarks use a simulated one.
 */
export interface TaskContainer {
  containerId: string;
  taskId: string;
  running: boolean;
  pid?: number;
  exitCode?: number;
  /** The container's health status while it has a health check (its own or its image's). */
  health?: 'starting' | 'healthy' | 'unhealthy';
}

export interface TaskExecutor {
  /** Containers this node holds for swarm tasks (by their com.docker.swarm.task.id label), running or not. */
  list(): TaskContainer[];
  /** The task's container, if it exists. */
  find(taskId: string): TaskContainer | undefined;
  /**
   * Makes the image available (pulls it when missing) and creates the container. Errors are the
   * task's rejection reason. `files`: the task's secrets and configs (executor/task-files.ts),
   * given to the container without touching the disk.
   */
  prepare(task: Task, nodeId: string, files?: TaskFile[]): Promise<TaskContainer>;
  start(containerId: string): Promise<TaskContainer>;
  /** Stops within the grace period (ns, from the task spec; Docker's default 10 s). */
  stop(containerId: string, gracePeriodNs?: number): Promise<void>;
  remove(containerId: string): Promise<void>;
  /** Calls `fn` when the container exits or is removed; returns the unsubscribe. */
  onExit(containerId: string, fn: () => void): () => void;
  /** Calls `fn` when the container's health status changes; returns the unsubscribe. Executors without health checks leave it out. */
  onHealth?(containerId: string, fn: () => void): () => void;
}

/** The container name Docker gives a task: `<service>.<slot or node ID>.<task ID>` (swarmkit naming.Task). */
export function taskContainerName(task: Task): string {
  const slot = task.Slot ? String(task.Slot) : (task.NodeID ?? '');
  return `${task.ServiceAnnotations?.Name ?? task.ServiceID}.${slot}.${task.ID}`;
}

/** The labels Docker puts on a task's container (moby executor/container). */
export function taskContainerLabels(task: Task, nodeId: string): Record<string, string> {
  return {
    ...(task.Spec.ContainerSpec?.Labels ?? {}),
    'com.docker.swarm.node.id': nodeId,
    'com.docker.swarm.service.id': task.ServiceID,
    'com.docker.swarm.service.name': task.ServiceAnnotations?.Name ?? '',
    'com.docker.swarm.task': '',
    'com.docker.swarm.task.id': task.ID,
    'com.docker.swarm.task.name': taskContainerName(task),
  };
}

/**
 * Engine API container create body for a task (moby executor/container: Command→Entrypoint,
 * Args→Cmd), with the service templates of its hostname, env and mounts expanded for this node
 * (`node`: its description). A bad template throws the task's rejection reason.
 */
export function taskContainerConfig(
  task: Task,
  nodeId: string,
  node?: TemplateNode,
): { name: string; config: Record<string, unknown>; hostConfig: Record<string, unknown> } {
  const c = expandContainerSpec(
    task.Spec.ContainerSpec ?? { Image: '' },
    templateContext(task, taskContainerName(task), nodeId, node),
  );
  const config: Record<string, unknown> = {
    Image: c.Image,
    Labels: taskContainerLabels(task, nodeId),
    Env: c.Env ?? [],
    Hostname: c.Hostname ?? '',
    WorkingDir: c.Dir ?? '',
    User: c.User ?? '',
  };
  if (c.Command?.length) config.Entrypoint = c.Command;
  if (c.Args?.length) config.Cmd = c.Args;
  if (c.StopSignal) config.StopSignal = c.StopSignal;
  if (c.StopGracePeriod !== undefined) config.StopTimeout = Math.round(c.StopGracePeriod / 1e9);
  // ContainerSpec.Healthcheck has the engine's Config.Healthcheck shape (`--health-*`, `--no-healthcheck`).
  if (c.Healthcheck) config.Healthcheck = c.Healthcheck;
  const hostConfig: Record<string, unknown> = {};
  if (c.Mounts?.length) hostConfig.Mounts = c.Mounts.map(taskMount);
  if (c.Init) hostConfig.Init = true;
  // Tasks on swarm networks resolve service names through the node's resolver on the gateway bridge.
  // A node-local swarm network's bridge has the engine's own resolver, as any user bridge.
  if (task.NetworksAttachments?.some((a) => !isNodeLocal(a.Network))) hostConfig.Dns = [GW_BRIDGE.gateway];
  const res = task.Spec.Resources?.Limits;
  if (res?.NanoCPUs) hostConfig.NanoCpus = res.NanoCPUs;
  if (res?.MemoryBytes) hostConfig.Memory = res.MemoryBytes;
  return { name: taskContainerName(task), config, hostConfig };
}

/**
 * A service mount as the engine's `HostConfig.Mounts` entry (moby executor/container
 * convertMount): type, source, target, read-only and the options of its type.
 */
export function taskMount(m: Mount): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Type: m.Type,
    Source: m.Source ?? '',
    Target: m.Target,
    ReadOnly: m.ReadOnly === true,
  };
  if (m.Consistency) out.Consistency = m.Consistency;
  if (m.Type === 'bind' && m.BindOptions) out.BindOptions = { ...m.BindOptions };
  if (m.Type === 'volume' && m.VolumeOptions) {
    const v = m.VolumeOptions;
    out.VolumeOptions = {
      NoCopy: v.NoCopy === true,
      ...(v.Labels ? { Labels: { ...v.Labels } } : {}),
      ...(v.DriverConfig
        ? { DriverConfig: { Name: v.DriverConfig.Name ?? '', Options: { ...(v.DriverConfig.Options ?? {}) } } }
        : {}),
      ...(v.Subpath ? { Subpath: v.Subpath } : {}),
    };
  }
  if (m.Type === 'tmpfs' && m.TmpfsOptions) {
    const t = m.TmpfsOptions;
    out.TmpfsOptions = { ...(t.SizeBytes ? { SizeBytes: t.SizeBytes } : {}), ...(t.Mode ? { Mode: t.Mode } : {}) };
  }
  return out;
}

/**
 * The checks a worker makes before it creates a task's container (moby executor/container
 * validateMounts); a failure rejects the task with this message.
 */
export function validateTaskMounts(mounts: Mount[]): void {
  for (const m of mounts) {
    if (!path.isAbsolute(m.Target ?? '') && m.Type !== 'npipe')
      throw new Error(`invalid mount target, must be an absolute path: ${m.Target ?? ''}`);
    switch (m.Type) {
      case 'bind':
        if (!path.isAbsolute(m.Source ?? ''))
          throw new Error(`invalid bind mount source, must be an absolute path: ${m.Source ?? ''}`);
        break;
      case 'volume':
        if (path.isAbsolute(m.Source ?? ''))
          throw new Error(`invalid volume mount source, must not be an absolute path: ${m.Source}`);
        break;
      case 'tmpfs':
        if (m.Source) throw new Error('invalid tmpfs source, source must be empty');
        break;
      case 'npipe':
        if (!m.Source) throw new Error('invalid npipe source, source must not be empty');
        // Named pipes exist on Windows only; dockerd on Linux refuses the container.
        throw new Error('invalid mount config for type "npipe": mount type unknown');
      case 'cluster':
        throw new Error('invalid mount config for type "cluster": cluster volumes are not supported by this node');
      default:
        throw new Error(`invalid mount type: ${(m as { Type: string }).Type}`);
    }
  }
}
