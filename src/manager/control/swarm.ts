import type { Cluster, ClusterSpec } from '../../cluster/types.js';
import { ApiError, badRequest } from '../../util/errors.js';
import { createRootCA, type RootCAMaterial } from '../ca/root-ca.js';
import { generateJoinToken } from '../ca/tokens.js';
import { newUnlockKey } from '../ca/unlock-key.js';
import type { Store } from '../store/store.js';
import { mergeClusterSpec } from './cluster-spec.js';
import { checkVersion, commitVersioned } from './versioned.js';

/**
 * The swarm's own object (swarmkit controlapi/cluster.go UpdateCluster): its spec, join token
 * rotation, root CA rotation (`swarm ca --rotate`) and autolock with its unlock key.
 */

export interface SwarmControl {
  store: Store;
  /** The CA signs with `next` from now on; the old root stays trusted until rotation ends (ca/rotation.ts). */
  rotateRootCA(next: RootCAMaterial): Promise<void>;
  /** The managers' unlock key: a new one, or none when autolock turns off. */
  setUnlockKey(key: Buffer | undefined): Promise<void>;
}

export interface SwarmUpdateFlags {
  rotateWorkerToken?: boolean;
  rotateManagerToken?: boolean;
  rotateManagerUnlockKey?: boolean;
}

export function getCluster(store: Store): Cluster {
  const c = store.list('cluster')[0];
  if (!c) throw new ApiError(503, 'swarm cluster object missing');
  return c;
}

/** `docker swarm update / ca --rotate / join-token --rotate / update --autolock / unlock-key --rotate`. */
export async function updateSwarm(
  c: SwarmControl,
  version: number,
  spec: ClusterSpec,
  flags: SwarmUpdateFlags = {},
): Promise<Cluster> {
  const current = getCluster(c.store);
  checkVersion(current, version);
  const next = structuredClone(current);
  // The name is fixed ("default"); everything else comes from the client, defaults where unset.
  next.Spec = {
    ...mergeClusterSpec(current.Spec, spec),
    Name: current.Spec.Name,
    Labels: spec.Labels ?? current.Spec.Labels,
  };
  // Autolock: a new unlock key when it turns on or is rotated (only while on), none when off.
  const wasLocked = !!current.Spec.EncryptionConfig?.AutoLockManagers;
  const autolock = !!next.Spec.EncryptionConfig?.AutoLockManagers;
  const newKey = autolock && (!wasLocked || !!flags.rotateManagerUnlockKey);
  // Join tokens name the root the cluster shows; during a rotation that is still the old one.
  const root = current.TLSInfo.TrustRoot;
  const forceRotate = spec.CAConfig?.ForceRotate ?? 0;
  if (forceRotate !== (current.Spec.CAConfig?.ForceRotate ?? 0) || spec.CAConfig?.SigningCACert) {
    if (spec.CAConfig?.SigningCACert)
      throw badRequest('external or provided signing CA certificates are not supported; use --rotate alone');
    // swarm ca --rotate: the CA signs with a new root from now on; the cluster goes on showing
    // the old root and its join tokens until every node holds a certificate from the new one
    // (ca/rotation.ts then switches both, as SwarmKit's finishRootRotation).
    await c.rotateRootCA(await createRootCA());
    next.RootRotationInProgress = true;
  }
  if (flags.rotateWorkerToken) next.JoinTokens.Worker = generateJoinToken(root);
  if (flags.rotateManagerToken) next.JoinTokens.Manager = generateJoinToken(root);
  await commitVersioned(c.store, 'cluster', version, current, next);
  if (newKey) await c.setUnlockKey(newUnlockKey());
  else if (wasLocked && !autolock) await c.setUnlockKey(undefined);
  return next;
}
