import type { Task } from '../../cluster/types.js';
import type { TaskContainer, TaskExecutor } from './executor.js';

/**
 * An executor that starts nothing: a task's "container" is a record that is created, started
 * and stopped at once. The worker still drives the real state machine and reports every
 * state over the real session, so benchmarks measure the control plane alone, at thousands of
 * nodes in one process. Never used by shoald.
 */
export class SimulatedExecutor implements TaskExecutor {
  private readonly containers = new Map<string, TaskContainer>();
  private readonly exitListeners = new Map<string, Set<() => void>>();
  /** task ID → container ID: the worker looks tasks up on every step. */
  private readonly byTask = new Map<string, string>();
  private seq = 0;

  constructor(private readonly prefix = 'sim') {}

  list(): TaskContainer[] {
    return [...this.containers.values()].map((c) => ({ ...c }));
  }

  find(taskId: string): TaskContainer | undefined {
    const id = this.byTask.get(taskId);
    const c = id ? this.containers.get(id) : undefined;
    return c ? { ...c } : undefined;
  }

  async prepare(task: Task): Promise<TaskContainer> {
    const existing = this.find(task.ID);
    if (existing) return existing;
    const c: TaskContainer = {
      containerId: `${this.prefix}${(++this.seq).toString(16).padStart(12, '0')}`,
      taskId: task.ID,
      running: false,
    };
    this.containers.set(c.containerId, c);
    this.byTask.set(task.ID, c.containerId);
    return { ...c };
  }

  async start(containerId: string): Promise<TaskContainer> {
    const c = this.containers.get(containerId);
    if (!c) throw new Error(`No such container: ${containerId}`);
    c.running = true;
    c.exitCode = undefined;
    return { ...c };
  }

  async stop(containerId: string): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c || !c.running) return;
    c.running = false;
    // As if SIGTERM ended it.
    c.exitCode = 143;
    this.notifyExit(containerId);
  }

  async remove(containerId: string): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c) return;
    this.containers.delete(containerId);
    this.byTask.delete(c.taskId);
    this.notifyExit(containerId);
  }

  onExit(containerId: string, fn: () => void): () => void {
    let set = this.exitListeners.get(containerId);
    if (!set) this.exitListeners.set(containerId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (!set.size) this.exitListeners.delete(containerId);
    };
  }

  private notifyExit(containerId: string): void {
    const set = this.exitListeners.get(containerId);
    if (!set) return;
    this.exitListeners.delete(containerId);
    for (const fn of set) fn();
  }
}
