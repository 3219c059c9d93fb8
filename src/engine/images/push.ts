/** `docker push`: layers (gzip), then the config, then a schema2 manifest under the tag. */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { notFound } from '../../util/errors.js';
import type { ImageStore, Image } from './store.js';
import { Hasher, shortId } from './blobs.js';
import type { LayerBlob } from './layers.js';
import { layerCompression, MT, type ImageManifest } from './manifest.js';
import type { ProgressStream } from './progress.js';
import { familiarName, formatReference, parseReference, repoName, type ImageReference } from './reference.js';
import { isInsecureRegistry, RegistryClient, type AuthConfig } from './registry.js';

/** Compressions in progress, per store (a process may hold several stores, as tests do). */
const compressingIn = new WeakMap<ImageStore, Map<string, Promise<LayerBlob>>>();

/** The layer as a gzip blob, compressing (once, then kept) when only the plain tar is stored. */
export function gzipBlobOf(store: ImageStore, diffId: string): Promise<LayerBlob> {
  const meta = store.layers.meta(diffId);
  const gz = meta.blobs.find((b) => layerCompression(b.mediaType) === 'gzip' && store.blobs.has(b.digest));
  if (gz) return Promise.resolve(gz);
  let inflight = compressingIn.get(store);
  if (!inflight) {
    inflight = new Map();
    compressingIn.set(store, inflight);
  }
  const running = inflight;
  let p = running.get(diffId);
  if (!p) {
    p = (async () => {
      const plain = meta.blobs.find((b) => layerCompression(b.mediaType) === 'none' && store.blobs.has(b.digest));
      if (!plain) throw new Error(`layer ${diffId} has no stored blob to push`);
      const tmp = store.blobs.tempPath('gzip');
      const hasher = new Hasher();
      try {
        await pipeline(store.blobs.readStream(plain.digest), createGzip(), hasher, fs.createWriteStream(tmp));
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw e;
      }
      const blob: LayerBlob = { digest: hasher.digest(), mediaType: MT.dockerLayerGzip, size: hasher.bytes };
      store.blobs.adopt(tmp, blob.digest);
      store.layers.addBlob(diffId, blob);
      return blob;
    })().finally(() => running.delete(diffId));
    running.set(diffId, p);
  }
  return p;
}

/** `POST /images/{name}/push?tag=`: one tag, or every tag of the repository when `tag` is empty. */
export async function pushImage(
  store: ImageStore,
  name: string,
  tag: string,
  auth: AuthConfig | undefined,
  progress: ProgressStream,
): Promise<void> {
  const repo = parseReference(name);
  const targets: Array<{ ref: ImageReference; image: Image }> = [];
  if (tag) {
    const ref = { domain: repo.domain, path: repo.path, tag };
    const found = store.find(formatReference(ref));
    if (!found?.ref) throw notFound(`An image does not exist locally with the tag: ${familiarName(repo)}`);
    targets.push({ ref, image: found.image });
  } else {
    for (const img of store.all()) {
      for (const r of store.refsOf(img.id)) {
        const p = parseReference(r);
        if (!p.digest && repoName(p) === repoName(repo)) targets.push({ ref: p, image: img });
      }
    }
    if (targets.length === 0) throw notFound(`An image does not exist locally with the tag: ${familiarName(repo)}`);
  }

  const client = new RegistryClient(repo, {
    insecure: isInsecureRegistry(repo.domain, store.config.insecureRegistries),
    auth,
    actions: 'pull,push',
  });
  progress.status(`The push refers to repository [${repoName(repo)}]`);
  for (const { ref, image } of targets) {
    const diffIds = image.config.rootfs.diff_ids;
    const unpin = store.pin(diffIds);
    try {
      const ids = [...diffIds].reverse();
      for (const d of ids) progress.status('Preparing', shortId(d));
      const blobs = new Map<string, LayerBlob>();
      // Top layer first, as dockerd lists them; each one is independent.
      for (const d of ids) {
        const blob = await gzipBlobOf(store, d);
        blobs.set(d, blob);
        if (await client.blobExists(blob.digest)) {
          store.layers.addSource(d, blob.digest, repoName(repo));
          progress.status('Layer already exists', shortId(d));
          continue;
        }
        // Another repository of the same registry has it: ask the registry to link it over.
        const from = (blob.sources ?? [])
          .map((r) => parseReference(r))
          .find((r) => r.domain === repo.domain && r.path !== repo.path);
        if (from && (await client.mountBlob(blob.digest, from.path))) {
          store.layers.addSource(d, blob.digest, repoName(repo));
          progress.status(`Mounted from ${from.path}`, shortId(d));
          continue;
        }
        // Counted through a pipe, which holds the bytes until the upload reads them
        // (a 'data' listener would start the flow while the upload session is still opening).
        const src = store.blobs
          .readStream(blob.digest)
          .pipe(new Hasher((n) => progress.bytes('Pushing', shortId(d), n, blob.size)));
        await client.uploadBlob(blob.digest, src, blob.size);
        store.layers.addSource(d, blob.digest, repoName(repo));
        progress.status('Pushed', shortId(d));
      }
      const configSize = store.blobs.size(image.id);
      if (!(await client.blobExists(image.id)))
        await client.uploadBlob(image.id, store.blobs.readStream(image.id), configSize);
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MT.dockerManifest,
        config: { mediaType: MT.dockerConfig, size: configSize, digest: image.id },
        layers: diffIds.map((d) => {
          const b = blobs.get(d)!;
          return { mediaType: MT.dockerLayerGzip, size: b.size, digest: b.digest };
        }),
      };
      const body = Buffer.from(JSON.stringify(manifest, null, 3));
      const digest = await client.putManifest(ref.tag!, MT.dockerManifest, body);
      store.setReference({ domain: ref.domain, path: ref.path, digest }, image.id);
      progress.status(`${ref.tag}: digest: ${digest} size: ${body.length}`);
      progress.aux({ Tag: ref.tag, Digest: digest, Size: body.length });
    } finally {
      unpin();
    }
  }
}
