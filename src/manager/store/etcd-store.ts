import type { Etcd3, IKeyValue, IRequestOp, ICompare, Watcher } from 'etcd3';
import type { Kind, KindMap, Task } from '../../cluster/types.js';
import { TaskIndex, type TaskIndexName } from './task-index.js';
import { SharedTaskParts, deepFreeze } from './shared-parts.js';

export { deepFreeze };
import {
  LeaderLost,
  StoreUnavailable,
  VersionConflict,
  WRITE_DEADLINE_MS,
  WriteTimeout,
  type Change,
  type Store,
  type StoreEvent,
  type WriteOptions,
} from './store.js';
import { GRPCCancelledError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import type { Logger } from '../../util/log.js';
import { dropLegacyFields } from './legacy-fields.js';
import { AttemptsTimedOut, commitAcrossLeaderChange, type StoreTxn } from './txn-attempts.js';
import { managerMetrics } from '../metrics.js';

export const PREFIX = '/shoal/v1/';
const KINDS: Kind[] = ['cluster', 'nodes', 'services', 'tasks', 'networks', 'secrets', 'configs', 'nodeImages'];
/** Objects changed per etcd transaction; etcd runs with --max-txn-ops above twice this. */
const MAX_CHANGES_PER_TXN = 1000;

export const objectKey = (kind: string, id: string) => `${PREFIX}${kind}/${id}`;

/** What fenced writes compare: the leader key must still be the one this node created. */
export interface Fence {
  key: string;
  /** create_revision of the leader key while this node leads; undefined when it does not. */
  createRevision(): string | undefined;
}

type AnyObject = KindMap[Kind];

/**
 * The Store on etcd: an in-memory cache of every object fed by one watch from the revision the
 * initial read saw; writes are transactions comparing each updated object's mod_revision.
 */
export class EtcdStore implements Store {
  private readonly cache = new Map<Kind, Map<string, AnyObject>>();
  private readonly taskIndex = new TaskIndex();
  private readonly shared = new SharedTaskParts();
  private readonly listeners = new Set<(events: StoreEvent[]) => void>();
  private revision = 0;
  private readonly revisionWaiters: { rev: number; resolve: () => void }[] = [];
  private watcher?: Watcher;
  /** etcd's raft term as of the last write's answer (a later one means its leader changed). */
  private raftTerm?: string;

  constructor(
    private readonly client: Etcd3,
    private readonly log: Logger,
    private readonly fence?: Fence,
  ) {
    for (const k of KINDS) this.cache.set(k, new Map());
  }

  async start(): Promise<void> {
    const res = await this.client.kv.range({ key: Buffer.from(PREFIX), range_end: Buffer.from(prefixEnd(PREFIX)) });
    for (const kv of res.kvs) {
      const parsed = this.decode(kv);
      if (parsed) this.put(parsed.kind, parsed.object);
    }
    this.revision = Number(res.header.revision);
    await this.watchFrom(this.revision + 1);
  }

  private async watchFrom(revision: number): Promise<void> {
    const w = await this.client
      .watch()
      .prefix(PREFIX)
      .startRevision(String(revision))
      // No previous values: a delete's last object is in the cache, and fetching each event's
      // previous value cost etcd a read per write.
      .create();
    this.watcher = w;
    w.on('data', (r) => this.apply(r.events, Number(r.header.revision)));
    // etcd cancels a watch whose next revision was compacted away (a connection lost for
    // longer than the compaction retention): the cache then reads everything again.
    w.on('error', (err) => {
      if (this.closed || this.watcher !== w) return;
      this.log.warn({ err }, 'store watch canceled; reading the store again');
      this.resyncLogged();
    });
  }

  /**
   * Reads every object again and tells watchers what changed since the cache last saw it (as
   * events), then watches on from there: the cache is whole again after a lost watch.
   */
  async resync(): Promise<void> {
    if (this.resyncing || this.closed) return;
    this.resyncing = true;
    try {
      // Not awaited: a watch etcd already canceled never confirms a second cancel (etcd3's detach waits for it).
      this.watcher?.cancel().catch(() => undefined);
      const res = await this.client.kv.range({ key: Buffer.from(PREFIX), range_end: Buffer.from(prefixEnd(PREFIX)) });
      const out: StoreEvent[] = [];
      const seen = new Set<string>();
      for (const kv of res.kvs) {
        const parsed = this.decode(kv);
        if (!parsed) continue;
        const { kind, object } = parsed;
        seen.add(`${kind}/${object.ID}`);
        const had = this.cache.get(kind)!.get(object.ID);
        if (had?.Version.Index === object.Version.Index) continue;
        this.put(kind, object);
        out.push({ kind, action: had ? 'update' : 'create', object } as StoreEvent);
      }
      for (const [kind, m] of this.cache) {
        for (const [id, last] of m) {
          if (seen.has(`${kind}/${id}`)) continue;
          m.delete(id);
          if (kind === 'tasks') this.taskIndex.remove(last as Task);
          out.push({ kind, action: 'delete', object: last } as StoreEvent);
        }
      }
      this.settle(out, Number(res.header.revision));
      await this.watchFrom(Number(res.header.revision) + 1);
    } catch (err) {
      this.log.warn({ err }, 'store resync failed; trying again');
      setTimeout(() => {
        this.resyncing = false;
        this.resyncLogged();
      }, 1000);
      return;
    }
    this.resyncing = false;
  }
  private resyncing = false;

  /** resync() catches its own failures and retries; this logs anything that still gets out. */
  private resyncLogged(): void {
    this.resync().catch((err: unknown) => this.log.warn({ err }, 'store resync failed'));
  }
  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    // Bounded: a watch etcd already canceled never confirms this one.
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      this.watcher?.cancel().catch(() => undefined),
      new Promise((r) => {
        t = setTimeout(r, 1000);
      }),
    ]);
    clearTimeout(t);
  }

  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    const o = this.cache.get(kind)?.get(id);
    return o ? (structuredClone(o) as KindMap[K]) : undefined;
  }

  list<K extends Kind>(kind: K): KindMap[K][] {
    return [...(this.cache.get(kind)?.values() ?? [])].map((o) => structuredClone(o) as KindMap[K]);
  }

  view<K extends Kind>(kind: K): KindMap[K][] {
    return [...(this.cache.get(kind)?.values() ?? [])] as KindMap[K][];
  }

  viewOne<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    return this.cache.get(kind)?.get(id) as KindMap[K] | undefined;
  }

  tasksBy(by: TaskIndexName, key: string): Task[] {
    return this.taskIndex.get(by, key);
  }

  private put(kind: Kind, o: AnyObject): void {
    const m = this.cache.get(kind)!;
    if (kind === 'tasks') this.taskIndex.put(m.get(o.ID) as Task | undefined, o as Task);
    m.set(o.ID, o);
  }

  watch(fn: (events: StoreEvent[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The revision the cache has seen. */
  get currentRevision(): number {
    return this.revision;
  }

  async commit(changes: Change[], opts: WriteOptions = {}): Promise<void> {
    if (changes.length === 0) return;
    let leaderRev: string | undefined;
    if (opts.fenced) {
      leaderRev = this.fence?.createRevision();
      if (!leaderRev) throw new LeaderLost('this node is not the leader');
    }
    const deadline = Date.now() + (opts.deadlineMs ?? WRITE_DEADLINE_MS);
    let lastRev = 0;
    let changed = false;
    const t0 = performance.now();
    const chunks: Change[][] = [];
    for (let i = 0; i < changes.length; i += MAX_CHANGES_PER_TXN)
      chunks.push(changes.slice(i, i + MAX_CHANGES_PER_TXN));
    let failure: unknown;
    const one = async (c: Change[]) => {
      try {
        const r = await this.commitOne(c, leaderRev, deadline);
        lastRev = Math.max(lastRev, r.revision);
        changed ||= r.changed;
      } catch (e) {
        failure ??= e;
      }
    };
    // One transaction at a time: several big ones in flight made etcd's apply fall behind
    // under load (its lease renewals then failed with "waiting for the applied index took too
    // long"). After a failure no more are sent, and those already written are waited for like
    // a success: a caller's next pass must see them (or it would, say, create a slot's task twice).
    for (const c of chunks) {
      await one(c);
      if (failure !== undefined) break;
    }
    const t1 = performance.now();
    // A leader loop must see its own writes before its next pass (or it would, say, create a
    // slot's task twice): it waits for the watch as long as it takes. A client's write that
    // etcd applied is answered by its deadline even if the cache lags.
    managerMetrics.storeWrite.observe((t1 - t0) / 1000);
    if (lastRev) await this.waitForRevision(lastRev, changed, opts.fenced ? undefined : deadline);
    if (lastRev) managerMetrics.storeWatch.observe((performance.now() - t1) / 1000);
    if (failure !== undefined) throw failure;
    this.log.debug(
      { changes: changes.length, txnMs: Math.round(t1 - t0), watchMs: Math.round(performance.now() - t1) },
      'commit',
    );
  }

  /** One transaction; `changed` when it put or deleted something (so a watch event will come). */
  private async commitOne(
    changes: Change[],
    leaderRev: string | undefined,
    deadline: number,
  ): Promise<{ revision: number; changed: boolean }> {
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    const puts: StoreTxn['puts'] = [];
    const now = new Date().toISOString();
    if (leaderRev)
      compare.push({
        key: Buffer.from(this.fence!.key),
        target: 'Create',
        result: 'Equal',
        create_revision: leaderRev,
      });
    for (const c of changes) {
      if (c.op === 'delete') {
        success.push({ request_delete_range: { key: Buffer.from(objectKey(c.kind, c.id)) } });
        continue;
      }
      const key = Buffer.from(objectKey(c.kind, c.object.ID));
      const o = { ...c.object } as AnyObject;
      if (c.op === 'create') {
        compare.push({ key, target: 'Create', result: 'Equal', create_revision: 0 });
        o.CreatedAt ||= now;
        o.UpdatedAt ||= now;
      } else {
        compare.push({ key, target: 'Mod', result: 'Equal', mod_revision: c.object.Version?.Index ?? 0 });
        o.UpdatedAt = now;
      }
      const value = Buffer.from(JSON.stringify(o));
      success.push({ request_put: { key, value } });
      puts.push({ key, value });
    }
    // A deadline on the call (and on its attempts across an etcd leader change: the same
    // absolute time). A transaction is applied whole or not at all; one that timed out may
    // still be, and is reported as such (WriteTimeout), never as a failure that wrote nothing.
    let res;
    try {
      res = await commitAcrossLeaderChange(this.client, { compare, success, puts }, deadline, () => this.raftTerm);
    } catch (e) {
      throw classifyWriteError(e);
    }
    this.raftTerm = res.header.raft_term || this.raftTerm;
    if (!res.succeeded) {
      if (leaderRev) {
        const lk = await this.client.kv
          .range({ key: Buffer.from(this.fence!.key) }, { deadline: new Date(Math.max(deadline, Date.now() + 1000)) })
          .catch((e: unknown) => {
            throw classifyWriteError(e);
          });
        if (lk.kvs[0]?.create_revision !== leaderRev) throw new LeaderLost('leadership lost');
      }
      throw new VersionConflict('update out of sequence');
    }
    const changed =
      success.some((op) => op.request_put) ||
      res.responses.some((r) => Number(r.response_delete_range?.deleted ?? 0) > 0);
    return { revision: Number(res.header.revision), changed };
  }

  private waitForRevision(rev: number, changed: boolean, deadline?: number): Promise<void> {
    if (this.revision >= rev) return Promise.resolve();
    const bound = changed ? (deadline === undefined ? 30_000 : Math.max(0, deadline - Date.now())) : 1000;
    // A transaction that changed nothing under the prefix (a delete of a missing key) makes
    // no watch event; the timer keeps such a commit from waiting forever. One that changed
    // something always waits for its event: resolving early under load let a leader loop's
    // next pass read a cache without its own writes (duplicate tasks for the same slot).
    // The long bound only matters if the watch is broken.
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        if (changed)
          this.log.warn(
            { rev, seen: this.revision },
            'write applied; the store cache has not caught up by its deadline',
          );
        resolve();
      }, bound);
      this.revisionWaiters.push({
        rev,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  private decode(kv: IKeyValue): { kind: Kind; object: AnyObject } | undefined {
    const [kind, id] = kv.key.toString().slice(PREFIX.length).split('/');
    if (!KINDS.includes(kind as Kind) || !id) return undefined;
    try {
      const object = JSON.parse(kv.value.toString()) as AnyObject;
      object.Version = { Index: Number(kv.mod_revision) };
      dropLegacyFields(kind as Kind, object);
      if (kind === 'tasks') this.shared.share(object as Task);
      deepFreeze(object);
      return { kind: kind as Kind, object };
    } catch {
      this.log.warn({ key: kv.key.toString() }, 'undecodable object in store');
      return undefined;
    }
  }

  private apply(events: { type: 'Put' | 'Delete'; kv: IKeyValue }[], revision: number): void {
    const out: StoreEvent[] = [];
    for (const e of events) {
      if (e.type === 'Put') {
        const p = this.decode(e.kv);
        if (!p) continue;
        this.put(p.kind, p.object);
        const created = e.kv.create_revision === e.kv.mod_revision;
        // The cache's own frozen object: watchers that want to change it copy it first.
        out.push({ kind: p.kind, action: created ? 'create' : 'update', object: p.object } as StoreEvent);
      } else {
        const [kind, id] = e.kv.key.toString().slice(PREFIX.length).split('/');
        const m = this.cache.get(kind as Kind);
        const last = m?.get(id);
        if (!m || !last) continue;
        m.delete(id);
        if (kind === 'tasks') this.taskIndex.remove(last as Task);
        out.push({ kind: kind as Kind, action: 'delete', object: last } as StoreEvent);
      }
    }
    this.settle(out, revision);
  }

  /** The cache is at `revision`: watchers get the events, waiting commits resolve. */
  private settle(out: StoreEvent[], revision: number): void {
    if (revision > this.revision) this.revision = revision;
    if (out.length) {
      for (const fn of [...this.listeners]) {
        try {
          fn(out);
        } catch (err) {
          this.log.error({ err }, 'store watcher threw');
        }
      }
    }
    for (let i = this.revisionWaiters.length - 1; i >= 0; i--) {
      if (this.revisionWaiters[i].rev <= this.revision) {
        this.revisionWaiters[i].resolve();
        this.revisionWaiters.splice(i, 1);
      }
    }
  }
}

/**
 * What a failed transaction call means for its write: refused before etcd had it (the member
 * unreachable: nothing written), or timed out while etcd had it (outcome unknown).
 */
export function classifyWriteError(e: unknown): Error {
  if (e instanceof GRPCDeadlineExceededError || e instanceof AttemptsTimedOut) return new WriteTimeout();
  const msg = (e as Error)?.message ?? '';
  // etcd's own proposal timeouts arrive as Unavailable: the proposal may still commit.
  if (/request timed out|leader changed|timed out|deadline exceeded/i.test(msg)) return new WriteTimeout();
  // Never connected: the request was not sent.
  if (e instanceof GRPCUnavailableError && /no connection established|ECONNREFUSED|connect/i.test(msg))
    return new StoreUnavailable(e);
  // A connection lost with the request on it.
  if (e instanceof GRPCUnavailableError || e instanceof GRPCCancelledError) return new WriteTimeout();
  return e as Error;
}

/** The smallest key after every key starting with `p`. */
export function prefixEnd(p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
}
