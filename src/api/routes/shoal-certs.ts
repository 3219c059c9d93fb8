import type { Router } from '../router.js';
import type { SwarmNode } from '../../node/node.js';
import { badRequest } from '../../util/errors.js';
import { isRole } from '../access/roles.js';

export interface CertRouteOptions {
  /** The CA bundle this daemon's own TLS certificate comes from (its --tlscacert), if it serves TLS. */
  serverCA?: () => string | undefined;
}

/**
 * shoal's own extension, kept under /shoal/ so it never clashes with an Engine API path:
 * `POST /shoal/certs` {Name, Role, CSR} signs an API client certificate with the swarm's API
 * client CA (managers only; admin only, see access/roles.ts). The answer's CA is what a client
 * puts in ca.pem to verify the daemons: this daemon's --tlscacert.
 */
export function shoalCertRoutes(router: Router, swarm: SwarmNode, opts: CertRouteOptions = {}): void {
  router.post('/shoal/certs', async (ctx) => {
    const body = await ctx.json<{ Name?: unknown; Role?: unknown; CSR?: unknown }>();
    const name = typeof body.Name === 'string' ? body.Name : '';
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(name))
      throw badRequest(`invalid certificate name "${name}": letters, digits, and _ . @ -, at most 64`);
    const role = typeof body.Role === 'string' ? body.Role : '';
    if (!isRole(role)) throw badRequest(`invalid role "${role}": admin, operator or viewer`);
    if (typeof body.CSR !== 'string' || !body.CSR.includes('CERTIFICATE REQUEST'))
      throw badRequest('CSR: a PEM certificate request is required');
    const manager = swarm.requireManager();
    let signed;
    try {
      signed = await manager.signApiClientCert(body.CSR, name, role);
    } catch (e) {
      throw badRequest(`CSR: ${(e as Error).message}`);
    }
    return { status: 201, body: { Certificate: signed.certPem, ClientCA: signed.caPem, CA: opts.serverCA?.() ?? '' } };
  });
}
