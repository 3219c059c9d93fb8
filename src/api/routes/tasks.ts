import type { Router } from '../router.js';
import type { Node, Service, Task } from '../../cluster/types.js';
import { TASK_STATES } from '../../cluster/types.js';
import type { Store } from '../../manager/store/store.js';
import { badRequest, notFound } from '../../util/errors.js';
import { isTaskDirty } from '../../manager/orchestrator/task.js';
import { findService, matchLabels, notASwarmManager, type ManagerStore } from './services.js';

/** Node by full ID, then hostname, then ID prefix (moby cluster getNode). */
function findNode(store: Store, input: string): Node {
  const byId = store.get('nodes', input);
  if (byId) return byId;
  const all = store.list('nodes');
  const byName = all.filter((n) => n.Spec.Name === input || n.Description?.Hostname === input);
  const found = byName.length ? byName : all.filter((n) => n.ID.startsWith(input));
  if (!found.length) throw notFound(`node ${input} not found`);
  if (found.length > 1) throw badRequest(`node ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}

/** SwarmKit's task name (api/naming): `<service>.<slot or node ID>.<task ID>`, also the container name. */
export function taskName(t: Task, service: Service | undefined): string {
  const slot = t.Slot ? String(t.Slot) : (t.NodeID ?? '');
  return `${service?.Spec.Name ?? ''}.${slot}.${t.ID}`;
}

/** A task as the Engine API shows it. */
export function taskView(t: Task): Record<string, unknown> {
  // SpecVersion, ServiceAnnotations and Endpoint are for shoal's own stages, not part of Docker's Task.
  const out: Record<string, unknown> = { ...t };
  delete out.SpecVersion;
  delete out.ServiceAnnotations;
  delete out.Endpoint;
  return out;
}

export function findTask(store: Store, input: string): Task {
  const byId = store.get('tasks', input);
  if (byId) return byId;
  const all = store.list('tasks');
  const services = new Map(store.list('services').map((s) => [s.ID, s]));
  const byName = all.filter((t) => taskName(t, services.get(t.ServiceID)) === input);
  const found = byName.length ? byName : all.filter((t) => t.ID.startsWith(input));
  if (!found.length) throw notFound(`task ${input} not found`);
  if (found.length > 1) throw badRequest(`task ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}

export function taskRoutes(router: Router, managerStore: ManagerStore = notASwarmManager): void {
  router.get('/tasks', (ctx) => {
    const store = managerStore();
    const f = ctx.filters();
    for (const k of f.keys()) {
      if (!['name', 'id', 'label', 'service', 'node', 'desired-state', '_up-to-date', 'runtime'].includes(k)) throw badRequest(`invalid filter '${k}'`);
    }
    const states: string[] = [];
    for (const s of f.get('desired-state') ?? []) {
      if ((TASK_STATES as readonly string[]).includes(s.toLowerCase())) states.push(s.toLowerCase());
      else if (s !== '') throw badRequest(`Invalid desired-state filter: '${s}'`);
    }
    const serviceIds = (f.get('service') ?? []).map((s) => findService(store, s).ID);
    const nodeIds = (f.get('node') ?? []).map((n) => findNode(store, n).ID);
    const services = new Map(store.view('services').map((s) => [s.ID, s]));
    // The store's own (frozen) objects: taskView copies what it returns.
    let tasks = serviceIds.length ? serviceIds.flatMap((id) => store.tasksBy('service', id)) : store.view('tasks');
    if (nodeIds.length) tasks = tasks.filter((t) => t.NodeID && nodeIds.includes(t.NodeID));
    if (states.length) tasks = tasks.filter((t) => states.includes(t.DesiredState));
    const ids = f.get('id');
    if (ids?.length) tasks = tasks.filter((t) => ids.some((i) => t.ID.startsWith(i)));
    const names = f.get('name');
    if (names?.length) tasks = tasks.filter((t) => names.some((n) => taskName(t, services.get(t.ServiceID)).startsWith(n)));
    const labels = f.get('label');
    // swarmkit matches the service's labels copied onto the task (how `stack ps` finds a stack's tasks).
    if (labels?.length) tasks = tasks.filter((t) => matchLabels(t.ServiceAnnotations?.Labels, labels));
    if (f.get('_up-to-date')?.length) {
      const nodes = new Map(store.view('nodes').map((n) => [n.ID, n]));
      tasks = tasks.filter((t) => {
        const s = services.get(t.ServiceID);
        return s !== undefined && !isTaskDirty(s, t, t.NodeID ? nodes.get(t.NodeID) : undefined);
      });
    }
    tasks.sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : a.CreatedAt > b.CreatedAt ? 1 : 0));
    return { body: tasks.map(taskView) };
  });

  router.get('/tasks/:id', (ctx) => {
    const store = managerStore();
    return { body: taskView(findTask(store, ctx.params.id)) };
  });
}
