import type { Kind, KindMap, Network, Node, Service, Task } from '../../cluster/types.js';

/**
 * What the dashboard page is sent about each object: a few short fields, not the stored
 * object, so a snapshot of 10,000 tasks stays a few megabytes and a patch a few hundred bytes.
 */
export interface NodeView {
  id: string;
  host: string;
  role: string;
  leader: boolean;
  state: string;
  avail: string;
  /** The engine's labels (dockerd --label). */
  labels: Record<string, string>;
  /** The node's own (`docker node update --label-add`), which placement constraints match. */
  nodeLabels: Record<string, string>;
  addr: string;
  cpu: number;
  mem: number;
}
export interface TaskView {
  id: string;
  svc: string;
  name: string;
  slot: number;
  node: string;
  state: string;
  desired: string;
  image: string;
  err: string;
  cpu: number;
  mem: number;
  ver: number;
}
export interface ServiceView {
  id: string;
  name: string;
  mode: string;
  replicas: number;
  image: string;
  ports: string[];
  update: { state: string; msg: string } | null;
  ver: number;
}
export interface NetworkView {
  id: string;
  name: string;
  driver: string;
  subnet: string;
  ingress: boolean;
  attachable: boolean;
  internal: boolean;
}

/** The kinds the page shows, by the short name used on the wire. */
export const SHOWN: Partial<Record<Kind, string>> = {
  nodes: 'node',
  tasks: 'task',
  services: 'service',
  networks: 'network',
};

/** `nginx:1.25` from `docker.io/library/nginx:1.25@sha256:...`: the name and tag a person reads. */
export function imageTag(image: string | undefined): string {
  if (!image) return '';
  const ref = image.split('@')[0];
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  return last.includes(':') ? last : `${last}:latest`;
}

/** `leaderId`: leadership is a live fact (the election), not stored on the node. */
export function nodeView(n: Node, leaderId?: string): NodeView {
  return {
    id: n.ID,
    host: n.Description?.Hostname ?? n.Spec.Name ?? n.ID.slice(0, 12),
    role: n.Spec.Role,
    leader: n.Spec.Role === 'manager' && (leaderId !== undefined ? n.ID === leaderId : !!n.ManagerStatus?.Leader),
    state: n.Status.State,
    avail: n.Spec.Availability,
    labels: n.Description?.Engine.Labels ?? {},
    nodeLabels: n.Spec.Labels ?? {},
    addr: n.Status.Addr ?? '',
    cpu: n.Description?.Resources.NanoCPUs ?? 0,
    mem: n.Description?.Resources.MemoryBytes ?? 0,
  };
}

export function taskView(t: Task): TaskView {
  const res = t.Spec.Resources?.Reservations;
  return {
    id: t.ID,
    svc: t.ServiceID,
    name: t.ServiceAnnotations?.Name ?? '',
    slot: t.Slot ?? 0,
    node: t.NodeID ?? '',
    state: t.Status.State,
    desired: t.DesiredState,
    image: imageTag(t.Spec.ContainerSpec?.Image),
    err: t.Status.Err ?? '',
    cpu: res?.NanoCPUs ?? 0,
    mem: res?.MemoryBytes ?? 0,
    ver: t.SpecVersion?.Index ?? 0,
  };
}

function modeOf(s: Service): { mode: string; replicas: number } {
  const m = s.Spec.Mode ?? {};
  if (m.Global) return { mode: 'global', replicas: 0 };
  if (m.ReplicatedJob)
    return { mode: 'replicated-job', replicas: m.ReplicatedJob.TotalCompletions ?? m.ReplicatedJob.MaxConcurrent ?? 1 };
  if (m.GlobalJob) return { mode: 'global-job', replicas: 0 };
  return { mode: 'replicated', replicas: m.Replicated?.Replicas ?? 1 };
}

export function serviceView(s: Service): ServiceView {
  const ports = (s.Endpoint?.Ports ?? []).map(
    (p) =>
      `${p.PublishedPort ?? ''}:${p.TargetPort}/${p.Protocol ?? 'tcp'}${p.PublishMode === 'host' ? ' (host)' : ''}`,
  );
  return {
    id: s.ID,
    name: s.Spec.Name ?? '',
    ...modeOf(s),
    image: imageTag(s.Spec.TaskTemplate.ContainerSpec?.Image),
    ports,
    update: s.UpdateStatus ? { state: s.UpdateStatus.State, msg: s.UpdateStatus.Message ?? '' } : null,
    ver: s.SpecVersion?.Index ?? 0,
  };
}

export function networkView(n: Network): NetworkView {
  return {
    id: n.ID,
    name: n.Spec.Name ?? '',
    driver: n.DriverState?.Name ?? n.Spec.DriverConfiguration?.Name ?? 'overlay',
    subnet: (n.IPAMOptions?.Configs ?? n.Spec.IPAMOptions?.Configs ?? []).map((c) => c.Subnet).join(', '),
    ingress: !!n.Spec.Ingress,
    attachable: !!n.Spec.Attachable,
    internal: !!n.Spec.Internal,
  };
}

/** The view of one stored object of a shown kind. */
export function viewOf(
  kind: Kind,
  o: KindMap[Kind],
  leaderId?: string,
): NodeView | TaskView | ServiceView | NetworkView | undefined {
  switch (kind) {
    case 'nodes':
      return nodeView(o as Node, leaderId);
    case 'tasks':
      return taskView(o as Task);
    case 'services':
      return serviceView(o as Service);
    case 'networks':
      return networkView(o as Network);
    default:
      return undefined;
  }
}
