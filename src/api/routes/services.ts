import type { Router } from '../router.js';
import type { Service, ServiceSpec } from '../../cluster/types.js';
import type { Store } from '../../manager/store/store.js';
import { ApiError } from '../../util/errors.js';
import { versionParam } from '../query.js';
import {
  createService,
  getService,
  listServices,
  removeService,
  serviceStatuses,
  updateService,
} from '../../manager/control/services.js';
import { withoutRegistryAuth } from '../../manager/secrets/registry-auth.js';

/**
 * The store of the swarm this node manages. Throws Docker's 503 when the node is not in a
 * swarm, or is a worker (the swarm wiring decides which).
 */
export type ManagerStore = () => Store;

export const notASwarmManager: ManagerStore = () => {
  throw new ApiError(
    503,
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
  );
};

/** A service as the Engine API shows it. */
export function serviceView(s: Service, insertDefaults = false): Record<string, unknown> {
  // SpecVersion is shoal's own bookkeeping, not part of Docker's Service.
  const out: Record<string, unknown> = { ...s, Endpoint: s.Endpoint ?? { Spec: {} } };
  delete out.SpecVersion;
  // The registry credentials stay inside the swarm, as dockerd never shows them.
  const spec = withoutRegistryAuth(s.Spec);
  if (s.PreviousSpec) out.PreviousSpec = withoutRegistryAuth(s.PreviousSpec);
  // Docker's TaskSpec.ForceUpdate has no omitempty: inspect always shows it, 0 until forced.
  out.Spec = insertDefaults
    ? withDefaults(spec)
    : { ...spec, TaskTemplate: { ...spec.TaskTemplate, ForceUpdate: spec.TaskTemplate?.ForceUpdate ?? 0 } };
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
    const upd = {
      Parallelism: 1,
      FailureAction: 'pause' as const,
      Monitor: 5e9,
      MaxFailureRatio: 0,
      Order: 'stop-first' as const,
    };
    s.UpdateConfig = { ...upd, ...(s.UpdateConfig ?? {}) };
    s.RollbackConfig = { ...upd, ...(s.RollbackConfig ?? {}) };
  }
  s.EndpointSpec = { Mode: 'vip', ...(s.EndpointSpec ?? {}) };
  return s;
}

/** The `X-Registry-Auth` header as the CLI sent it (base64url JSON), kept as it is (dockerd does). */
const registryAuthHeader = (h: string | string[] | undefined) => (typeof h === 'string' && h.trim()) || undefined;

/** `dek`: the swarm's data-encryption key, which seals a service's registry credentials. */
export function serviceRoutes(
  router: Router,
  managerStore: ManagerStore = notASwarmManager,
  dek: () => Buffer | undefined = () => undefined,
): void {
  router.get('/services', (ctx) => {
    const store = managerStore();
    const services = listServices(store, ctx.filters());
    const statuses = ctx.bool('status') ? serviceStatuses(store, services) : undefined;
    return {
      body: services.map((s) => ({ ...serviceView(s), ...(statuses ? { ServiceStatus: statuses.get(s.ID) } : {}) })),
    };
  });

  router.get('/services/:id', (ctx) => {
    const store = managerStore();
    return { body: serviceView(getService(store, ctx.params.id), ctx.bool('insertDefaults')) };
  });

  router.post('/services/create', async (ctx) => {
    const store = managerStore();
    const auth = registryAuthHeader(ctx.req.headers['x-registry-auth']);
    const service = await createService({ store, dek: dek() }, await ctx.body('ServiceSpec'), auth);
    return { status: 201, body: { ID: service.ID } };
  });

  router.post('/services/:id/update', async (ctx) => {
    const store = managerStore();
    const version = versionParam(ctx.query, (raw, why) => `invalid service version '${raw}': ${why}`);
    const rollback = ctx.query.get('rollback') ?? '';
    await updateService({ store, dek: dek() }, ctx.params.id, version, await ctx.body('ServiceSpec'), {
      rollback,
      registryAuth: registryAuthHeader(ctx.req.headers['x-registry-auth']),
      registryAuthFrom: ctx.query.get('registryAuthFrom') ?? '',
    });
    // swagger ServiceUpdateResponse: Warnings is always there (null when none), as dockerd sends it.
    return { body: { Warnings: null } };
  });

  router.delete('/services/:id', async (ctx) => {
    await removeService(managerStore(), ctx.params.id);
    return { status: 200 };
  });
}
