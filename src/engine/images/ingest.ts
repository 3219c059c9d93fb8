/** Turns a layer tarball (a stream or a stored blob) into a stored blob plus its unpacked layer. */
import fs from 'node:fs';
import { once } from 'node:events';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { ImageStore } from './store.js';
import type { LayerMeta } from './layers.js';
import { sniffFile } from './layers.js';
import { DigestMismatchError, Hasher } from './blobs.js';
import { MT } from './manifest.js';
import { drainedOrClosed } from '../../util/drained.js';

interface IngestOptions {
  expectedDigest?: string;
  expectedDiffId?: string;
  mediaType?: string;
  onBytes?: (n: number) => void;
}

/**
 * Stores `src` as a blob (checked against `expectedDigest` when given) and unpacks it
 * (checked against `expectedDiffId`). A blob that was new and whose layer fails to unpack is removed.
 */
export async function ingestLayer(store: ImageStore, src: Readable, opts: IngestOptions = {}): Promise<LayerMeta> {
  const d = opts.expectedDiffId;
  // One pass when the layer is new: no writing the blob, then reading it back to unpack.
  if (d && !store.layers.has(d) && !store.layers.unpacking(d)) return ingestStreaming(store, src, d, opts);
  const existed = opts.expectedDigest ? store.blobs.has(opts.expectedDigest) : false;
  const { digest, size } = await store.blobs.putStream(src, opts.expectedDigest, opts.onBytes);
  return unpackStoredBlob(store, digest, size, opts.mediaType, opts.expectedDiffId, !existed);
}

/** Bytes gathered before they move on: one step per 256 KiB instead of per 16 KiB TLS record. */
const BATCH = 1 << 18;

/** Joins small chunks (a TLS socket's records) into batches: every stage after it runs per batch. */
function batches(): Transform {
  let held: Buffer[] = [];
  let n = 0;
  const out = (t: Transform) => {
    if (n) t.push(held.length === 1 ? held[0] : Buffer.concat(held, n));
    held = [];
    n = 0;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      held.push(chunk);
      n += chunk.length;
      if (n >= BATCH) out(this);
      cb();
    },
    flush(cb) {
      out(this);
      cb();
    },
  });
}

/** Writes each chunk to both, at the pace of the slower; `raw` may stop reading (the unpack failed). */
function tee(file: fs.WriteStream, raw: PassThrough): Writable {
  const rawOpen = () => !raw.destroyed && !raw.writableEnded;
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      const fileOk = file.write(chunk);
      const rawOk = !rawOpen() || raw.write(chunk);
      if (fileOk && rawOk) return cb();
      Promise.all([fileOk || once(file, 'drain'), rawOk || drainedOrClosed(raw)]).then(() => cb(), cb);
    },
    final(cb) {
      if (rawOpen()) raw.end();
      file.end();
      finished(file).then(() => cb(), cb);
    },
    destroy(err, cb) {
      // Also called after a normal finish (autoDestroy): then `raw` still holds data to unpack.
      if (err) {
        raw.destroy(err);
        file.destroy();
      }
      cb(err);
    },
  });
}

/**
 * Stores and unpacks a new layer from the same bytes as they arrive: hashed and written to a
 * temp file on one side, unpacked on the other. The blob is kept only when its digest matches
 * (checked at the end, before the layer is kept); on any failure both are removed.
 */
async function ingestStreaming(
  store: ImageStore,
  src: Readable,
  expectedDiffId: string,
  opts: IngestOptions,
): Promise<LayerMeta> {
  const tmp = store.blobs.tempPath();
  const hasher = new Hasher(opts.onBytes);
  const raw = new PassThrough({ highWaterMark: 1 << 20 });
  const file = fs.createWriteStream(tmp, { mode: 0o600 });
  const ac = new AbortController();
  const stored = pipeline(src, batches(), hasher, tee(file, raw), { signal: ac.signal }).then(() => {
    const digest = hasher.digest();
    if (opts.expectedDigest && digest !== opts.expectedDigest)
      throw new DigestMismatchError(opts.expectedDigest, digest);
    return { digest, size: hasher.bytes };
  });
  stored.catch(() => undefined); // awaited below, in blobOf or on failure
  try {
    return await store.layers.unpackStream(
      raw,
      expectedDiffId,
      async () => {
        const { digest, size } = await stored;
        store.blobs.adopt(tmp, digest);
        const plain = sniffFile(store.blobs.path(digest)) !== 'gzip';
        return { digest, size, mediaType: opts.mediaType ?? (plain ? MT.dockerLayerTar : MT.dockerLayerGzip) };
      },
      opts.expectedDigest,
    );
  } catch (e) {
    // Once the source has ended, its digest check comes soon: a mismatch is the better reason.
    if (!raw.writableEnded) ac.abort();
    const storeErr = await stored.then(
      () => undefined,
      (x: unknown) => x,
    );
    fs.rmSync(tmp, { force: true });
    // The source's own failure (a peer gone, a wrong digest, a full disk) says more than the
    // unpack's "reading layer: aborted"; our abort (the unpack failed first) is no cause.
    const aborted = storeErr instanceof Error && storeErr.name === 'AbortError';
    throw storeErr && !aborted ? storeErr : e;
  }
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
