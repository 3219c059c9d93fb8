import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from '../util/log.js';
import { openValue, storedValue } from './ca/unlock-key.js';
import type { DashboardTokenControl } from './control/dashboard-token.js';

/** Where the swarm keeps the dashboard's login token, sealed with the data key like the CA keys. */
export const DASHBOARD_TOKEN_KEY = '/shoal/dashboard-token';

/** The safety net under the watch: a read this often finds a rotation the watch did not deliver. */
const RECHECK_MS = 5_000;
/** At most one read per this long for those who ask (a page sending a wrong token costs etcd little). */
const MIN_READ_GAP_MS = 250;
/** A read that takes longer is given up (the copy stands): a request waits no longer for it. */
const READ_TIMEOUT_MS = 5_000;
/** A watch etcd canceled (or that failed to start) is made again after this long. */
const REWATCH_MS = 1_000;

/**
 * A manager's copy of the swarm's dashboard token: kept in etcd (one token for every manager),
 * followed by a watch so a rotation on any manager reaches this one's pages, and cached so the
 * dashboard checks each request without a round trip. The copy does not rest on the watch
 * alone: a canceled watch is made again, a periodic read catches what a watch missed, and a
 * token that does not match the copy can be checked against the store (`confirmed`) before it
 * is refused. `onChange` listeners hear a new value (a re-seal by a data key rotation is no change).
 */
export class ManagerDashboardToken implements DashboardTokenControl {
  private cached?: string;
  /** A value sealed with a data key this manager does not follow yet (reopened on adoption). */
  private pending?: Buffer;
  private watcher?: Watcher;
  private stopped = false;
  private recheck?: NodeJS.Timeout;
  private rewatch?: NodeJS.Timeout;
  /** Reads of the store begun so far (a caller waits for one begun after it asked), and the one running. */
  private readsBegun = 0;
  private readsDone = 0;
  private lastReadAt = 0;
  private reading?: Promise<void>;
  private readonly listeners = new Set<(token: string | undefined) => void>();

  constructor(
    private readonly client: Etcd3,
    private readonly dek: () => Buffer | undefined,
    private readonly log: Logger,
  ) {}

  /** Reads the stored token and follows it. */
  async start(): Promise<void> {
    await this.watch();
    const v = await this.client.get(DASHBOARD_TOKEN_KEY).buffer();
    if (v) this.seen(v);
    this.recheck = setInterval(() => this.confirmed().catch(() => undefined), RECHECK_MS);
    this.recheck.unref();
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

  /**
   * The token as stored no earlier than this call: the copy after a read of the store that began
   * after the call, shared by everyone waiting and rate-limited. A failed read leaves the copy.
   */
  async confirmed(): Promise<string | undefined> {
    const asked = this.readsBegun;
    while (this.readsDone <= asked && !this.stopped) {
      if (this.reading) {
        await this.reading;
        continue;
      }
      const gap = this.lastReadAt + MIN_READ_GAP_MS - Date.now();
      if (gap > 0) {
        await new Promise((r) => setTimeout(r, gap));
        continue;
      }
      const n = ++this.readsBegun;
      this.lastReadAt = Date.now();
      this.reading = this.readStored().finally(() => {
        this.readsDone = n;
        this.reading = undefined;
      });
    }
    return this.cached;
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
    this.stopped = true;
    clearInterval(this.recheck);
    clearTimeout(this.rewatch);
    this.set(undefined);
    this.listeners.clear();
    await this.watcher?.cancel();
  }

  /** Watches the key; a watch etcd cancels (or that ends unasked) is made again, then the key read. */
  private async watch(): Promise<void> {
    const w = await this.client.watch().key(DASHBOARD_TOKEN_KEY).create();
    if (this.stopped) return void w.cancel().catch(() => undefined);
    this.watcher = w;
    w.on('put', (kv) => this.seen(kv.value));
    w.on('delete', () => this.set(undefined));
    // The client reattaches after a lost stream from the last revision it saw; a read covers the gap anyway.
    w.on('disconnected', (err: unknown) => this.log.debug({ err }, 'dashboard token watch disconnected'));
    w.on('connected', () => this.confirmed().catch(() => undefined));
    const lost = (err?: unknown) => {
      if (this.stopped || this.watcher !== w) return;
      this.watcher = undefined;
      this.log.warn({ err }, 'dashboard token watch ended; watching again');
      // Not awaited: a watch etcd already canceled never confirms a second cancel.
      w.cancel().catch(() => undefined);
      this.watchLater();
    };
    w.on('error', lost);
    w.on('end', () => lost());
  }

  private watchLater(): void {
    this.rewatch = setTimeout(() => {
      if (this.stopped) return;
      this.watch()
        .then(() => this.confirmed())
        .catch((err: unknown) => {
          this.log.warn({ err }, 'dashboard token watch failed; trying again');
          this.watchLater();
        });
    }, REWATCH_MS);
    this.rewatch.unref();
  }

  private async readStored(): Promise<void> {
    try {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS);
      });
      const v = await Promise.race([this.client.get(DASHBOARD_TOKEN_KEY).buffer(), late]).finally(() =>
        clearTimeout(timer),
      );
      if (this.stopped) return;
      if (v) this.seen(v);
      else this.set(undefined);
    } catch (err) {
      this.log.debug({ err }, 'dashboard token read failed; keeping the last copy');
    }
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
    this.log.debug({ made: !!t }, 'dashboard token changed');
    this.cached = t;
    for (const fn of this.listeners) fn(t);
  }
}
