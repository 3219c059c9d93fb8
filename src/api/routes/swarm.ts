import type { Router } from '../router.js';
import type { SwarmNode, InitRequest, JoinRequest } from '../../cluster/swarm-node.js';
import { mergeClusterSpec, tlsInfo } from '../../cluster/swarm-node.js';
import { createRootCA } from '../../manager/ca/root-ca.js';
import type { ClusterSpec } from '../../cluster/types.js';
import { generateJoinToken } from '../../manager/ca/tokens.js';
import { VersionConflict } from '../../manager/store/store.js';
import { ApiError, badRequest, notImplemented } from '../../util/errors.js';

/** `docker swarm init / join / leave / inspect / update / join-token`. */
export function swarmRoutes(router: Router, swarm: SwarmNode): void {
  router.post('/swarm/init', async (ctx) => {
    const req = await ctx.json<InitRequest>();
    const nodeId = await swarm.init(req);
    // A JSON string, as dockerd answers (a raw string body would be sent as text).
    return { body: JSON.stringify(nodeId) + '\n', headers: { 'Content-Type': 'application/json' } };
  });

  router.post('/swarm/join', async (ctx) => {
    await swarm.join(await ctx.json<JoinRequest>());
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
    const spec = await ctx.json<ClusterSpec>();
    const version = ctx.query.get('version');
    if (version === null || !/^\d+$/.test(version)) throw badRequest(`invalid swarm version '${version ?? ''}': must be a number`);
    const c = m.store.list('cluster')[0];
    if (!c) throw new ApiError(503, 'swarm cluster object missing');
    if (c.Version.Index !== Number(version)) throw new ApiError(500, 'rpc error: code = Unknown desc = update out of sequence');
    const next = structuredClone(c);
    // The name is fixed ("default"); everything else comes from the client, defaults where unset.
    next.Spec = { ...mergeClusterSpec(c.Spec, spec), Name: c.Spec.Name, Labels: spec.Labels ?? c.Spec.Labels };
    // Autolock needs encrypted manager keys and `swarm unlock`: not built yet. Refuse rather
    // than report a lock that does not exist.
    if (spec.EncryptionConfig?.AutoLockManagers) throw notImplemented('autolock (swarm update --autolock) is not supported by this daemon yet');
    let root = c.TLSInfo.TrustRoot;
    const forceRotate = spec.CAConfig?.ForceRotate ?? 0;
    if (forceRotate !== (c.Spec.CAConfig?.ForceRotate ?? 0) || spec.CAConfig?.SigningCACert) {
      if (spec.CAConfig?.SigningCACert) throw badRequest('external or provided signing CA certificates are not supported; use --rotate alone');
      // swarm ca --rotate: a new root; both join tokens follow it (their digest names the root).
      const next2 = await createRootCA();
      await m.rotateRootCA(next2);
      root = next2.certPem;
      next.TLSInfo = tlsInfo(root);
      next.RootRotationInProgress = true;
      next.JoinTokens = { Worker: generateJoinToken(root), Manager: generateJoinToken(root) };
    }
    if (ctx.bool('rotateWorkerToken')) next.JoinTokens.Worker = generateJoinToken(root);
    if (ctx.bool('rotateManagerToken')) next.JoinTokens.Manager = generateJoinToken(root);
    try {
      await m.store.commit([{ kind: 'cluster', op: 'update', object: next }]);
    } catch (e) {
      if (e instanceof VersionConflict) throw new ApiError(500, 'rpc error: code = Unknown desc = update out of sequence');
      throw e;
    }
    return { status: 200 };
  });

  router.get('/swarm/unlockkey', () => {
    swarm.requireManager();
    return { body: { UnlockKey: '' } };
  });
}
