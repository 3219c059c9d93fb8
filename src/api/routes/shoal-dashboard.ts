import type { Router } from '../router.js';
import type { SwarmNode } from '../../node/node.js';
import { dashboardToken, rotateDashboardToken } from '../../manager/control/dashboard-token.js';

/**
 * shoal's own extension: the dashboard's login token (`shoal dashboard token [--rotate]`), one
 * for the whole swarm. Admin only (access/roles.ts): the token shows the whole swarm. Managers
 * only, like the page.
 */
export function shoalDashboardRoutes(router: Router, swarm: SwarmNode): void {
  router.get('/shoal/dashboard/token', async () => ({
    status: 200,
    body: { Token: await dashboardToken(swarm.requireManager().dashboardToken) },
  }));
  router.post('/shoal/dashboard/token/rotate', async () => ({
    status: 200,
    body: { Token: await rotateDashboardToken(swarm.requireManager().dashboardToken) },
  }));
}
