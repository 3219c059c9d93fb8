import type { Router } from '../router.js';
import type { RequestContext } from '../context.js';
import type { Service, ServiceSpec, Task } from '../../cluster/types.js';
import { VersionConflict, type Store } from '../../manager/store/store.js';
import { ApiError, badRequest, notFound } from '../../util/errors.js';
import { newSwarmId } from '../../util/ids.js';
import { versionParam } from '../query.js';
import { checkPortConflicts, modeName, normalizeSpec, randomName, resolveNetworks, rpcError, validateSpec } from '../../manager/orchestrator/service-spec.js';
import { isGlobal } from '../../manager/orchestrator/task.js';
import { checkReferencesExist } from '../../manager/secrets/spec.js';

const isJob = (spec: ServiceSpec) => !!spec.Mode?.ReplicatedJob || !!spec.Mode?.GlobalJob;

/**
 * The store of the swarm this node manages. Throws Docker's 503 when the node is not in a
 * swarm, or is a worker (the swarm wiring decides which).
 */
export type ManagerStore = () => Store;

export const notASwarmManager: ManagerStore = () => {
  throw new ApiError(503, 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.');
};

/** Finds a service by full ID, then exact name, then ID prefix (moby cluster getService). */
export function findService(store: Store, input: string): Service {
  const byId = store.get('services', input);
  if (byId) return byId;
  const all = store.list('services');
  const byName = all.filter((s) => s.Spec.Name === input);
  const found = byName.length ? byName : all.filter((s) => s.ID.startsWith(input));
  if (!found.length) throw notFound(`service ${input} not found`);
  if (found.length > 1) throw badRequest(`service ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}

/** A service as the Engine API shows it. */
export function serviceView(s: Service, insertDefaults = false): Record<string, unknown> {
  // SpecVersion is shoal's own bookkeeping, not part of Docker's Service.
  const out: Record<string, unknown> = { ...s, Endpoint: s.Endpoint ?? { Spec: {} } };
  delete out.SpecVersion;
  // Docker's TaskSpec.ForceUpdate has no omitempty: inspect always shows it, 0 until forced.
  out.Spec = insertDefaults ? withDefaults(s.Spec) : { ...s.Spec, TaskTemplate: { ...s.Spec.TaskTemplate, ForceUpdate: s.Spec.TaskTemplate?.ForceUpdate ?? 0 } };
  return out;
}

/** SwarmKit's defaults, shown by `service inspect` (defaults.InterpolateService). */
function withDefaults(spec: ServiceSpec): ServiceSpec {
  const s = structuredClone(spec);
  const t = s.TaskTemplate;
  t.RestartPolicy = { Condition: 'any', Delay: 5e9, MaxAttempts: 0, ...(t.RestartPolicy ?? {}) };
  t.Resources ??= { Limits: {}, Reservations: {} };
  t.Placement ??= {};
  t.ForceUpdate ??= 0;
  t.Runtime ??= 'container';
  if (t.ContainerSpec) t.ContainerSpec.StopGracePeriod ??= 10e9;
  if (t.ContainerSpec) t.ContainerSpec.DNSConfig ??= {};
  if (!s.Mode?.ReplicatedJob && !s.Mode?.GlobalJob) {
    const upd = { Parallelism: 1, FailureAction: 'pause' as const, Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first' as const };
    s.UpdateConfig = { ...upd, ...(s.UpdateConfig ?? {}) };
    s.RollbackConfig = { ...upd, ...(s.RollbackConfig ?? {}) };
  }
  s.EndpointSpec = { Mode: 'vip', ...(s.EndpointSpec ?? {}) };
  return s;
}

/** Running/desired counts shown by `service ls` (controlapi ListServiceStatuses). */
export function serviceStatus(s: Service, tasks: Task[], downNodes: Set<string> = new Set()): { RunningTasks: number; DesiredTasks: number; CompletedTasks: number } {
  let running = 0;
  let desired = isGlobal(s) ? 0 : (s.Spec.Mode?.Replicated?.Replicas ?? s.Spec.Mode?.ReplicatedJob?.MaxConcurrent ?? 0);
  let completed = 0;
  const iteration = s.JobStatus?.JobIteration.Index;
  for (const t of tasks) {
    if (t.ServiceID !== s.ID) continue;
    // Jobs count only the current run.
    if (iteration !== undefined && t.JobIteration?.Index !== iteration) continue;
    if (isGlobal(s) && t.DesiredState === 'complete' && t.Status.State !== 'complete') desired++;
    // A DOWN node cannot report its tasks ended: they do not count as running (the CLI's own rule).
    if (t.Status.State === 'running' && !(t.NodeID && downNodes.has(t.NodeID))) running++;
    if (t.Status.State === 'complete') completed++;
    if (isGlobal(s) && t.DesiredState === 'running') desired++;
  }
  return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
}

function checkFilters(filters: Map<string, string[]>, accepted: string[]): void {
  for (const k of filters.keys()) if (!accepted.includes(k)) throw badRequest(`invalid filter '${k}'`);
}

export function matchLabels(labels: Record<string, string> | undefined, wanted: string[]): boolean {
  return wanted.every((w) => {
    const i = w.indexOf('=');
    if (i < 0) return labels?.[w] !== undefined;
    return labels?.[w.slice(0, i)] === w.slice(i + 1);
  });
}

async function readSpec(ctx: RequestContext): Promise<ServiceSpec> {
  return ctx.body('ServiceSpec');
}

export function serviceRoutes(router: Router, managerStore: ManagerStore = notASwarmManager): void {
  router.get('/services', (ctx) => {
    const store = managerStore();
    const f = ctx.filters();
    checkFilters(f, ['name', 'id', 'label', 'mode', 'runtime']);
    let services = store.list('services');
    const names = f.get('name');
    if (names?.length) services = services.filter((s) => names.some((n) => (s.Spec.Name ?? '').startsWith(n)));
    const ids = f.get('id');
    if (ids?.length) services = services.filter((s) => ids.some((i) => s.ID.startsWith(i)));
    const labels = f.get('label');
    if (labels?.length) services = services.filter((s) => matchLabels(s.Spec.Labels, labels));
    const modes = f.get('mode');
    if (modes?.length) services = services.filter((s) => modes.includes(modeName(s.Spec)));
    services.sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : 1));
    const withStatus = ctx.bool('status');
    // Counted on the store's own objects, by service: no copy of every task per `service ls`.
    const down = new Set(withStatus ? store.view('nodes').filter((n) => n.Status.State === 'down').map((n) => n.ID) : []);
    return { body: services.map((s) => ({ ...serviceView(s), ...(withStatus ? { ServiceStatus: serviceStatus(s, store.tasksBy('service', s.ID), down) } : {}) })) };
  });

  router.get('/services/:id', (ctx) => {
    const store = managerStore();
    return { body: serviceView(findService(store, ctx.params.id), ctx.bool('insertDefaults')) };
  });

  router.post('/services/create', async (ctx) => {
    const store = managerStore();
    const spec = normalizeSpec(await readSpec(ctx));
    if (!spec.Name) spec.Name = randomName();
    validateSpec(spec);
    resolveNetworks(spec, store.list('networks'));
    const services = store.list('services');
    if (services.some((s) => s.Spec.Name === spec.Name)) {
      throw rpcError('AlreadyExists', `name conflicts with an existing object: service ${spec.Name} already exists`);
    }
    checkPortConflicts(spec, services);
    checkReferencesExist(spec, store);
    const now = new Date().toISOString();
    const service: Service = {
      ID: newSwarmId(),
      Version: { Index: 0 },
      CreatedAt: now,
      UpdatedAt: now,
      Spec: spec,
      Endpoint: { Spec: structuredClone(spec.EndpointSpec ?? {}) },
      SpecVersion: { Index: 0 },
      ...(isJob(spec) ? { JobStatus: { JobIteration: { Index: 0 }, LastExecution: now } } : {}),
    };
    await store.commit([{ kind: 'services', op: 'create', object: service }]);
    return { status: 201, body: { ID: service.ID } };
  });

  router.post('/services/:id/update', async (ctx) => {
    const store = managerStore();
    const version = versionParam(ctx.query, (raw, why) => `invalid service version '${raw}': ${why}`);
    const rollback = ctx.query.get('rollback') ?? '';
    const spec = normalizeSpec(await readSpec(ctx));
    const current = findService(store, ctx.params.id);
    validateSpec(spec);
    resolveNetworks(spec, store.list('networks'));
    if (JSON.stringify(spec.EndpointSpec ?? null) !== JSON.stringify(current.Spec.EndpointSpec ?? null)) {
      checkPortConflicts(spec, store.list('services'), current.ID);
    }
    checkReferencesExist(spec, store);
    if (modeName(spec) !== modeName(current.Spec)) throw rpcError('Unimplemented', 'service mode change is not allowed');
    if (spec.Name !== current.Spec.Name) throw rpcError('Unimplemented', 'renaming services is not supported');
    if (version !== current.Version.Index) throw rpcError('Unknown', 'update out of sequence');
    const now = new Date().toISOString();
    let next: Service;
    if (rollback === 'previous') {
      if (!current.PreviousSpec) throw rpcError('FailedPrecondition', `service ${current.ID} does not have a previous spec`);
      next = {
        ...current,
        Spec: current.PreviousSpec,
        PreviousSpec: current.Spec,
        SpecVersion: { Index: current.Version.Index },
        UpdateStatus: { State: 'rollback_started', Message: 'manually requested rollback', StartedAt: now },
        UpdatedAt: now,
      };
    } else {
      next = { ...current, Spec: spec, PreviousSpec: current.Spec, SpecVersion: { Index: current.Version.Index }, UpdatedAt: now };
      delete next.UpdateStatus;
      // Any update of a job runs it again.
      if (current.JobStatus) next.JobStatus = { JobIteration: { Index: current.JobStatus.JobIteration.Index + 1 }, LastExecution: now };
    }
    try {
      await store.commit([{ kind: 'services', op: 'update', object: next }]);
    } catch (e) {
      if (e instanceof VersionConflict) throw rpcError('Unknown', 'update out of sequence');
      throw e;
    }
    // swagger ServiceUpdateResponse: Warnings is always there (null when none), as dockerd sends it.
    return { body: { Warnings: null } };
  });

  router.delete('/services/:id', async (ctx) => {
    const store = managerStore();
    const s = findService(store, ctx.params.id);
    try {
      await store.commit([{ kind: 'services', op: 'delete', id: s.ID }]);
    } catch (e) {
      if (e instanceof VersionConflict) throw notFound(`service ${ctx.params.id} not found`);
      throw e;
    }
    return { status: 200 };
  });
}
