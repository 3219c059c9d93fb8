import type { Task } from '../../cluster/types.js';
import type { TaskContainer, TaskExecutor } from './executor.js';

/**
 * Tasks that "run" without containers: only for measuring the control plane at thousands of
 * nodes (bench/). Containers start at once and run until stopped.
 */
export class SimulatedExecutor implements TaskExecutor {
  private readonly containers = new Map<string, TaskContainer>();
  private readonly listeners = new Map<string, () => void>();
  private n = 0;

  list(): TaskContainer[] {
    return [...this.containers.values()];
  }

  find(taskId: string): TaskContainer | undefined {
    for (const c of this.containers.values()) if (c.taskId === taskId) return c;
    return undefined;
  }

  async prepare(task: Task): Promise<TaskContainer> {
    const existing = this.find(task.ID);
    if (existing) return existing;
    const c: TaskContainer = { containerId: `sim${++this.n}`, taskId: task.ID, running: false };
    this.containers.set(c.containerId, c);
    return c;
  }

  async start(containerId: string): Promise<TaskContainer> {
    const c = this.containers.get(containerId)!;
    c.running = true;
    c.pid = 1;
    return { ...c };
  }

  async stop(containerId: string): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c?.running) return;
    c.running = false;
    c.exitCode = 143;
    this.listeners.get(containerId)?.();
  }

  async remove(containerId: string): Promise<void> {
    this.containers.delete(containerId);
    this.listeners.get(containerId)?.();
  }

  onExit(containerId: string, fn: () => void): () => void {
    this.listeners.set(containerId, fn);
    return () => this.listeners.delete(containerId);
  }
}
