import type { Router } from '../router.js';
import type { Task } from '../../cluster/types.js';
import { getTask, listTasks } from '../../manager/control/tasks.js';
import { notASwarmManager, type ManagerStore } from './services.js';

/** A task as the Engine API shows it. */
export function taskView(t: Task): Record<string, unknown> {
  // SpecVersion, ServiceAnnotations and Endpoint are for shoal's own stages, not part of Docker's Task.
  const out: Record<string, unknown> = { ...t };
  delete out.SpecVersion;
  delete out.ServiceAnnotations;
  delete out.Endpoint;
  return out;
}

export function taskRoutes(router: Router, managerStore: ManagerStore = notASwarmManager): void {
  router.get('/tasks', (ctx) => ({ body: listTasks(managerStore(), ctx.filters()).map(taskView) }));
  router.get('/tasks/:id', (ctx) => ({ body: taskView(getTask(managerStore(), ctx.params.id)) }));
}
