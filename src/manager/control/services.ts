import { randomName } from '../../util/random-name.js';
import type { Service, ServiceSpec, Task } from '../../cluster/types.js';
import { badRequest, notFound, rpcError } from '../../util/errors.js';
import { newSwarmId } from '../../util/ids.js';
import {
  checkPortConflicts,
  modeName,
  normalizeSpec,
  resolveNetworks,
  validateSpec,
} from '../orchestrator/service-spec.js';
import { isGlobal } from '../orchestrator/task.js';
import { checkReferencesExist } from '../secrets/spec.js';
import { sealRegistryAuth, updatedRegistryAuth, withRegistryAuth } from '../secrets/registry-auth.js';
import { VersionConflict, type Store } from '../store/store.js';
import { ALLOCATION_WAIT_MS, awaitAllocation } from './allocation.js';
import { acceptFilters, matchLabels, type Filters } from './filters.js';
import { checkVersion, commitVersioned } from './versioned.js';

/**
 * Services as the control plane creates, updates, rolls back, lists and removes them
 * (swarmkit manager/controlapi/service.go): every check a write must pass, and what it means.
 */

export interface ServiceControl {
  store: Store;
  /** How long a write waits for the allocator (allocation.ts); 0 answers at once. */
  allocationWaitMs?: number;
  /** The swarm's data-encryption key: seals the registry credentials a service keeps. */
  dek?: Buffer;
}

const isJob = (spec: ServiceSpec) => !!spec.Mode?.ReplicatedJob || !!spec.Mode?.GlobalJob;

