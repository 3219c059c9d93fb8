import { timingSafeEqual } from 'node:crypto';
import type { SwarmNode } from '../../node/node.js';

/**
 * The dashboard's view of the swarm's login token (one for every manager, kept sealed in the
 * store: manager/dashboard-token.ts), read through this node's manager. Off a manager, or
 * before `shoal dashboard token` made one, no token logs in. `onRotate` listeners hear every
 * change (a rotation on any manager, or this node no longer a manager): the server then ends
 * the streams the new token no longer allows.
 */
export class DashboardToken {
  constructor(private readonly swarm: SwarmNode) {}

  /** The token as this manager last saw it. */
  current(): string | undefined {
    return this.swarm.dashboardToken();
  }

  /**
   * Whether `candidate` is the swarm's token: the copy first, then, on a mismatch, the store (a
   * rotation on another manager may not have reached this one's watch yet; the manager
   * rate-limits those reads).
   */
  async check(candidate: string | undefined): Promise<boolean> {
    if (sameToken(candidate, this.current())) return true;
    if (!candidate) return false;
    return sameToken(candidate, await this.swarm.confirmedDashboardToken());
  }

  onRotate(fn: () => void): () => void {
    return this.swarm.onDashboardToken(fn);
  }

  matches(candidate: string | undefined): boolean {
    return sameToken(candidate, this.current());
  }
}

/** Constant-time comparison, so the answer's timing tells nothing of the token; no token matches nothing. */
export function sameToken(candidate: string | undefined, token: string | undefined): boolean {
  if (!candidate || !token) return false;
  const a = Buffer.from(candidate);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
