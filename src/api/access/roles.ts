/**
 * Who may do what through the Engine API. Three roles, each including the one below it:
 * - viewer: reads (lists, inspects, logs, events), nothing that changes state, no exec/attach;
 * - operator: also services, stacks, secrets, configs, networks, volumes, containers, images,
 *   and a node's availability and labels;
 * - admin: also swarm membership (init, join, leave, update, unlock, the CA), node roles
 *   (promote, demote: the node update route asks for admin when the role changes) and removal,
 *   the unlock key, and API certificates.
 * Anything not named below needs operator if it writes and viewer if it reads, so a new route
 * is never open to viewers by accident when it changes state.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (s: string): s is Role => (ROLES as readonly string[]).includes(s);

const rank = (r: Role) => ROLES.indexOf(r);

/** Routes (method + pattern) that need admin. */
const ADMIN: ReadonlySet<string> = new Set([
  'POST /swarm/init',
  'POST /swarm/join',
  'POST /swarm/leave',
  'POST /swarm/update',
  'POST /swarm/unlock',
  'GET /swarm/unlockkey',
  'DELETE /nodes/:id',
  'POST /shoal/certs',
  'GET /shoal/dashboard/token',
  'POST /shoal/dashboard/token/rotate',
]);

/** Reads that hand out what a viewer must not see: files (and so secrets) from inside containers. */
const OPERATOR_READS: ReadonlySet<string> = new Set([
  'GET /containers/:id/archive',
  'HEAD /containers/:id/archive',
  'GET /containers/:id/export',
]);

/** Writes by method that change nothing: a viewer may make them. */
const VIEWER_WRITES: ReadonlySet<string> = new Set(['POST /containers/:id/wait', 'POST /auth']);

/** Calls that open a shell or a stream into a container: audited even though some are reads. */
const INTERACTIVE: ReadonlySet<string> = new Set([
  'POST /containers/:id/attach',
  'POST /containers/:id/exec',
  'POST /exec/:id/start',
  'GET /containers/:id/attach/ws',
]);

const isRead = (method: string) => method === 'GET' || method === 'HEAD';

/** The role a route needs. */
export function requiredRole(method: string, pattern: string): Role {
  const key = `${method} ${pattern}`;
  if (ADMIN.has(key)) return 'admin';
  if (OPERATOR_READS.has(key)) return 'operator';
  if (isRead(method) || VIEWER_WRITES.has(key)) return 'viewer';
  return 'operator';
}

/** True when the call changes state or opens a container (what the audit log records). */
export function isAudited(method: string, pattern: string): boolean {
  const key = `${method} ${pattern}`;
  if (INTERACTIVE.has(key) || ADMIN.has(key)) return true;
  return !isRead(method) && !VIEWER_WRITES.has(key);
}

export function allows(role: Role | undefined, needed: Role): boolean {
  return role !== undefined && rank(role) >= rank(needed);
}

/** A short name of what a call does, for messages: `services create`, `nodes update`, `containers delete`. */
export function actionName(method: string, pattern: string): string {
  const segments = pattern.split('/').filter((s) => s);
  const words = segments.filter((s) => !s.startsWith(':'));
  if (method === 'DELETE') words.push('delete');
  else if (isRead(method) && segments[segments.length - 1]?.startsWith(':')) words.push('inspect');
  else if (isRead(method) && words.length === 1) words.push('list');
  return words.join(' ');
}
