import type { Task } from '../../cluster/types.js';

/** Past this many distinct values a table starts again (its entries are only a saving, never needed). */
const MAX_ENTRIES = 20_000;

/**
 * The parts the store cache's tasks repeat: every task of a service carries the same spec,
 * service annotations and spec version, and thousands of tasks name the same service and node.
 * Decoded from etcd, each task had its own copy of them (at 100,000 tasks a few hundred bytes
 * each); the cache's objects are frozen and read-only, so tasks with equal parts can share one.
 */
export class SharedTaskParts {
  private readonly objects = new Map<string, object>();
  private readonly strings = new Map<string, string>();

  /** Replaces `t`'s repeated parts (t is freshly decoded, not frozen yet) with shared frozen ones. */
  share(t: Task): void {
    t.Spec = this.object(`s${JSON.stringify(t.Spec)}`, t.Spec);
    if (t.ServiceAnnotations)
      t.ServiceAnnotations = this.object(`a${JSON.stringify(t.ServiceAnnotations)}`, t.ServiceAnnotations);
    if (t.SpecVersion) t.SpecVersion = this.object(`v${t.SpecVersion.Index}`, t.SpecVersion);
    t.ServiceID = this.string(t.ServiceID);
    if (t.NodeID) t.NodeID = this.string(t.NodeID);
  }

  private object<T extends object>(key: string, o: T): T {
    const had = this.objects.get(key);
    if (had) return had as T;
    if (this.objects.size >= MAX_ENTRIES) this.objects.clear();
    this.objects.set(key, deepFreeze(o));
    return o;
  }

  private string(s: string): string {
    const had = this.strings.get(s);
    if (had !== undefined) return had;
    if (this.strings.size >= MAX_ENTRIES) this.strings.clear();
    this.strings.set(s, s);
    return s;
  }
}

/** Cached objects are shared by view() readers: freezing makes a missed copy throw instead of corrupting the cache. */
export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
