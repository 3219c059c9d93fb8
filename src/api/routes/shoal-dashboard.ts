import type { Router } from '../router.js';
import type { SwarmNode } from '../../node/node.js';
import type { DashboardToken } from '../dashboard/token.js';

/**
 * shoal's own extension: the dashboard's login token (`shoal dashboard token [--rotate]`).
 * Admin only (access/roles.ts): the token shows the whole swarm. Managers only, like the page.
 */
export function shoalDashboardRoutes(router: Router, swarm: SwarmNode, token: DashboardToken): void {
  router.get('/shoal/dashboard/token', () => {
    swarm.requireManager();
    return { status: 200, body: { Token: token.get() } };
  });
  router.post('/shoal/dashboard/token/rotate', () => {
    swarm.requireManager();
    return { status: 200, body: { Token: token.rotate() } };
  });
}
