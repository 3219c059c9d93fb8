import type { Cluster, Node } from '../../cluster/types.js';
import type { LeaderLoopContext } from '../leader/loops.js';
import { VersionConflict } from '../store/store.js';
import { generateJoinToken } from './tokens.js';
import { hasIssuer, tlsInfo } from './tls-info.js';

/**
 * Root CA rotation as SwarmKit runs it (ca/reconciler.go): from `swarm ca --rotate` on, the CA
 * signs with the new root's key, but the cluster keeps showing the old root (TLSInfo,
 * GetRootCACertificate) and the join tokens naming it, so nodes joining meanwhile trust what
 * every manager's certificate chains to. When every node, down ones included, reports a
 * certificate from the new root, the cluster switches to it and both join tokens are renewed.
 */

export interface RotationView {
  /** The root the CA signs with. */
  signingRoot: string;
  /** Whether the CA still trusts the roots it rotates away from. */
  caRotating: boolean;
}

/** The nodes that still report a certificate from another issuer than the signing root. */
export function unconvergedNodes(nodes: Node[], signingRoot: string): Node[] {
  const issuer = tlsInfo(signingRoot);
  return nodes.filter((n) => !hasIssuer(n, issuer));
}

/**
 * Whether the rotation can end now. A manager whose CA view is older than the cluster object
 * (its CA watch lags the store) sees the old root signing and a cluster already showing it:
 * nothing to finish yet.
 */
export function rotationCanFinish(cluster: Cluster, nodes: Node[], ca: RotationView): boolean {
  if (!cluster.RootRotationInProgress) return false;
  if (!ca.caRotating && cluster.TLSInfo.TrustRoot === ca.signingRoot) return false;
  return unconvergedNodes(nodes, ca.signingRoot).length === 0;
}

/** The cluster once the rotation ended: the new root shown, new join tokens naming it. */
export function finishedCluster(cluster: Cluster, newRoot: string): Cluster {
  return {
    ...structuredClone(cluster),
    TLSInfo: tlsInfo(newRoot),
    RootRotationInProgress: false,
    JoinTokens: { Worker: generateJoinToken(newRoot), Manager: generateJoinToken(newRoot) },
  };
}

/**
 * Leader loop: ends the rotation once every node converged; the CA drops the old roots first
 * (finishCA answers false when the stored CA moved on to another rotation meanwhile).
 */
export function rootRotationLoop(ca: () => RotationView, finishCA: (signingRoot: string) => Promise<boolean>) {
  return async (ctx: LeaderLoopContext): Promise<void> => {
    let running = false;
    const check = async () => {
      if (running || ctx.signal.aborted) return;
      running = true;
      try {
        const c = ctx.store.view('cluster')[0];
        const view = ca();
        if (!c || !rotationCanFinish(c, ctx.store.view('nodes'), view)) return;
        if (!(await finishCA(view.signingRoot))) return;
        try {
          await ctx.store.commit([{ kind: 'cluster', op: 'update', object: finishedCluster(c, view.signingRoot) }], {
            fenced: true,
          });
        } catch (e) {
          if (e instanceof VersionConflict) return; // the next check tries again on the new version
          throw e;
        }
        ctx.log.info('root CA rotation complete');
      } catch (err) {
        ctx.log.warn({ err }, 'root rotation check failed');
      } finally {
        running = false;
      }
    };
    // check() catches its own failures; this logs anything that still gets out.
    const checkLogged = () => void check().catch((err: unknown) => ctx.log.warn({ err }, 'root rotation check failed'));
    // Only node and cluster changes can end a rotation: task events (most of them at scale) cannot.
    const unwatch = ctx.store.watch((events) => {
      if (events.some((e) => e.kind === 'nodes' || e.kind === 'cluster')) checkLogged();
    });
    const timer = setInterval(checkLogged, 2000);
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    unwatch();
    clearInterval(timer);
  };
}