/** Finds a service by full ID, then exact name, then ID prefix (moby cluster getService). */
export function getService(store: Store, input: string): Service {
  const byId = store.get('services', input);
  if (byId) return byId;
  const all = store.list('services');
  const byName = all.filter((s) => s.Spec.Name === input);
  const found = byName.length ? byName : all.filter((s) => s.ID.startsWith(input));
  if (!found.length) throw notFound(`service ${input} not found`);
  if (found.length > 1) throw badRequest(`service ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}

export const SERVICE_FILTERS = ['name', 'id', 'label', 'mode', 'runtime'] as const;

/** Services matching the filters, oldest first. */
export function listServices(store: Store, f: Filters): Service[] {
  acceptFilters(f, SERVICE_FILTERS);
  let services = store.list('services');
  const names = f.get('name');
  if (names?.length) services = services.filter((s) => names.some((n) => (s.Spec.Name ?? '').startsWith(n)));
  const ids = f.get('id');
  if (ids?.length) services = services.filter((s) => ids.some((i) => s.ID.startsWith(i)));
  const labels = f.get('label');
  if (labels?.length) services = services.filter((s) => matchLabels(s.Spec.Labels, labels));
  const modes = f.get('mode');
  if (modes?.length) services = services.filter((s) => modes.includes(modeName(s.Spec)));
  return services.sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : 1));
}

export interface ServiceStatus {
  RunningTasks: number;
  DesiredTasks: number;
  CompletedTasks: number;
}

/** Running/desired counts shown by `service ls` (controlapi ListServiceStatuses). */
export function serviceStatus(s: Service, tasks: Task[], downNodes: Set<string> = new Set()): ServiceStatus {
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

/** Every service's status, counted on the store's own objects (no copy of every task). */
export function serviceStatuses(store: Store, services: Service[]): Map<string, ServiceStatus> {
  const down = new Set(
    store
      .view('nodes')
      .filter((n) => n.Status.State === 'down')
      .map((n) => n.ID),
  );
  return new Map(services.map((s) => [s.ID, serviceStatus(s, store.tasksBy('service', s.ID), down)]));
}

/**
 * Creates a service; answers once it is allocated (allocation.ts). `registryAuth`: the
 * `X-Registry-Auth` header sent along (`--with-registry-auth`), kept with the spec; a spec
 * cannot carry credentials of its own.
 */
export async function createService(c: ServiceControl, given: ServiceSpec, registryAuth?: string): Promise<Service> {
  const { store } = c;
  const spec = withRegistryAuth(normalizeSpec(given), registryAuth ? sealRegistryAuth(c.dek, registryAuth) : undefined);
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
  await awaitAllocation(store, service.ID, c.allocationWaitMs ?? ALLOCATION_WAIT_MS);
  return service;
}

export interface UpdateServiceOptions {
  /** `previous`: back to the spec before the last update (`docker service rollback`). */
  rollback?: string;
  /** The `X-Registry-Auth` header sent along: the service's new credentials. */
  registryAuth?: string;
  /** Without a header, whose credentials stay: `spec` (the default) or `previous-spec`. */
  registryAuthFrom?: string;
}

/** Updates a service from the spec given at `version`, or rolls it back; answers once allocated. */
export async function updateService(
  c: ServiceControl,
  ref: string,
  version: number,
  given: ServiceSpec,
  opts: UpdateServiceOptions = {},
): Promise<Service> {
  const { store } = c;
  const current = getService(store, ref);
  const sealed = opts.registryAuth ? sealRegistryAuth(c.dek, opts.registryAuth) : undefined;
  const spec = withRegistryAuth(
    normalizeSpec(given),
    updatedRegistryAuth(current, sealed, opts.registryAuthFrom ?? ''),
  );
  validateSpec(spec);
  resolveNetworks(spec, store.list('networks'));
  if (JSON.stringify(spec.EndpointSpec ?? null) !== JSON.stringify(current.Spec.EndpointSpec ?? null)) {
    checkPortConflicts(spec, store.list('services'), current.ID);
  }
  checkReferencesExist(spec, store);
  if (modeName(spec) !== modeName(current.Spec)) throw rpcError('Unimplemented', 'service mode change is not allowed');
  if (spec.Name !== current.Spec.Name) throw rpcError('Unimplemented', 'renaming services is not supported');
  checkVersion(current, version);
  const next = opts.rollback === 'previous' ? rolledBack(current) : updated(current, spec);
  await commitVersioned(store, 'services', version, current, next);
  await awaitAllocation(store, current.ID, c.allocationWaitMs ?? ALLOCATION_WAIT_MS);
  return next;
}

/** The service back at its previous spec (controlapi UpdateService with Rollback). */
function rolledBack(current: Service): Service {
  if (!current.PreviousSpec)
    throw rpcError('FailedPrecondition', `service ${current.ID} does not have a previous spec`);
  const now = new Date().toISOString();
  return {
    ...current,
    Spec: current.PreviousSpec,
    PreviousSpec: current.Spec,
    SpecVersion: { Index: current.Version.Index },
    UpdateStatus: { State: 'rollback_started', Message: 'manually requested rollback', StartedAt: now },
    UpdatedAt: now,
  };
}

/** The service at a new spec; the orchestrator rolls its tasks to it. */
function updated(current: Service, spec: ServiceSpec): Service {
  const now = new Date().toISOString();
  const next: Service = {
    ...current,
    Spec: spec,
    PreviousSpec: current.Spec,
    SpecVersion: { Index: current.Version.Index },
    UpdatedAt: now,
  };
  delete next.UpdateStatus;
  // Any update of a job runs it again.
  if (current.JobStatus)
    next.JobStatus = { JobIteration: { Index: current.JobStatus.JobIteration.Index + 1 }, LastExecution: now };
  return next;
}

/** Removes a service; its tasks are the orchestrator's to shut down. */
export async function removeService(store: Store, ref: string): Promise<void> {
  const s = getService(store, ref);
  try {
    await store.commit([{ kind: 'services', op: 'delete', id: s.ID }]);
  } catch (e) {
    if (e instanceof VersionConflict) throw notFound(`service ${ref} not found`);
    throw e;
  }
}
