import type { Router } from '../router.js';
import type { RequestContext } from '../context.js';
import type { Engine } from '../../engine/engine.js';
import { badRequest, notImplemented } from '../../util/errors.js';
import { ProgressStream } from '../../engine/images/progress.js';
import { parseReference, withDefaultTag, isSha256Digest } from '../../engine/images/reference.js';
import { decodeRegistryAuth } from '../../engine/images/registry.js';
import { checkLogin } from '../../engine/images/login.js';
import { pullAllTags, pullImage } from '../../engine/images/pull.js';
import { pushImage } from '../../engine/images/push.js';
import { importImage, importTarget } from '../../engine/images/importer.js';
import { applyChanges } from '../../engine/images/changes.js';
import { loadImages, saveImages } from '../../engine/images/archive.js';
import { inspectDistribution, swarmImageDistribution } from '../../engine/images/distribution.js';
import type { ImageReference } from '../../engine/images/reference.js';

/** The image ID a reference means among the swarm's nodes (managers only; undefined: none holds it). */
export type SwarmImageLookup = (ref: ImageReference) => string | undefined;

/**
 * Runs an operation that reports through a JSON progress stream. Errors before the first
 * line are ordinary HTTP errors; later ones go into the stream as `errorDetail`, as dockerd does.
 */
async function withProgress(ctx: RequestContext, op: (p: ProgressStream) => Promise<void>): Promise<void> {
  const progress = new ProgressStream(() => ctx.stream(200, 'application/json'));
  try {
    await op(progress);
  } catch (e) {
    if (!progress.started) throw e;
    progress.error((e as Error).message);
  }
  progress.end();
}

/** `docker pull/push/import/load/save/tag/rmi/images/image inspect/history/image prune/login`, and the digest lookup of `service create`. */
export function imageRoutes(router: Router, engine: Engine, swarmImage?: SwarmImageLookup): void {
  imageTransferRoutes(router, engine.images);
  localImageRoutes(router, engine.images, swarmImage);
}

/** Images in and out of the store: pull and import, load, save. */
function imageTransferRoutes(router: Router, store: Engine['images']): void {
  router.post('/images/create', async (ctx) => {
    const fromImage = ctx.query.get('fromImage') ?? '';
    const fromSrc = ctx.query.get('fromSrc') ?? '';
    const tag = ctx.query.get('tag') ?? '';
    const platform = ctx.query.get('platform') ?? '';
    if (platform && !/^linux(\/amd64)?(\/.*)?$/.test(platform.toLowerCase()))
      throw badRequest(`platform ${platform} is not supported by this node (linux/amd64)`);
    if (fromImage) {
      let ref = parseReference(fromImage);
      const auth = decodeRegistryAuth(ctx.req.headers['x-registry-auth'] as string | undefined);
      // No tag anywhere: every tag, as `docker pull --all-tags` asks (the CLI always names one otherwise).
      if (!tag && ref.tag === undefined && ref.digest === undefined)
        return withProgress(ctx, (p) => pullAllTags(store, ref, auth, p));
      if (tag)
        ref = isSha256Digest(tag)
          ? { domain: ref.domain, path: ref.path, digest: tag }
          : { domain: ref.domain, path: ref.path, tag };
      ref = withDefaultTag(ref);
      if (ref.tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(ref.tag)) throw badRequest('invalid tag format');
      return withProgress(ctx, (p) => pullImage(store, ref, auth, p));
    }
    if (fromSrc) {
      if (fromSrc !== '-')
        throw notImplemented('importing from a URL is not supported; send the tarball in the request body (fromSrc=-)');
      const repo = ctx.query.get('repo') ?? '';
      const changes = ctx.query.getAll('changes');
      // Bad names or changes are a 400 before a single byte is stored.
      importTarget(repo, tag);
      applyChanges({}, changes);
      const message = ctx.query.get('message') ?? '';
      return withProgress(ctx, async (p) => {
        const id = await importImage(store, ctx.req, { repo, tag, message, changes });
        p.write({ status: id });
      });
    }
    throw badRequest('either fromImage or fromSrc is required');
  });

  // dockerd answers a load 200 at once and reports any failure, a bad archive too, in the stream.
  router.post('/images/load', async (ctx) => {
    const progress = new ProgressStream(() => ctx.stream(200, 'application/json'));
    try {
      await loadImages(store, ctx.req, progress);
    } catch (e) {
      progress.error((e as Error).message);
    }
    progress.end();
  });

  router.get('/images/get', async (ctx) => {
    const names = ctx.query
      .getAll('names')
      .flatMap((n) => n.split(','))
      .filter(Boolean);
    for (const n of names) store.lookup(n);
    await saveImages(store, names, ctx.stream(200, 'application/x-tar'));
  });
}

/** The store's own images: list, prune, inspect, history, tag, push, rmi; login and the digest lookup. */
function localImageRoutes(router: Router, store: Engine['images'], swarmImage?: SwarmImageLookup): void {
  router.get('/images/json', (ctx) => ({ body: store.list(ctx.filters()) }));

  router.post('/images/prune', (ctx) => {
    const filters = ctx.filters();
    const dangling = filters.get('dangling')?.[0];
    for (const k of filters.keys()) if (k !== 'dangling') throw badRequest(`invalid filter '${k}'`);
    return { body: store.prune(dangling === 'false' || dangling === '0') };
  });

  router.get('/images/:name*/json', (ctx) => ({ body: store.inspect(ctx.params.name) }));

  router.get('/images/:name*/history', (ctx) => ({ body: store.history(ctx.params.name) }));

  router.get('/images/:name*/get', async (ctx) => {
    store.lookup(ctx.params.name);
    await saveImages(store, [ctx.params.name], ctx.stream(200, 'application/x-tar'));
  });

  router.post('/images/:name*/tag', (ctx) => {
    store.tag(ctx.params.name, ctx.query.get('repo') ?? '', ctx.query.get('tag') ?? '');
    return { status: 201 };
  });

  router.post('/images/:name*/push', async (ctx) => {
    const name = ctx.params.name;
    parseReference(name);
    const auth = decodeRegistryAuth(ctx.req.headers['x-registry-auth'] as string | undefined);
    return withProgress(ctx, (p) => pushImage(store, name, ctx.query.get('tag') ?? '', auth, p));
  });

  // `docker login`: checks the credentials against the registry; the CLI stores them itself.
  router.post('/auth', async (ctx) => ({ body: await checkLogin(store, await ctx.body('AuthConfig')) }));

  router.get('/distribution/:name*/json', async (ctx) => {
    const ref = withDefaultTag(parseReference(ctx.params.name));
    const auth = decodeRegistryAuth(ctx.req.headers['x-registry-auth'] as string | undefined);
    try {
      return { body: await inspectDistribution(store, ref, auth) };
    } catch (e) {
      // No registry has it: an image of this node or of another swarm node (loaded there) still
      // pins; never one pulled with credentials (the registry just refused this caller).
      const local = store.find(ctx.params.name)?.image;
      const id = (local && !local.record.private ? local.id : undefined) ?? swarmImage?.(ref);
      if (!id) throw e;
      return { body: swarmImageDistribution(store, id) };
    }
  });

  router.delete('/images/:name*', (ctx) => ({
    body: store.remove(ctx.params.name, ctx.bool('force'), !ctx.bool('noprune')),
  }));
}
