/** Manifest, index and image-config shapes (Docker schema2 and OCI), and the choices made on them. */
import type { ImageConfig } from '../types.js';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociNondistTar: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
} as const;

/** What a registry GET /manifests is asked to answer, best first. */
export const MANIFEST_ACCEPT = [MT.dockerManifest, MT.dockerList, MT.ociManifest, MT.ociIndex].join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  author?: string;
  empty_layer?: boolean;
}

/** The image config blob (its sha256 is the image ID). */
export interface ImageConfigBlob {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  config?: ImageConfig & Record<string, unknown>;
  container_config?: Record<string, unknown>;
  rootfs: { type: string; diff_ids: string[] };
  history?: HistoryEntry[];
}

export const isIndex = (mt: string | undefined) => mt === MT.dockerList || mt === MT.ociIndex;
export const isImageManifest = (mt: string | undefined) => mt === MT.dockerManifest || mt === MT.ociManifest;

/** The platform this daemon runs: linux/amd64, the only one shoal supports. */
export const HOST_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

/**
 * Picks the entry of a manifest list / OCI index for `want`. Attestation manifests
 * (platform unknown/unknown) never match; among matches an exact variant wins.
 */
export function choosePlatform(index: ImageIndex, want: Platform = HOST_PLATFORM): Descriptor | undefined {
  const candidates = index.manifests.filter(
    (m) =>
      isImageManifest(m.mediaType) &&
      m.platform !== undefined &&
      m.platform.os === want.os &&
      m.platform.architecture === want.architecture &&
      m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  );
  if (want.variant) {
    const exact = candidates.find((m) => m.platform?.variant === want.variant);
    if (exact) return exact;
  }
  return candidates.find((m) => !m.platform?.variant) ?? candidates[0];
}

/**
 * Whether a layer's blob is gzip, plain tar or something this node cannot unpack.
 * The bytes decide in the end (unpack sniffs magic numbers); this is for early errors.
 */
export function layerCompression(mediaType: string): 'gzip' | 'none' | 'zstd' | 'unknown' {
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  if (mediaType.endsWith('gzip')) return 'gzip';
  if (mediaType === MT.dockerLayerTar || mediaType === MT.ociLayerTar || mediaType === MT.ociNondistTar) return 'none';
  return 'unknown';
}

export function isLayerMediaType(mediaType: string): boolean {
  return layerCompression(mediaType) !== 'unknown';
}
