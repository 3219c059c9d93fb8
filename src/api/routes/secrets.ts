import type { Router } from '../router.js';
import type { RequestContext } from '../context.js';
import type { Config, ConfigSpec, Secret, SecretSpec } from '../../cluster/types.js';
import { VersionConflict, type Store } from '../../manager/store/store.js';
import { badRequest, notFound } from '../../util/errors.js';
import { newSwarmId } from '../../util/ids.js';
import { versionParam } from '../query.js';
import { rpcError } from '../../manager/orchestrator/service-spec.js';
import { checkNotInUse, specData, validateFileSpec, type FileKind } from '../../manager/secrets/spec.js';
import { openSecretData, sealSecretData } from '../../manager/secrets/seal.js';
import { matchLabels } from './services.js';

/** The manager's store and the swarm's data-encryption key; throws Docker's 503 off managers. */
export type SecretsAccess = () => { store: Store; dek?: Buffer };

type Spec = SecretSpec & ConfigSpec;
type FileObject = Secret | Config;
const KIND = { secret: 'secrets', config: 'configs' } as const;

/** By full ID, then exact name, then ID prefix (moby daemon/cluster getSecret / getConfig). */
function find(kind: FileKind, store: Store, input: string): FileObject {
  const byId = store.get(KIND[kind], input);
  if (byId) return byId;
  const all: FileObject[] = store.list(KIND[kind]);
  const byName = all.filter((o) => o.Spec.Name === input);
  const found = byName.length ? byName : all.filter((o) => o.ID.startsWith(input));
  if (!found.length) throw notFound(`${kind} ${input} not found`);
  if (found.length > 1) throw badRequest(`${kind} ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}

/** What the API shows: a secret never shows its data, a config does. */
function view(kind: FileKind, o: FileObject): FileObject {
  const spec: Spec = { ...o.Spec, Labels: o.Spec.Labels ?? {} };
  if (kind === 'secret') delete spec.Data;
  return { ...o, Spec: spec };
}

async function readSpec(ctx: RequestContext, kind: FileKind): Promise<Spec> {
  return kind === 'secret' ? await ctx.body('SecretSpec') : await ctx.body('ConfigSpec');
}

/** `/secrets` and `/configs` (swagger Secret*, Config*); both are manager-only. */
export function secretRoutes(router: Router, access: SecretsAccess): void {
  fileObjectRoutes(router, 'secret', access);
  fileObjectRoutes(router, 'config', access);
}

function fileObjectRoutes(router: Router, kind: FileKind, access: SecretsAccess): void {
  const base = `/${KIND[kind]}`;
  /** The stored data as bytes (a secret's is sealed). */
  const bytesOf = (o: FileObject, dek: Buffer | undefined) =>
    kind === 'secret' ? openSecretData(dek, o.Spec.Data ?? '') : Buffer.from(o.Spec.Data ?? '', 'base64');

  router.get(base, (ctx) => {
    const { store } = access();
    const f = ctx.filters();
    for (const k of f.keys()) if (!['names', 'name', 'id', 'label'].includes(k)) throw badRequest(`invalid filter '${k}'`);
    const names = f.get('names') ?? [];
    const prefixes = f.get('name') ?? [];
    const ids = f.get('id') ?? [];
    const labels = f.get('label') ?? [];
    let list: FileObject[] = store.list(KIND[kind]);
    // Names, name prefixes and ID prefixes are alternatives (swarmkit ORs them); labels narrow.
    if (names.length || prefixes.length || ids.length) {
      list = list.filter((o) => names.includes(o.Spec.Name ?? '') || prefixes.some((p) => (o.Spec.Name ?? '').startsWith(p)) || ids.some((i) => o.ID.startsWith(i)));
    }
    if (labels.length) list = list.filter((o) => matchLabels(o.Spec.Labels, labels));
    list.sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : 1));
    return { body: list.map((o) => view(kind, o)) };
  });

  router.get(`${base}/:id`, (ctx) => {
    const { store } = access();
    return { body: view(kind, find(kind, store, ctx.params.id)) };
  });

  router.post(`${base}/create`, async (ctx) => {
    const { store, dek } = access();
    const spec = await readSpec(ctx, kind);
    validateFileSpec(kind, spec);
    if (store.list(KIND[kind]).some((o: FileObject) => o.Spec.Name === spec.Name)) throw rpcError('AlreadyExists', `${kind} ${spec.Name} already exists`);
    const now = new Date().toISOString();
    const stored: Spec = { ...spec, Labels: spec.Labels ?? {} };
    if (kind === 'secret') stored.Data = sealSecretData(dek, specData(spec).toString('base64'));
    const object: FileObject = { ID: newSwarmId(), Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now, Spec: stored };
    await store.commit([{ kind: KIND[kind], op: 'create', object }]);
    return { status: 201, body: { ID: object.ID } };
  });

  router.post(`${base}/:id/update`, async (ctx) => {
    const { store, dek } = access();
    const spec = await readSpec(ctx, kind);
    const version = versionParam(ctx.query, () => `invalid ${kind} version`);
    const current = find(kind, store, ctx.params.id);
    // Only labels change (swarmkit UpdateSecret / UpdateConfig): data and name are fixed.
    const dataChanged = spec.Data !== undefined && spec.Data !== '' && !specData(spec).equals(bytesOf(current, dek));
    if (spec.Name !== current.Spec.Name || dataChanged) throw rpcError('InvalidArgument', 'only updates to Labels are allowed');
    if (version !== current.Version.Index) throw rpcError('Unknown', 'update out of sequence');
    const next: FileObject = { ...current, Spec: { ...current.Spec, Labels: spec.Labels ?? {} } };
    try {
      await store.commit([{ kind: KIND[kind], op: 'update', object: next }]);
    } catch (e) {
      if (e instanceof VersionConflict) throw rpcError('Unknown', 'update out of sequence');
      throw e;
    }
    return { body: {} };
  });

  router.delete(`${base}/:id`, async (ctx) => {
    const { store } = access();
    const o = find(kind, store, ctx.params.id);
    checkNotInUse(kind, o, store.list('services'));
    await store.commit([{ kind: KIND[kind], op: 'delete', id: o.ID }]);
    return { status: 204 };
  });
}
