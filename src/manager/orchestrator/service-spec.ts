import type { Network, Service, ServiceSpec } from '../../cluster/types.js';
import { ApiError, rpcError } from '../../util/errors.js';
import { parseConstraints } from '../scheduler/constraint.js';
import { validateReferences } from '../secrets/spec.js';

/**
 * What a valid service spec is (swarmkit controlapi/service.go), with the errors Docker
 * returns: the daemon passes SwarmKit's gRPC status through (util/errors RpcError).
 */

const MOUNT_TYPES = new Set(['bind', 'volume', 'tmpfs', 'npipe', 'cluster']);
const PROPAGATIONS = new Set(['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave']);

const DNS_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;

export function modeName(spec: ServiceSpec): 'replicated' | 'global' | 'replicated-job' | 'global-job' {
  const m = spec.Mode ?? {};
  if (m.Global) return 'global';
  if (m.ReplicatedJob) return 'replicated-job';
  if (m.GlobalJob) return 'global-job';
  return 'replicated';
}

/** Fills what the daemon fills before SwarmKit sees the spec (moby convert.ServiceSpecToGRPC). */
export function normalizeSpec(spec: ServiceSpec): ServiceSpec {
  const s = structuredClone(spec);
  s.TaskTemplate ??= {};
  const m = s.Mode ?? {};
  if (m.ReplicatedJob) {
    const maxConcurrent = m.ReplicatedJob.MaxConcurrent ?? 1;
    s.Mode = {
      ReplicatedJob: {
        MaxConcurrent: maxConcurrent,
        TotalCompletions: m.ReplicatedJob.TotalCompletions ?? maxConcurrent,
      },
    };
  } else if (!m.Global && !m.GlobalJob)
    s.Mode = { ...m, Replicated: { ...(m.Replicated ?? {}), Replicas: m.Replicated?.Replicas ?? 1 } };
  // An empty action or order is SwarmKit's zero enum value (moby convert updateConfigToGRPC); `stack deploy` sends them empty.
  for (const u of [s.UpdateConfig, s.RollbackConfig]) {
    if (!u) continue;
    if (!u.FailureAction) u.FailureAction = 'pause';
    if (!u.Order) u.Order = 'stop-first';
  }
  return s;
}

