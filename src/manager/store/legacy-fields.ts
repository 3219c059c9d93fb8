import type { Kind, KindMap } from '../../cluster/types.js';

/**
 * Fields an older shoald wrote into stored objects that this one no longer has. They are
 * dropped as an object is read from etcd, so an upgraded cluster never shows them (`docker node
 * inspect`) and the object's next write leaves them out.
 */
const LEGACY_FIELDS: Partial<Record<Kind, readonly string[]>> = {
  // A node's image report, moved to its own `nodeImages` object (a report no longer moves the node's Version).
  nodes: ['ImageShare'],
};

/** Removes the legacy fields of `kind` from a freshly decoded (not yet frozen) object. */
export function dropLegacyFields<K extends Kind>(kind: K, object: KindMap[K]): void {
  const fields = LEGACY_FIELDS[kind];
  if (!fields) return;
  const loose = object as unknown as Record<string, unknown>;
  for (const f of fields) delete loose[f];
}
