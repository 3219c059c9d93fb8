import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Router } from '../router.js';
import type { RequestContext } from '../context.js';
import type { Engine } from '../../engine/engine.js';
import { badRequest, conflict, forbidden } from '../../util/errors.js';
import {
  archiveHostPath,
  changesLayer,
  exportRoot,
  extractInto,
  statInRoot,
  upperChanges,
} from '../../engine/containers/files.js';
import { commitLayer } from '../../engine/images/commit.js';
import { importTarget } from '../../engine/images/importer.js';
import { applyChanges } from '../../engine/images/changes.js';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';
/** docker cp sees a running container as its processes do, volumes and binds included; export and commit see only its root. */
const LIVE = { live: true };

function archivePath(ctx: RequestContext): string {
  const p = ctx.query.get('path');
  if (!p) throw badRequest('Bad parameter: path cannot be empty');
  // Container paths are relative to its root.
  return p.startsWith('/') ? p : '/' + p;
}

/** Streams `body` as the response; an error after the headers can only cut the stream. */
async function sendTar(
  ctx: RequestContext,
  body: NodeJS.ReadableStream,
  headers: Record<string, string> = {},
): Promise<void> {
  for (const [k, v] of Object.entries(headers)) ctx.res?.setHeader(k, v);
  const res = ctx.stream(200, 'application/x-tar');
  await pipeline(body, res).catch(() => res.destroy());
}

/** `docker cp`, `docker diff`, `docker export`, `docker commit`: a container's files. */
export function containerFileRoutes(router: Router, engine: Engine): void {
  archiveRoutes(router, engine.containers);
  snapshotRoutes(router, engine);
}

/** `docker cp`: stat, read and write a path in a container. */
function archiveRoutes(router: Router, m: Engine['containers']): void {
  router.head('/containers/:id/archive', async (ctx) => {
    const p = archivePath(ctx);
    const stat = await m.withRootfs(ctx.params.id, async (root) => statInRoot(root, p, ctx.params.id).stat, LIVE);
    return {
      status: 200,
      body: '',
      headers: {
        [STAT_HEADER]: Buffer.from(JSON.stringify(stat)).toString('base64'),
        'Content-Type': 'application/json',
      },
    };
  });

  router.get('/containers/:id/archive', async (ctx) => {
    const p = archivePath(ctx);
    await m.withRootfs(
      ctx.params.id,
      async (root, rec) => {
        const { host, stat } = statInRoot(root, p, ctx.params.id);
        m.event(rec, 'archive-path');
        await sendTar(ctx, archiveHostPath(host, p), {
          [STAT_HEADER]: Buffer.from(JSON.stringify(stat)).toString('base64'),
        });
      },
      LIVE,
    );
  });

  router.put('/containers/:id/archive', async (ctx) => {
    const p = archivePath(ctx);
    const rec = m.get(ctx.params.id);
    // The API's 403: "the volume or container rootfs is marked as read-only".
    if (rec.hostConfig.ReadonlyRootfs) throw forbidden('container rootfs is marked read-only');
    await m.withRootfs(
      rec.id,
      async (root) => {
        const { host, stat } = statInRoot(root, p.endsWith('/') ? p : p + '/', ctx.params.id);
        if (stat.mode < 2 ** 31) throw badRequest('extraction point is not a directory');
        await extractInto(root, '/' + path.relative(root, host), ctx.req, {
          copyUidGid: ctx.bool('copyUIDGID'),
          noOverwriteDirNonDir: ctx.bool('noOverwriteDirNonDir'),
        });
        m.event(rec, 'extract-to-dir');
      },
      LIVE,
    );
    return { status: 200, body: '' };
  });
}

/** `docker diff`, `docker export`, `docker commit`: a container's root as a whole. */
function snapshotRoutes(router: Router, engine: Engine): void {
  const m = engine.containers;

  router.get('/containers/:id/changes', async (ctx) => {
    const { upper, lower } = await m.layers(ctx.params.id);
    const changes = await upperChanges(upper, lower);
    return { body: changes.length ? changes.map((c) => ({ Path: c.Path, Kind: c.Kind })) : null };
  });

  router.get('/containers/:id/export', async (ctx) => {
    await m.withRootfs(ctx.params.id, async (root, rec) => {
      m.event(rec, 'export');
      await sendTar(ctx, exportRoot(root));
    });
  });

  router.post('/commit', async (ctx) => {
    ctx.checkForJson();
    const ref = ctx.query.get('container') ?? '';
    const rec = m.get(ref);
    if (rec.state.Status === 'removing') throw conflict(`You cannot commit container ${rec.id} which is being removed`);
    const changes = ctx.query.getAll('changes').flatMap((c) => c.split('\n'));
    const target = importTarget(ctx.query.get('repo') ?? undefined, ctx.query.get('tag') ?? undefined);
    applyChanges({}, changes); // bad changes are a 400 before anything is stored
    const override = await ctx.body('ContainerConfig');
    // dockerd pauses a running container unless pause=false, so the layer is one moment's.
    let pause = ctx.bool('pause', true) && rec.state.Status === 'running';
    // An exit between the check and the pause leaves nothing to pause: commit as stopped.
    if (pause)
      await m.pause(rec.id).catch((e) => {
        if (!/container not running/.test((e as Error).message)) throw e;
        pause = false;
      });
    try {
      const { upper, lower } = await m.layers(rec.id);
      const diff = await upperChanges(upper, lower);
      const id = await commitLayer(engine.images, changesLayer(diff), {
        parentId: rec.imageId,
        containerConfig: rec.config,
        override: override ?? undefined,
        changes,
        author: ctx.query.get('author') ?? undefined,
        comment: ctx.query.get('comment') ?? undefined,
        createdBy: [rec.path, ...rec.args].join(' '),
        target,
      });
      m.event(rec, 'commit', {
        comment: ctx.query.get('comment') ?? '',
        imageID: id,
        imageRef: target ? `${target.path}:${target.tag}` : '',
      });
      return { status: 201, body: { Id: id } };
    } finally {
      if (pause) await m.unpause(rec.id).catch(() => undefined);
    }
  });
}
