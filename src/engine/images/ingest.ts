/** Turns a layer tarball (a stream or a stored blob) into a stored blob plus its unpacked layer. */
import type { Readable } from 'node:stream';
import type { ImageStore } from './store.js';
import type { LayerMeta } from './layers.js';
import { sniffFile } from './layers.js';
import { MT } from './manifest.js';

/**
 * Stores `src` as a blob (checked against `expectedDigest` when given) and unpacks it
 * (checked against `expectedDiffId`). A blob that was new and whose layer fails to unpack is removed.
 */
export async function ingestLayer(
  store: ImageStore,
  src: Readable,
  opts: { expectedDigest?: string; expectedDiffId?: string; mediaType?: string; onBytes?: (n: number) => void } = {},
): Promise<LayerMeta> {
  const existed = opts.expectedDigest ? store.blobs.has(opts.expectedDigest) : false;
  const { digest, size } = await store.blobs.putStream(src, opts.expectedDigest, opts.onBytes);
  return unpackStoredBlob(store, digest, size, opts.mediaType, opts.expectedDiffId, !existed);
}

export async function unpackStoredBlob(
  store: ImageStore,
  digest: string,
  size: number,
  mediaType: string | undefined,
  expectedDiffId: string | undefined,
  removeOnFailure: boolean,
): Promise<LayerMeta> {
  const type = mediaType ?? (sniffFile(store.blobs.path(digest)) === 'gzip' ? MT.dockerLayerGzip : MT.dockerLayerTar);
  try {
    return await store.layers.unpackBlob({ digest, mediaType: type, size }, expectedDiffId);
  } catch (e) {
    if (
      removeOnFailure &&
      !store.layers.list().some((d) => store.layers.meta(d).blobs.some((b) => b.digest === digest))
    )
      store.blobs.remove(digest);
    throw e;
  }
}
