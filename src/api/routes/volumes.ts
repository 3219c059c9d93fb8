import type { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';
import { badRequest } from '../../util/errors.js';

/** `docker volume create / ls / inspect / rm / prune` (local volumes of this node). */
export function volumeRoutes(router: Router, engine: Engine): void {
  const v = engine.volumes;

  router.get('/volumes', (ctx) => ({ body: { Volumes: v.list(ctx.filters()), Warnings: null } }));

  router.post('/volumes/create', async (ctx) => {
    const body = await ctx.json<{ Name?: string; Driver?: string; DriverOpts?: Record<string, string> | null; Labels?: Record<string, string> | null }>();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('invalid JSON: volume config must be an object');
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
