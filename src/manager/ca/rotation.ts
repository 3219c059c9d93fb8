import type { LeaderLoopContext } from '../leader/loops.js';
import { VersionConflict } from '../store/store.js';

/**
 * Ends a root CA rotation once every node reports a certificate issued by the new root
 * (Description.TLSInfo issuer fields equal the cluster's): RootRotationInProgress goes false
 * and the old root stops being trusted.
 */
export function rootRotationLoop(finish: () => Promise<void>) {
  return async (ctx: LeaderLoopContext): Promise<void> => {
    let running = false;
    const check = async () => {
      if (running || ctx.signal.aborted) return;
      running = true;
      try {
        const c = ctx.store.list('cluster')[0];
        if (!c?.RootRotationInProgress) return;
        const nodes = ctx.store.list('nodes');
        const done = nodes.every((n) => n.Description?.TLSInfo?.CertIssuerPublicKey === c.TLSInfo.CertIssuerPublicKey && n.Description?.TLSInfo?.CertIssuerSubject === c.TLSInfo.CertIssuerSubject);
        if (!done) return;
        await finish();
        c.RootRotationInProgress = false;
        await ctx.store.commit([{ kind: 'cluster', op: 'update', object: c }], { fenced: true }).catch((e) => {
          if (!(e instanceof VersionConflict)) throw e;
        });
        ctx.log.info('root CA rotation complete');
      } catch (err) {
        ctx.log.warn({ err }, 'root rotation check failed');
      } finally {
        running = false;
      }
    };
    const unwatch = ctx.store.watch(() => void check());
    const timer = setInterval(() => void check(), 2000);
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    unwatch();
    clearInterval(timer);
  };
}
