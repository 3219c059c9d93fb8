import type { Kind, KindMap, Task } from '../../src/cluster/types.js';
import { TaskIndex, type TaskIndexName } from '../../src/manager/store/task-index.js';
import type { Change, Store, StoreEvent, WriteOptions } from '../../src/manager/store/store.js';
import type { MemoryStore } from './memory-store.js';

/**
 * Another manager's view of the same store, for unit tests: its cache follows the shared
 * store `lagMs` behind (as a follower's etcd watch does), writes go to the shared store and
 * resolve once this cache has seen them (the Store contract). Test-only.
 */
export class FollowerStore implements Store {
  private readonly cache = new Map<Kind, Map<string, KindMap[Kind]>>();
  private readonly watchers = new Set<(events: StoreEvent[]) => void>();
  private queued = 0;
  private applied = 0;
  private readonly waiting: { upTo: number; resolve: () => void }[] = [];
  private readonly unwatch: () => void;
  private readonly taskIndex = new TaskIndex();

  constructor(
    private readonly shared: MemoryStore,
    private readonly lagMs: number,
  ) {
    for (const kind of ['cluster', 'nodes', 'services', 'tasks', 'networks'] as Kind[]) {
      this.cache.set(kind, new Map(shared.list(kind).map((o) => [o.ID, o])));
    }
    for (const t of this.cache.get('tasks')!.values()) this.taskIndex.put(undefined, t as Task);
    this.unwatch = shared.watch((events) => {
      this.queued++;
      setTimeout(() => this.apply(events), this.lagMs);
    });
  }

  close(): void {
    this.unwatch();
  }

  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    const o = this.cache.get(kind)!.get(id);
    return o ? (structuredClone(o) as KindMap[K]) : undefined;
  }

  list<K extends Kind>(kind: K): KindMap[K][] {
    return [...this.cache.get(kind)!.values()].map((o) => structuredClone(o) as KindMap[K]);
  }

  view<K extends Kind>(kind: K): KindMap[K][] {
    return [...this.cache.get(kind)!.values()] as KindMap[K][];
  }

  viewOne<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    return this.cache.get(kind)!.get(id) as KindMap[K] | undefined;
  }

  tasksBy(by: TaskIndexName, key: string): Task[] {
    return this.taskIndex.get(by, key);
  }

  async commit(changes: Change[], opts?: WriteOptions): Promise<void> {
    await this.shared.commit(changes, opts);
    // The shared store told its watchers synchronously: this write is batch number `queued`.
    const upTo = this.queued;
    if (this.applied < upTo) await new Promise<void>((resolve) => this.waiting.push({ upTo, resolve }));
  }

  watch(fn: (events: StoreEvent[]) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  private apply(events: StoreEvent[]): void {
    for (const e of events) {
      const t = this.cache.get(e.kind)!;
      if (e.kind === 'tasks') {
        const prev = t.get(e.object.ID) as Task | undefined;
        if (e.action === 'delete') {
          if (prev) this.taskIndex.remove(prev);
        } else this.taskIndex.put(prev, e.object as Task);
      }
      if (e.action === 'delete') t.delete(e.object.ID);
      else t.set(e.object.ID, e.object);
    }
    this.applied++;
    for (const w of this.watchers) w(events);
    for (const w of this.waiting.filter((x) => x.upTo <= this.applied)) {
      this.waiting.splice(this.waiting.indexOf(w), 1);
      w.resolve();
    }
  }
}
