import type { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';

/** `docker volume create / ls / inspect / rm / prune` (local volumes of this node). */
export function volumeRoutes(router: Router, engine: Engine): void {
  const v = engine.volumes;

  router.get('/volumes', (ctx) => ({ body: { Volumes: v.list(ctx.filters()), Warnings: null } }));

  router.post('/volumes/create', async (ctx) => {
    ctx.checkForJson();
    const body = await ctx.body('VolumeCreateBody');
    const created = v.create({ name: body.Name, driver: body.Driver, options: body.DriverOpts, labels: body.Labels });
    return { status: 201, body: created };
  });

  router.post('/volumes/prune', async (ctx) => ({ body: await v.prune(ctx.filters(), ctx.apiVersion) }));

  router.get('/volumes/:name', (ctx) => ({ body: v.get(ctx.params.name) }));

  router.delete('/volumes/:name', async (ctx) => {
    await v.remove(ctx.params.name, ctx.bool('force'));
    return { status: 204 };
  });
}
