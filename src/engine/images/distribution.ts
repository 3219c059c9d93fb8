/**
 * `GET /distribution/{name}/json`: what a registry holds under a name, without pulling it.
 * `docker service create/update` asks this to pin a service's image to its digest.
 */
import { ApiError } from '../../util/errors.js';
import type { ImageStore } from './store.js';
import {
  HOST_PLATFORM,
  MT,
  isImageManifest,
  isIndex,
  type ImageConfigBlob,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from './manifest.js';
import { translatePullError } from './pull.js';
import type { ImageReference } from './reference.js';
import { isInsecureRegistry, RegistryClient, RegistryError, type AuthConfig } from './registry.js';

export interface DistributionInspect {
  Descriptor: { mediaType: string; digest: string; size: number };
  Platforms: Platform[];
}

export async function inspectDistribution(
  store: ImageStore,
  ref: ImageReference,
  auth: AuthConfig | undefined,
): Promise<DistributionInspect> {
  try {
    const client = new RegistryClient(ref, {
      insecure: isInsecureRegistry(ref.domain, store.config.insecureRegistries),
      auth,
      actions: 'pull',
    });
    const m = await client.getManifest(ref.digest ?? ref.tag ?? 'latest');
    const Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.body.length };
    if (isIndex(m.mediaType)) {
      const index = JSON.parse(m.body.toString('utf8')) as ImageIndex;
      const Platforms = index.manifests.flatMap((d) => (d.platform && d.platform.os !== 'unknown' ? [d.platform] : []));
      return { Descriptor, Platforms };
    }
    if (!isImageManifest(m.mediaType)) throw new ApiError(500, `unsupported manifest media type ${m.mediaType}`);
    // A single-platform manifest: its config says which platform.
    const manifest = JSON.parse(m.body.toString('utf8')) as ImageManifest;
    let config: ImageConfigBlob;
    if (store.blobs.has(manifest.config.digest))
      config = JSON.parse(store.blobs.read(manifest.config.digest).toString('utf8')) as ImageConfigBlob;
    else {
      const { stream } = await client.getBlob(manifest.config.digest);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ImageConfigBlob;
    }
    const platform: Platform = {
      architecture: config.architecture,
      os: config.os,
      ...(config.variant ? { variant: config.variant } : {}),
    };
    return { Descriptor, Platforms: [platform] };
  } catch (e) {
    // dockerd passes the registry's refusal on as it is (its status, its `errors[0]`), not a pull's wording.
    if (e instanceof RegistryError && e.status === 401) throw new ApiError(401, e.message);
    throw translatePullError(e, ref);
  }
}

/**
 * The answer for an image no registry has but the swarm does (loaded on some node): the image
 * ID stands for the digest, so `service create` pins `name:tag@<image ID>` and every node runs
 * this very content (nodes fetch it from each other, checked against that digest).
 */
export function swarmImageDistribution(store: ImageStore, imageId: string): DistributionInspect {
  const local = store.get(imageId);
  const size = store.blobs.has(imageId) ? store.blobs.size(imageId) : 0;
  const platform: Platform = local
    ? { architecture: local.config.architecture, os: local.config.os }
    : { ...HOST_PLATFORM };
  return { Descriptor: { mediaType: MT.dockerConfig, digest: imageId, size }, Platforms: [platform] };
}
