/** `docker commit`: a container's changes become one more layer over its image. */
import type { Readable } from 'node:stream';
import type { ImageStore } from './store.js';
import { applyChanges, type ImageConfigWithOnBuild } from './changes.js';
import { ingestLayer } from './ingest.js';
import type { ImageConfigBlob } from './manifest.js';
import type { ImageReference } from './reference.js';

export interface CommitOptions {
  parentId: string;
  /** The container's Config: the new image runs as the container did. */
  containerConfig: Record<string, unknown>;
  /** The request body's Config: fields it sets win over the container's. */
  override?: Record<string, unknown>;
  changes: string[];
  author?: string;
  comment?: string;
  /** The container's argv, as history's created_by. */
  createdBy: string;
  target?: ImageReference;
}

/** The run settings an image keeps (dockerd's container.Config fields minus the per-run ones). */
const KEPT = [
  'User',
  'ExposedPorts',
  'Env',
  'Cmd',
  'Entrypoint',
  'Volumes',
  'WorkingDir',
  'Labels',
  'StopSignal',
  'Healthcheck',
  'OnBuild',
  'Shell',
  'StopTimeout',
];

function pick(c: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of KEPT) if (c && c[k] !== undefined && c[k] !== null && c[k] !== '') out[k] = c[k];
  return out;
}

export async function commitLayer(store: ImageStore, layer: Readable, o: CommitOptions): Promise<string> {
  const parent = store.get(o.parentId);
  if (!parent) throw new Error(`image ${o.parentId} of the container is gone`);
  const merged = { ...pick(o.containerConfig), ...pick(o.override) } as ImageConfigWithOnBuild;
  const config = applyChanges(merged, o.changes);
  const meta = await ingestLayer(store, layer);
  const created = new Date().toISOString();
  const p = parent.config;
  const blob: ImageConfigBlob = {
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    created,
    ...(o.author ? { author: o.author } : {}),
    ...(o.comment ? { comment: o.comment } : {}),
    config: { ...config, Env: config.Env ?? [] },
    rootfs: { type: 'layers', diff_ids: [...p.rootfs.diff_ids, meta.diffId] },
    history: [
      ...(p.history ?? []),
      {
        created,
        created_by: o.createdBy,
        ...(o.author ? { author: o.author } : {}),
        ...(o.comment ? { comment: o.comment } : {}),
      },
    ],
  };
  const unpin = store.pin(blob.rootfs.diff_ids);
  try {
    const img = store.addImage(Buffer.from(JSON.stringify(blob)), { parent: parent.id });
    if (o.target) store.setReference(o.target, img.id);
    return img.id;
  } finally {
    unpin();
  }
}

/**
 * A build step that changes only the run settings (CMD, ENV, LABEL, …): a new config over the
 * parent's layers, its history entry marked `empty_layer` as dockerd marks it.
 */
export function commitConfig(
  store: ImageStore,
  o: { parentId: string; config: Record<string, unknown>; createdBy: string },
): string {
  const parent = store.get(o.parentId);
  if (!parent) throw new Error(`image ${o.parentId} is gone`);
  const created = new Date().toISOString();
  const p = parent.config;
  const config = pick(o.config) as ImageConfigWithOnBuild;
  const blob: ImageConfigBlob = {
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    created,
    config: { ...config, Env: config.Env ?? [] },
    rootfs: { type: 'layers', diff_ids: [...p.rootfs.diff_ids] },
    history: [...(p.history ?? []), { created, created_by: o.createdBy, empty_layer: true }],
  };
  const unpin = store.pin(blob.rootfs.diff_ids);
  try {
    return store.addImage(Buffer.from(JSON.stringify(blob)), { parent: parent.id }).id;
  } finally {
    unpin();
  }
}
