import type { Kind, KindMap, Node, Service } from '../../cluster/types.js';
import type { Store, StoreEvent } from '../store/store.js';

/**
 * `docker events` for the swarm, as dockerd 20.10 makes them (daemon/events.go,
 * generateClusterEvent): one message per store change of a node, service, network, secret or
 * config, scope "swarm", the object's ID and name; an update names what changed (old/new).
 * The message has the Engine API's shape; the API layer puts it into the node's event log.
 */
export interface SwarmEvent {
  Type: 'node' | 'service' | 'network' | 'secret' | 'config';
  Action: 'create' | 'update' | 'remove';
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'swarm';
  time: number;
  timeNano: number;
}

const TYPES: Partial<Record<Kind, SwarmEvent['Type']>> = {
  nodes: 'node',
  services: 'service',
  networks: 'network',
  secrets: 'secret',
  configs: 'config',
};

/** Docker's name attribute: a node without a spec name goes by its hostname. */
function nameOf(kind: Kind, o: KindMap[Kind]): string {
  const spec = (o as { Spec?: { Name?: string } }).Spec;
  if (kind === 'nodes') return spec?.Name || (o as Node).Description?.Hostname || '';
  return spec?.Name ?? '';
}

function changed(a: Record<string, string>, key: string, old: string | undefined, now: string | undefined): void {
  if (old === now) return;
  if (old !== undefined) a[`${key}.old`] = old;
  if (now !== undefined) a[`${key}.new`] = now;
}

function nodeChanges(a: Record<string, string>, n: Node, old: Node): void {
  changed(a, 'availability', old.Spec.Availability, n.Spec.Availability);
  changed(a, 'role', old.Spec.Role, n.Spec.Role);
  changed(a, 'state', old.Status.State, n.Status.State);
  // Only between two manager states, as dockerd does: a promotion is told by role.*.
  if (n.ManagerStatus && old.ManagerStatus) {
    changed(a, 'leader', String(!!old.ManagerStatus.Leader), String(!!n.ManagerStatus.Leader));
    changed(a, 'reachability', old.ManagerStatus.Reachability, n.ManagerStatus.Reachability);
  }
}

function serviceChanges(a: Record<string, string>, s: Service, old: Service): void {
  changed(a, 'image', old.Spec.TaskTemplate.ContainerSpec?.Image, s.Spec.TaskTemplate.ContainerSpec?.Image);
  const replicas = (x: Service) => (x.Spec.Mode?.Replicated ? String(x.Spec.Mode.Replicated.Replicas ?? 1) : undefined);
  if (replicas(s) !== undefined && replicas(old) !== undefined) changed(a, 'replicas', replicas(old), replicas(s));
  if (s.UpdateStatus) changed(a, 'updatestate', old.UpdateStatus?.State, s.UpdateStatus.State);
}

/**
 * The docker event for one store change, or undefined for kinds Docker does not report (tasks,
 * the cluster object). `old` is the object before an update, as swarmkit's IncludeOldObject
 * watch gives it. `nowMs` stamps removals (the store keeps no removal time; dockerd does the same).
 */
export function swarmEvent(ev: StoreEvent, old: KindMap[Kind] | undefined, nowMs = Date.now()): SwarmEvent | undefined {
  const type = TYPES[ev.kind];
  if (!type) return undefined;
  const o = ev.object;
  const attributes: Record<string, string> = { name: nameOf(ev.kind, o) };
  if (ev.action === 'update' && old) {
    if (type === 'node') nodeChanges(attributes, o as Node, old as Node);
    if (type === 'service') serviceChanges(attributes, o as Service, old as Service);
  }
  // Create and update carry the object's own CreatedAt/UpdatedAt, as in dockerd's eventTimestamp.
  // An update whose writer left UpdatedAt as it was (a status report) is stamped now instead.
  const fresh = ev.action === 'update' && !(old && old.UpdatedAt === o.UpdatedAt);
  const stamp = ev.action === 'create' ? Date.parse(o.CreatedAt) : fresh ? Date.parse(o.UpdatedAt) : NaN;
  const ms = Number.isFinite(stamp) ? stamp : nowMs;
  return {
    Type: type,
    Action: ev.action === 'delete' ? 'remove' : ev.action,
    Actor: { ID: o.ID, Attributes: attributes },
    scope: 'swarm',
    time: Math.floor(ms / 1000),
    timeNano: ms * 1_000_000,
  };
}

/**
 * Feeds `fn` the swarm events of every later store change; returns unsubscribe. Keeps the
 * last seen node and service objects (the cache's own frozen ones, no copy) so an update can
 * name its old values.
 */
export function watchSwarmEvents(store: Store, fn: (e: SwarmEvent) => void): () => void {
  const last = new Map<string, KindMap[Kind]>();
  const key = (kind: Kind, id: string) => `${kind}/${id}`;
  for (const kind of ['nodes', 'services'] as const) for (const o of store.view(kind)) last.set(key(kind, o.ID), o);
  return store.watch((events) => {
    for (const ev of events) {
      const k = key(ev.kind, ev.object.ID);
      const e = swarmEvent(ev, last.get(k));
      if (ev.kind === 'nodes' || ev.kind === 'services') {
        if (ev.action === 'delete') last.delete(k);
        else last.set(k, ev.object);
      }
      if (e) fn(e);
    }
  });
}
