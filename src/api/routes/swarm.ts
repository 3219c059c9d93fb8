import type { Router } from '../router.js';
import type { SwarmNode } from '../../node/node.js';
import type { RootCAMaterial } from '../../manager/ca/root-ca.js';
import { getCluster, updateSwarm } from '../../manager/control/swarm.js';
import { versionParam } from '../query.js';

/** `docker swarm init / join / leave / inspect / update / join-token`. */
export function swarmRoutes(router: Router, swarm: SwarmNode): void {
  router.post('/swarm/init', async (ctx) => {
    const req = await ctx.body('SwarmInitRequest');
    const nodeId = await swarm.init(req);
    // A JSON string, as dockerd answers (a raw string body would be sent as text).
    return { body: JSON.stringify(nodeId) + '\n', headers: { 'Content-Type': 'application/json' } };
  });

  router.post('/swarm/join', async (ctx) => {
    await swarm.join(await ctx.body('SwarmJoinRequest'));
    return { status: 200 };
  });

  router.post('/swarm/leave', async (ctx) => {
    await swarm.leave(ctx.bool('force'));
    return { status: 200 };
  });

  router.get('/swarm', () => ({ body: getCluster(swarm.requireManager().store) }));

  router.post('/swarm/update', async (ctx) => {
    const m = swarm.requireManager();
    const spec = await ctx.body('SwarmSpec');
    const version = versionParam(ctx.query, (raw, why) => `invalid swarm version '${raw}': ${why}`);
    const control = {
      store: m.store,
      rotateRootCA: (next: RootCAMaterial) => m.rotateRootCA(next),
      setUnlockKey: (key: Buffer | undefined) => swarm.setUnlockKey(key),
    };
    await updateSwarm(control, version, spec, {
      rotateWorkerToken: ctx.bool('rotateWorkerToken'),
      rotateManagerToken: ctx.bool('rotateManagerToken'),
      rotateManagerUnlockKey: ctx.bool('rotateManagerUnlockKey'),
    });
    return { status: 200 };
  });

  router.get('/swarm/unlockkey', async () => ({ body: { UnlockKey: await swarm.unlockKey() } }));

  router.post('/swarm/unlock', async (ctx) => {
    const req = await ctx.body('SwarmUnlockRequest');
    await swarm.unlock(req.UnlockKey ?? '');
    return { status: 200 };
  });
}
