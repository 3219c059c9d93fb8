import type { Router } from '../router.js';
import type { SwarmNode } from '../../node/node.js';
import { mergeClusterSpec } from '../../node/node.js';
import { createRootCA } from '../../manager/ca/root-ca.js';
import { generateJoinToken } from '../../manager/ca/tokens.js';
import { VersionConflict } from '../../manager/store/store.js';
import { ApiError, badRequest } from '../../util/errors.js';
import { newUnlockKey } from '../../manager/ca/unlock-key.js';
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

  router.get('/swarm', () => {
    const m = swarm.requireManager();
    const c = m.store.list('cluster')[0];
    if (!c) throw new ApiError(503, 'swarm cluster object missing');
    return { body: c };
  });

  router.post('/swarm/update', async (ctx) => {
    const m = swarm.requireManager();
    const spec = await ctx.body('SwarmSpec');
    const version = versionParam(ctx.query, (raw, why) => `invalid swarm version '${raw}': ${why}`);
    const c = m.store.list('cluster')[0];
    if (!c) throw new ApiError(503, 'swarm cluster object missing');
    if (c.Version.Index !== version) throw new ApiError(500, 'rpc error: code = Unknown desc = update out of sequence');
    const next = structuredClone(c);
    // The name is fixed ("default"); everything else comes from the client, defaults where unset.
    next.Spec = { ...mergeClusterSpec(c.Spec, spec), Name: c.Spec.Name, Labels: spec.Labels ?? c.Spec.Labels };
    // Autolock: a new unlock key when it turns on or is rotated (only while on), none when off.
    const wasLocked = !!c.Spec.EncryptionConfig?.AutoLockManagers;
    const autolock = !!next.Spec.EncryptionConfig?.AutoLockManagers;
    const newKey = autolock && (!wasLocked || ctx.bool('rotateManagerUnlockKey'));
    // Join tokens name the root the cluster shows; during a rotation that is still the old one.
    const root = c.TLSInfo.TrustRoot;
    const forceRotate = spec.CAConfig?.ForceRotate ?? 0;
    if (forceRotate !== (c.Spec.CAConfig?.ForceRotate ?? 0) || spec.CAConfig?.SigningCACert) {
      if (spec.CAConfig?.SigningCACert) throw badRequest('external or provided signing CA certificates are not supported; use --rotate alone');
      // swarm ca --rotate: the CA signs with a new root from now on; the cluster goes on showing
      // the old root and its join tokens until every node holds a certificate from the new one
      // (ca/rotation.ts then switches both, as SwarmKit's finishRootRotation).
      await m.rotateRootCA(await createRootCA());
      next.RootRotationInProgress = true;
    }
    if (ctx.bool('rotateWorkerToken')) next.JoinTokens.Worker = generateJoinToken(root);
    if (ctx.bool('rotateManagerToken')) next.JoinTokens.Manager = generateJoinToken(root);
    try {
      await m.store.commit([{ kind: 'cluster', op: 'update', object: next }]);
    } catch (e) {
      if (e instanceof VersionConflict) throw new ApiError(500, 'rpc error: code = Unknown desc = update out of sequence');
      throw e;
    }
    if (newKey) await swarm.setUnlockKey(newUnlockKey());
    else if (wasLocked && !autolock) await swarm.setUnlockKey(undefined);
    return { status: 200 };
  });

  router.get('/swarm/unlockkey', async () => ({ body: { UnlockKey: await swarm.unlockKey() } }));

  router.post('/swarm/unlock', async (ctx) => {
    const req = await ctx.body('SwarmUnlockRequest');
    await swarm.unlock(req.UnlockKey ?? '');
    return { status: 200 };
  });
}
