import { randomBytes } from 'node:crypto';

/**
 * The dashboard's login token (shoal's own, `shoal dashboard token [--rotate]`): one for the
 * whole swarm, so a login works on every manager's page and a rotation on one logs pages out
 * on all. 32 random bytes, base64url; made on first use.
 */
export interface DashboardTokenControl {
  read(): Promise<string | undefined>;
  /** Stores the token; with `ifAbsent` only when none exists (false: another manager made one first). */
  write(token: string, ifAbsent: boolean): Promise<boolean>;
}

function newDashboardToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The swarm's token, made now when it has none (two managers at once agree on one). */
export async function dashboardToken(c: DashboardTokenControl): Promise<string> {
  const t = await c.read();
  if (t) return t;
  const fresh = newDashboardToken();
  if (await c.write(fresh, true)) return fresh;
  const other = await c.read();
  if (!other) throw new Error('dashboard token vanished while it was made');
  return other;
}

/** A new token for the swarm: pages logged in with the old one are logged out on every manager. */
export async function rotateDashboardToken(c: DashboardTokenControl): Promise<string> {
  const t = newDashboardToken();
  await c.write(t, false);
  return t;
}
