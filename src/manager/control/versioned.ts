import type { Kind, KindMap, Version } from '../../cluster/types.js';
import { outOfSequence } from '../../util/errors.js';
import { VersionConflict, type Change, type Store } from '../store/store.js';

/**
 * The one versioned update of the control API (swarmkit store.Update: a write names the
 * Version.Index it was made from). `?version=N` of the Engine API is that index; any other
 * is "update out of sequence", whether seen here or by etcd's compare in the commit.
 */
export function checkVersion(current: { Version: Version }, version: number): void {
  if (current.Version.Index !== version) throw outOfSequence();
}

/** Writes `next` (and `also`, in the same transaction) if `current` is still at `version`. */
export async function commitVersioned<K extends Kind>(
  store: Store,
  kind: K,
  version: number,
  current: KindMap[K],
  next: KindMap[K],
  also: Change[] = [],
): Promise<void> {
  checkVersion(current, version);
  // etcd compares the index the object carries: the one the client named.
  const object = { ...next, Version: { Index: version } };
  try {
    await store.commit([{ kind, op: 'update', object } as Change, ...also]);
  } catch (e) {
    if (e instanceof VersionConflict) throw outOfSequence();
    throw e;
  }
}
