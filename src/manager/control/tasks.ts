import type { Node, Service, Task } from '../../cluster/types.js';
import { TASK_STATES } from '../../cluster/types.js';
import { badRequest, notFound } from '../../util/errors.js';
import { isTaskDirty } from '../orchestrator/task.js';
import type { Store } from '../store/store.js';
import { acceptFilters, matchLabels, type Filters } from './filters.js';
import { getService } from './services.js';

/** Tasks as the control plane lists and finds them (swarmkit controlapi/task.go); only the leader loops write them. */

/** SwarmKit's task name (api/naming): `<service>.<slot or node ID>.<task ID>`, also the container name. */
export function taskName(t: Task, service: Service | undefined): string {
  const slot = t.Slot ? String(t.Slot) : (t.NodeID ?? '');
  return `${service?.Spec.Name ?? ''}.${slot}.${t.ID}`;
}

/** By full ID, then task name, then ID prefix. */
export function getTask(store: Store, input: string): Task {
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

/** A node named in a task filter: full ID, then name or hostname, then ID prefix (moby cluster getNode). */
function filterNode(store: Store, input: string): Node {
  const byId = store.get('nodes', input);
  if (byId) return byId;
  const all = store.list('nodes');
  const byName = all.filter((n) => n.Spec.Name === input || n.Description?.Hostname === input);
  const found = byName.length ? byName : all.filter((n) => n.ID.startsWith(input));
  if (!found.length) throw notFound(`node ${input} not found`);
  if (found.length > 1) throw badRequest(`node ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}

export const TASK_FILTERS = [
  'name',
  'id',
  'label',
  'service',
  'node',
  'desired-state',
  '_up-to-date',
  'runtime',
] as const;

/**
 * Tasks matching the filters, oldest first. These are the store's own (frozen) objects: a
 * caller that shows them copies what it returns.
 */
export function listTasks(store: Store, f: Filters): Task[] {
  acceptFilters(f, TASK_FILTERS);
  const states: string[] = [];
  for (const s of f.get('desired-state') ?? []) {
    if ((TASK_STATES as readonly string[]).includes(s.toLowerCase())) states.push(s.toLowerCase());
    else if (s !== '') throw badRequest(`Invalid desired-state filter: '${s}'`);
  }
  const serviceIds = (f.get('service') ?? []).map((s) => getService(store, s).ID);
  const nodeIds = (f.get('node') ?? []).map((n) => filterNode(store, n).ID);
  const services = new Map(store.view('services').map((s) => [s.ID, s]));
  let tasks = serviceIds.length ? serviceIds.flatMap((id) => store.tasksBy('service', id)) : store.view('tasks');
  if (nodeIds.length) tasks = tasks.filter((t) => t.NodeID && nodeIds.includes(t.NodeID));
  if (states.length) tasks = tasks.filter((t) => states.includes(t.DesiredState));
  const ids = f.get('id');
  if (ids?.length) tasks = tasks.filter((t) => ids.some((i) => t.ID.startsWith(i)));
  const names = f.get('name');
  if (names?.length)
    tasks = tasks.filter((t) => names.some((n) => taskName(t, services.get(t.ServiceID)).startsWith(n)));
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
  return [...tasks].sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : a.CreatedAt > b.CreatedAt ? 1 : 0));
}
