import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from '../util/log.js';
import { openValue, storedValue } from './ca/unlock-key.js';
import type { DashboardTokenControl } from './control/dashboard-token.js';

/** Where the swarm keeps the dashboard's login token, sealed with the data key like the CA keys. */
export const DASHBOARD_TOKEN_KEY = '/shoal/dashboard-token';

/**
 * A manager's copy of the swarm's dashboard token: kept in etcd (one token for every manager),
 * followed by a watch so a rotation on any manager reaches this one's pages, and cached so the
 * dashboard checks each request without a round trip. `onChange` listeners hear a new value
 * (a re-seal by a data key rotation is no change).
 */
export class ManagerDashboardToken implements DashboardTokenControl {
  private cached?: string;
  /** A value sealed with a data key this manager does not follow yet (reopened on adoption). */
  private pending?: Buffer;
  private watcher?: Watcher;
  private readonly listeners = new Set<(token: string | undefined) => void>();

  constructor(
    private readonly client: Etcd3,
    private readonly dek: () => Buffer | undefined,
    private readonly log: Logger,
  ) {}

  /** Reads the stored token and follows it. */
  async start(): Promise<void> {
    this.watcher = await this.client.watch().key(DASHBOARD_TOKEN_KEY).create();
    this.watcher.on('put', (kv) => this.seen(kv.value));
    this.watcher.on('delete', () => this.set(undefined));
    const v = await this.client.get(DASHBOARD_TOKEN_KEY).buffer();
    if (v) this.seen(v);
  }

  /** The token as last seen (undefined: none made yet). */
  current(): string | undefined {
    return this.cached;
  }

  onChange(fn: (token: string | undefined) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The stored token now (a linearizable read), which also refreshes the cache. */
  async read(): Promise<string | undefined> {
    const v = await this.client.get(DASHBOARD_TOKEN_KEY).buffer();
    if (!v) return undefined;
    const t = openValue(this.dek(), v).toString();
    this.set(t);
    return t;
  }

  /** Stores `token`; with `ifAbsent`, only when the swarm has none yet (false: another manager made one). */
  async write(token: string, ifAbsent: boolean): Promise<boolean> {
    const value = storedValue(this.dek(), Buffer.from(token));
    if (ifAbsent) {
      const txn = await this.client
        .if(DASHBOARD_TOKEN_KEY, 'Create', '==', 0)
        .then(this.client.put(DASHBOARD_TOKEN_KEY).value(value))
        .commit();
      if (!txn.succeeded) return false;
    } else await this.client.put(DASHBOARD_TOKEN_KEY).value(value).exec();
    this.set(token);
    return true;
  }

  /** A new data key was adopted: a value that could not be opened before can be now. */
  retryPending(): void {
    if (this.pending) this.seen(this.pending);
  }

  /** This manager ends (stopped, demoted): its pages are logged out. */
  async stop(): Promise<void> {
    this.set(undefined);
    this.listeners.clear();
    await this.watcher?.cancel();
  }

  private seen(raw: Buffer): void {
    let t: string;
    try {
      t = openValue(this.dek(), raw).toString();
    } catch {
      this.pending = raw;
      this.log.debug('dashboard token sealed with a data key not followed yet');
      return;
    }
    this.pending = undefined;
    this.set(t);
  }

  private set(t: string | undefined): void {
    if (t === this.cached) return;
    this.cached = t;
    for (const fn of this.listeners) fn(t);
  }
}
