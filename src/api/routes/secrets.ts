import type { Router } from '../router.js';
import type { RequestContext } from '../context.js';
import type { Store } from '../../manager/store/store.js';
import { versionParam } from '../query.js';
import {
  createFileObject,
  FILE_KINDS,
  getFileObject,
  listFileObjects,
  removeFileObject,
  updateFileObject,
  type FileKind,
  type FileObject,
  type FileSpec,
} from '../../manager/control/secrets.js';

/** The manager's store and the swarm's data-encryption key; throws Docker's 503 off managers. */
export type SecretsAccess = () => { store: Store; dek?: Buffer };

/** What the API shows: a secret never shows its data, a config does. */
function view(kind: FileKind, o: FileObject): FileObject {
  const spec: FileSpec = { ...o.Spec, Labels: o.Spec.Labels ?? {} };
  if (kind === 'secret') delete spec.Data;
  return { ...o, Spec: spec };
}

async function readSpec(ctx: RequestContext, kind: FileKind): Promise<FileSpec> {
  return kind === 'secret' ? await ctx.body('SecretSpec') : await ctx.body('ConfigSpec');
}

/** `/secrets` and `/configs` (swagger Secret*, Config*); both are manager-only. */
export function secretRoutes(router: Router, access: SecretsAccess): void {
  fileObjectRoutes(router, 'secret', access);
  fileObjectRoutes(router, 'config', access);
}

function fileObjectRoutes(router: Router, kind: FileKind, access: SecretsAccess): void {
  const base = `/${FILE_KINDS[kind]}`;

  router.get(base, (ctx) => ({ body: listFileObjects(kind, access().store, ctx.filters()).map((o) => view(kind, o)) }));

  router.get(`${base}/:id`, (ctx) => ({ body: view(kind, getFileObject(kind, access().store, ctx.params.id)) }));

  router.post(`${base}/create`, async (ctx) => {
    const c = access();
    const object = await createFileObject(kind, c, await readSpec(ctx, kind));
    return { status: 201, body: { ID: object.ID } };
  });

  router.post(`${base}/:id/update`, async (ctx) => {
    const c = access();
    const spec = await readSpec(ctx, kind);
    const version = versionParam(ctx.query, () => `invalid ${kind} version`);
    await updateFileObject(kind, c, ctx.params.id, version, spec);
    return { body: {} };
  });

  router.delete(`${base}/:id`, async (ctx) => {
    await removeFileObject(kind, access().store, ctx.params.id);
    return { status: 204 };
  });
}
