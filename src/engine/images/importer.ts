/** `docker import`: a root filesystem tarball becomes a one-layer image. */
import type { Readable } from 'node:stream';
import { badRequest } from '../../util/errors.js';
import type { ImageStore } from './store.js';
import { applyChanges } from './changes.js';
import { ingestLayer } from './ingest.js';
import type { ImageConfigBlob } from './manifest.js';
import { parseReference, withDefaultTag, type ImageReference } from './reference.js';

export interface ImportOptions {
  /** `repo` as the CLI sends it, possibly with a tag (`micro:1.0.0`). */
  repo?: string;
  tag?: string;
  message?: string;
  changes?: string[];
}

/** The target reference of an import or commit; checked before any byte is stored. */
export function importTarget(repo: string | undefined, tag: string | undefined): ImageReference | undefined {
  if (!repo) return undefined;
  const ref = parseReference(repo);
  if (ref.digest) throw badRequest('cannot import digest reference');
  if (tag) {
    if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw badRequest('invalid tag format');
    ref.tag = tag;
  }
  return withDefaultTag(ref);
}

export async function importImage(store: ImageStore, body: Readable, opts: ImportOptions): Promise<string> {
  const target = importTarget(opts.repo, opts.tag);
  const config = applyChanges({}, opts.changes ?? []);
  const layer = await ingestLayer(store, body);
  const created = new Date().toISOString();
  const blob: ImageConfigBlob = {
    architecture: 'amd64',
    os: 'linux',
    created,
    ...(opts.message ? { comment: opts.message } : {}),
    config: { ...config, Env: config.Env ?? [], Cmd: config.Cmd },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, comment: opts.message || 'Imported from -' }],
  };
  if (blob.config && blob.config.Cmd === undefined) delete blob.config.Cmd;
  const unpin = store.pin([layer.diffId]);
  try {
    const img = store.addImage(Buffer.from(JSON.stringify(blob)));
    if (target) store.setReference(target, img.id);
    return img.id;
  } finally {
    unpin();
  }
}
