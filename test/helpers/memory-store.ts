import type { Kind, KindMap, Task } from '../../src/cluster/types.js';
import { TaskIndex, type TaskIndexName } from '../../src/manager/store/task-index.js';
import { deepFreeze } from '../../src/manager/store/etcd-store.js';
import {
  VersionConflict,
  LeaderLost,
  type Change,
  type Store,
  type StoreEvent,
  type WriteOptions,
} from '../../src/manager/store/store.js';

/**
 * An in-memory Store for unit tests of pure logic: the same contract as the etcd store
 * (atomic batches, Version.Index = a global revision, optimistic updates, watch after commit).
 * Test-only: the real store is etcd.
 */
export class MemoryStore implements Store {
  private revision = 0;
  private readonly objects = new Map<Kind, Map<string, KindMap[Kind]>>();
  private readonly watchers = new Set<(events: StoreEvent[]) => void>();
  private readonly taskIndex = new TaskIndex();
  /** Tests flip this to simulate a deposed leader. */
  leader = true;
  /** Number of commit() calls, so tests can check batching. */
  commits = 0;

  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    const o = this.table(kind).get(id);
    return o ? (structuredClone(o) as KindMap[K]) : undefined;
  }

  list<K extends Kind>(kind: K): KindMap[K][] {
    return [...this.table(kind).values()].map((o) => structuredClone(o) as KindMap[K]);
  }

  view<K extends Kind>(kind: K): KindMap[K][] {
    return [...this.table(kind).values()] as KindMap[K][];
  }

  viewOne<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    return this.table(kind).get(id) as KindMap[K] | undefined;
  }

  tasksBy(by: TaskIndexName, key: string): Task[] {
    return this.taskIndex.get(by, key);
  }

  async commit(changes: Change[], opts: WriteOptions = {}): Promise<void> {
    this.commits++;
    if (opts.fenced && !this.leader) throw new LeaderLost('not the leader');
    // Check everything first: all or nothing.
    for (const c of changes) {
      const t = this.table(c.kind);
      if (c.op === 'create' && t.has(c.object.ID)) throw new VersionConflict(`${c.kind}/${c.object.ID} exists`);
      if (c.op === 'update') {
        const cur = t.get(c.object.ID);
        if (!cur || cur.Version.Index !== c.object.Version.Index)
          throw new VersionConflict(`${c.kind}/${c.object.ID} changed`);
      }
      if (c.op === 'delete' && !t.has(c.id)) throw new VersionConflict(`${c.kind}/${c.id} missing`);
    }
    this.revision++;
    const events: StoreEvent[] = [];
    for (const c of changes) {
      const t = this.table(c.kind);
      if (c.op === 'delete') {
        const old = t.get(c.id)!;
        t.delete(c.id);
        if (c.kind === 'tasks') this.taskIndex.remove(old as Task);
        events.push({ kind: c.kind, action: 'delete', object: old });
      } else {
        const o = structuredClone(c.object);
        o.Version = { Index: this.revision };
        if (c.kind === 'tasks') this.taskIndex.put(t.get(o.ID) as Task | undefined, o as Task);
        t.set(o.ID, deepFreeze(o));
        events.push({ kind: c.kind, action: c.op, object: o });
      }
    }
    for (const w of this.watchers) w(events);
  }

  watch(fn: (events: StoreEvent[]) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  private table(kind: Kind): Map<string, KindMap[Kind]> {
    let t = this.objects.get(kind);
    if (!t) this.objects.set(kind, (t = new Map()));
    return t;
  }
}
