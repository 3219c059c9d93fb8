import type { Kind, KindMap, Task } from '../../cluster/types.js';
import type { TaskIndexName } from './task-index.js';
import { ApiError, rpcText } from '../../util/errors.js';

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
  /** How long the write may take before it fails with WriteTimeout (default WRITE_DEADLINE_MS). */
  deadlineMs?: number;
}

/**
 * A write answers within this bound (succeeded, or failed with Docker's error): while etcd has
 * no raft leader a proposal waits, and etcd's own timeout (~7 s) was retried by the client, so
 * a `docker service update` could hang for 20 s and more. swarmkit bounds its raft proposals
 * the same way and dockerd answers `context deadline exceeded`.
 */
export const WRITE_DEADLINE_MS = 10_000;

export class VersionConflict extends Error {}
export class LeaderLost extends Error {}

/**
 * The write's deadline passed while etcd had it: it may or may not have been applied (etcd
 * applies a transaction whole or not at all, never half). Docker's answer to the same case.
 */
export class WriteTimeout extends ApiError {
  readonly ambiguous = true;
  constructor() {
    super(500, rpcText('DeadlineExceeded', 'context deadline exceeded'));
  }
}

/** The store could not be reached at all (the local etcd member is down): nothing was written. */
export class StoreUnavailable extends ApiError {
  constructor(readonly reason: unknown) {
    // Docker's text when a manager cannot reach a quorum (node/swarm-spec.ts ERR_NO_LEADER, not imported: that module sits above the store).
    super(
      500,
      rpcText(
        'Unknown',
        "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.",
      ),
    );
  }
}

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