/** Throws Docker's error for the first problem found. */
export function validateSpec(spec: ServiceSpec): void {
  const name = spec.Name ?? '';
  if (!name) throw rpcError('InvalidArgument', 'meta: name must be provided');
  if (!DNS_NAME.test(name)) throw rpcError('InvalidArgument', 'name must be valid as a DNS name component');
  if (name.length > 63) throw rpcError('InvalidArgument', 'name must be 63 characters or fewer');

  const task = spec.TaskTemplate ?? {};
  for (const r of [task.Resources?.Limits, task.Resources?.Reservations]) {
    if (!r) continue;
    if (r.NanoCPUs && r.NanoCPUs < 1e6)
      throw rpcError('InvalidArgument', `invalid cpu value ${r.NanoCPUs / 1e9}: Must be at least 0.001`);
    if (r.MemoryBytes && r.MemoryBytes < 4 * 1024 * 1024)
      throw rpcError('InvalidArgument', `invalid memory value ${r.MemoryBytes}: Must be at least 4MiB`);
  }
  if ((task.RestartPolicy?.Delay ?? 0) < 0)
    throw rpcError('InvalidArgument', 'TaskSpec: restart-delay cannot be negative');
  if ((task.RestartPolicy?.Window ?? 0) < 0)
    throw rpcError('InvalidArgument', 'TaskSpec: restart-window cannot be negative');
  try {
    parseConstraints(task.Placement?.Constraints ?? []);
  } catch (e) {
    throw rpcError('InvalidArgument', (e as Error).message);
  }
  validateReferences(task.ContainerSpec);
  if (!task.ContainerSpec) throw rpcError('InvalidArgument', 'TaskSpec: missing runtime');
  const image = task.ContainerSpec.Image ?? '';
  if (!image) throw rpcError('InvalidArgument', 'ContainerSpec: image reference must be provided');
  if (/\s/.test(image) || /[A-Z]/.test(image.split('@')[0].split('/').pop()!.split(':')[0]))
    throw rpcError('InvalidArgument', `ContainerSpec: "${image}" is not a valid repository/tag`);
  // What the daemon refuses while converting the spec for SwarmKit (moby convert containerToGRPC): a 400 without the rpc prefix.
  for (const m of task.ContainerSpec.Mounts ?? []) {
    if (!MOUNT_TYPES.has(String(m.Type).toLowerCase())) throw new ApiError(400, `invalid MountType: "${m.Type}"`);
    const prop = m.BindOptions?.Propagation;
    if (m.Type === 'bind' && prop && !PROPAGATIONS.has(prop.toLowerCase()))
      throw new ApiError(400, `invalid MountPropagation: "${prop}"`);
  }
  const targets = new Set<string>();
  for (const m of task.ContainerSpec.Mounts ?? []) {
    if (targets.has(m.Target)) throw rpcError('InvalidArgument', `ContainerSpec: duplicate mount point: ${m.Target}`);
    targets.add(m.Target);
  }

  const mode = spec.Mode ?? {};
  const kinds = [mode.Replicated, mode.Global, mode.ReplicatedJob, mode.GlobalJob].filter(
    (x) => x !== undefined,
  ).length;
  if (kinds > 1) throw rpcError('InvalidArgument', 'Unrecognized service mode');
  if ((mode.Replicated?.Replicas ?? 0) < 0)
    throw rpcError('InvalidArgument', 'Number of replicas must be non-negative');
  if ((mode.ReplicatedJob?.MaxConcurrent ?? 0) < 0)
    throw rpcError('InvalidArgument', 'Maximum concurrent jobs must not be negative');
  if ((mode.ReplicatedJob?.TotalCompletions ?? 0) < 0)
    throw rpcError('InvalidArgument', 'Total completed jobs must not be negative');
  if ((mode.ReplicatedJob || mode.GlobalJob) && spec.UpdateConfig)
    throw rpcError('InvalidArgument', 'Jobs may not have an update config');

  for (const u of [spec.UpdateConfig]) {
    if (!u) continue;
    if ((u.Delay ?? 0) < 0) throw rpcError('InvalidArgument', 'TaskSpec: update-delay cannot be negative');
    if ((u.Monitor ?? 0) < 0) throw rpcError('InvalidArgument', 'TaskSpec: update-monitor cannot be negative');
    if ((u.MaxFailureRatio ?? 0) < 0 || (u.MaxFailureRatio ?? 0) > 1)
      throw rpcError('InvalidArgument', 'TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1');
  }

  const ep = spec.EndpointSpec;
  if (ep) {
    const ports = ep.Ports ?? [];
    if (ep.Mode === 'dnsrr' && ports.some((p) => (p.PublishMode ?? 'ingress') === 'ingress')) {
      throw rpcError('InvalidArgument', "EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
    }
    const seen = new Set<string>();
    for (const p of ports) {
      if (!p.PublishedPort) continue;
      const k = `${p.Protocol ?? 'tcp'}/${p.PublishedPort}/${p.PublishMode ?? 'ingress'}`;
      if (seen.has(k)) throw rpcError('InvalidArgument', 'EndpointSpec: duplicate published ports provided');
      seen.add(k);
    }
  }
}

/** Published ports already taken by other services (controlapi checkPortConflicts). */
export function checkPortConflicts(spec: ServiceSpec, services: Service[], selfId?: string): void {
  const ports = spec.EndpointSpec?.Ports ?? [];
  for (const s of services) {
    if (s.ID === selfId) continue;
    const theirs = s.Endpoint?.Ports?.length ? s.Endpoint.Ports : (s.Spec.EndpointSpec?.Ports ?? []);
    for (const p of ports) {
      if (!p.PublishedPort) continue;
      const proto = p.Protocol ?? 'tcp';
      const mine = p.PublishMode ?? 'ingress';
      for (const q of theirs) {
        if (q.PublishedPort !== p.PublishedPort || (q.Protocol ?? 'tcp') !== proto) continue;
        const other = q.PublishMode ?? 'ingress';
        if (mine === 'host' && other === 'ingress') {
          throw rpcError(
            'InvalidArgument',
            `port '${p.PublishedPort}' is already in use by service '${s.Spec.Name}' (${s.ID}) as a host-published port`,
          );
        }
        if (mine === 'ingress') {
          throw rpcError(
            'InvalidArgument',
            `port '${p.PublishedPort}' is already in use by service '${s.Spec.Name}' (${s.ID}) as an ingress port`,
          );
        }
      }
    }
  }
}

/**
 * Resolves network targets to IDs as the daemon does before SwarmKit sees them
 * (moby cluster.populateNetworkID); an unknown network is a 404, ingress is refused.
 */
export function resolveNetworks(spec: ServiceSpec, networks: Network[]): void {
  for (const list of [spec.TaskTemplate?.Networks, spec.Networks]) {
    for (const a of list ?? []) {
      const matches = networks.filter((n) => n.ID === a.Target || n.Spec.Name === a.Target);
      const byPrefix = matches.length ? matches : networks.filter((n) => n.ID.startsWith(a.Target));
      if (byPrefix.length !== 1) throw new ApiError(404, `network ${a.Target} not found`);
      const n = byPrefix[0];
      if (n.Spec.Ingress)
        throw rpcError(
          'InvalidArgument',
          `Service cannot be explicitly attached to the ingress network "${n.Spec.Name}"`,
        );
      a.Target = n.ID;
    }
  }
}
