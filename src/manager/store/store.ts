import type { Kind, KindMap, Task } from '../../cluster/types.js';
import type { TaskIndexName } from './task-index.js';

/**
 * The contract between the store (etcd + a watch-fed cache) and everything that reads or
 * writes cluster state: API handlers and leader loops. Objects are kept at
 * `/shoal/v1/<kind>/<ID>`; an object's Version.Index is its etcd mod_revision.
 */

export type Change<K extends Kind = Kind> =
  | { kind: K; op: 'create'; object: KindMap[K] }
  /** Fails the whole batch with a conflict unless the stored Version.Index equals object.Version.Index. */
  | { kind: K; op: 'update'; object: KindMap[K] }
  | { kind: K; op: 'delete'; id: string };

export interface StoreEvent<K extends Kind = Kind> {
  kind: K;
  action: 'create' | 'update' | 'delete';
  /** For delete: the last stored object. */
  object: KindMap[K];
}

export interface WriteOptions {
  /** Leader loops set this: the write fails (LeaderLost) unless this node still holds the leader key. */
  fenced?: boolean;
}

export class VersionConflict extends Error {}
export class LeaderLost extends Error {}

export interface Store {
  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined;
  list<K extends Kind>(kind: K): KindMap[K][];
  /**
   * Every object of a kind without copying, for leader loops that scan the whole set on each
   * pass: the objects are the cache's own, deep-frozen, so a caller that wants to change one
   * copies it first (structuredClone). get()/list() return private copies.
   */
  view<K extends Kind>(kind: K): KindMap[K][];
  /** One object as view() has it (shared, frozen): no copy, for hot paths that only read. */
  viewOne<K extends Kind>(kind: K, id: string): KindMap[K] | undefined;
  /**
   * The tasks of one service / node / observed state / slot, from indexes the
   * cache keeps (task-index.ts), so loops look up instead of scanning every task. Same
   * objects as view(): shared and frozen.
   */
  tasksBy(by: TaskIndexName, key: string): Task[];
  /**
   * Applies every change atomically (split into several etcd transactions only when one would
   * exceed etcd's op limit; each is still all-or-nothing). Resolves once the cache has seen it,
   * so a read right after a write returns the new object.
   */
  commit(changes: Change[], opts?: WriteOptions): Promise<void>;
  /**
   * Events arrive in batches, in commit order, after the cache is updated; their objects are
   * the cache's own (shared, frozen, like view()). Returns unsubscribe.
   */
  watch(fn: (events: StoreEvent[]) => void): () => void;
}
