/**
 * `docker pull`: manifest (a list or index picks linux/amd64), config, then the layers —
 * downloaded a few at a time, each checked against its digest and its diff ID, unpacked once.
 */
import { ApiError, notFound } from '../../util/errors.js';
import type { ImageStore } from './store.js';
import { shortId } from './blobs.js';
import { ingestLayer } from './ingest.js';
import {
  choosePlatform,
  HOST_PLATFORM,
  isImageManifest,
  isIndex,
  layerCompression,
  MT,
  type ImageConfigBlob,
  type ImageIndex,
  type ImageManifest,
} from './manifest.js';
import type { ProgressStream } from './progress.js';
import { familiarName, familiarString, formatReference, repoName, type ImageReference } from './reference.js';
import { isInsecureRegistry, RegistryClient, RegistryError, type AuthConfig } from './registry.js';

/** How many layers download at once (dockerd's default is 3). */
const CONCURRENT_DOWNLOADS = 3;

/** Registry errors as dockerd words them, with the status it answers when nothing was streamed yet. */
export function translatePullError(e: unknown, ref: ImageReference): Error {
  if (!(e instanceof RegistryError)) return e as Error;
  const name = familiarString(ref);
  if (e.code === 'MANIFEST_UNKNOWN' || (e.status === 404 && e.code === 'UNKNOWN'))
    return notFound(`manifest for ${name} not found: ${e.message}`);
  if (e.code === 'NAME_UNKNOWN') return notFound(`repository ${familiarName(ref)} not found: ${e.message}`);
  if (e.status === 401 || e.code === 'UNAUTHORIZED' || e.code === 'DENIED') {
    return new ApiError(
      404,
      `pull access denied for ${familiarName(ref)}, repository does not exist or may require 'docker login': ${e.message}`,
    );
  }
  return new ApiError(500, e.message);
}

/** `docker pull --all-tags`: every tag the registry lists for the repository, one after another. */
export async function pullAllTags(
  store: ImageStore,
  repo: ImageReference,
  auth: AuthConfig | undefined,
  progress: ProgressStream,
): Promise<void> {
  let tags: string[];
  try {
    const client = new RegistryClient(repo, {
      insecure: isInsecureRegistry(repo.domain, store.config.insecureRegistries),
      auth,
      actions: 'pull',
    });
    tags = await client.listTags();
  } catch (e) {
    throw translatePullError(e, repo);
  }
  if (tags.length === 0) throw notFound(`repository ${familiarName(repo)} has no tags`);
  for (const tag of tags) await pullImage(store, { domain: repo.domain, path: repo.path, tag }, auth, progress);
}

export async function pullImage(
  store: ImageStore,
  ref: ImageReference,
  auth: AuthConfig | undefined,
  progress: ProgressStream,
): Promise<void> {
  try {
    await doPull(store, ref, auth, progress);
  } catch (e) {
    throw translatePullError(e, ref);
  }
}

/** The layers not here yet, CONCURRENT_DOWNLOADS at a time, each checked against its digest and diff ID. */
async function downloadLayers(
  store: ImageStore,
  client: RegistryClient,
  ref: ImageReference,
  manifest: ImageManifest,
  diffIds: string[],
  progress: ProgressStream,
): Promise<void> {
  const todo: number[] = [];
  manifest.layers.forEach((l, i) => {
    if (store.layers.has(diffIds[i])) progress.status('Already exists', shortId(l.digest));
    else {
      progress.status('Pulling fs layer', shortId(l.digest));
      todo.push(i);
    }
  });
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const i = todo[next++];
      const l = manifest.layers[i];
      const id = shortId(l.digest);
      if (store.layers.has(diffIds[i])) {
        progress.status('Already exists', id);
        continue;
      }
      const { stream } = await client.getBlob(l.digest);
      await ingestLayer(store, stream, {
        expectedDigest: l.digest,
        expectedDiffId: diffIds[i],
        mediaType: l.mediaType,
        onBytes: (n) => progress.bytes('Downloading', id, n, l.size),
      });
      store.layers.addSource(diffIds[i], l.digest, repoName(ref));
      progress.status('Verifying Checksum', id);
      progress.status('Download complete', id);
      progress.status('Pull complete', id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_DOWNLOADS, todo.length) }, worker));
}

async function doPull(
  store: ImageStore,
  ref: ImageReference,
  auth: AuthConfig | undefined,
  progress: ProgressStream,
): Promise<void> {
  const client = new RegistryClient(ref, {
    insecure: isInsecureRegistry(ref.domain, store.config.insecureRegistries),
    auth,
    actions: 'pull',
  });
  const tagOrDigest = ref.digest ?? ref.tag ?? 'latest';
  const top = await client.getManifest(tagOrDigest);
  let manifestBody = top;
  if (isIndex(top.mediaType)) {
    const chosen = choosePlatform(JSON.parse(top.body.toString('utf8')) as ImageIndex);
    if (!chosen)
      throw new ApiError(
        404,
        `no matching manifest for ${HOST_PLATFORM.os}/${HOST_PLATFORM.architecture} in the manifest list entries`,
      );
    manifestBody = await client.getManifest(chosen.digest);
  }
  if (manifestBody.mediaType === MT.dockerSchema1 || manifestBody.mediaType === MT.dockerSchema1Signed) {
    throw new ApiError(
      400,
      `[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of ${familiarString(ref)} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2.`,
    );
  }
  if (!isImageManifest(manifestBody.mediaType))
    throw new ApiError(500, `unsupported manifest media type ${manifestBody.mediaType}`);
  const manifest = JSON.parse(manifestBody.body.toString('utf8')) as ImageManifest;
  for (const l of manifest.layers) {
    const c = layerCompression(l.mediaType);
    if (c === 'zstd')
      throw new ApiError(500, `layer ${l.digest}: zstd-compressed layers are not supported by this node`);
    if (c === 'unknown') throw new ApiError(500, `layer ${l.digest}: unsupported media type ${l.mediaType}`);
  }

  progress.status(`Pulling from ${familiarName(ref)}`, tagOrDigest);

  // The config first: it names each layer's diff ID, which decides what is already here.
  let configJson: Buffer;
  if (store.blobs.has(manifest.config.digest)) configJson = store.blobs.read(manifest.config.digest);
  else {
    const { stream } = await client.getBlob(manifest.config.digest);
    await store.blobs.putStream(stream, manifest.config.digest);
    configJson = store.blobs.read(manifest.config.digest);
  }
  const config = JSON.parse(configJson.toString('utf8')) as ImageConfigBlob;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length)
    throw new ApiError(500, `image config has ${diffIds.length} layers, manifest ${manifest.layers.length}`);

  // dockerd says "up to date" when the reference already named this very image.
  const upToDate = store.find(formatReference(ref))?.image.id === manifest.config.digest;
  const unpin = store.pin(diffIds);
  try {
    await downloadLayers(store, client, ref, manifest, diffIds, progress);

    const img = store.addImage(configJson);
    store.setPrivate(img.id, client.usedCredentials);
    if (ref.tag !== undefined && !ref.digest) store.setReference(ref, img.id);
    store.setReference({ domain: ref.domain, path: ref.path, digest: top.digest }, img.id);
    progress.status(`Digest: ${top.digest}`);
    progress.status(
      `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarString(ref)}`,
    );
  } finally {
    unpin();
  }
}
