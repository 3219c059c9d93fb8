import { badRequest } from '../../util/errors.js';
import type { ImageConfig } from '../types.js';
import type { HistoryEntry } from './manifest.js';
import { familiar, referenceFilterMatch } from './reference.js';
import type { Image } from './image.js';
import type { LayerMeta } from './layers.js';

// The Engine API's shapes of images: list, inspect, history.

/** What the views read of the image store. */
export interface ImageCatalog {
  all(): Image[];
  get(id: string): Image | undefined;
  lookup(ref: string): Image;
  refsOf(id: string): string[];
  repoTags(id: string): string[];
  repoDigests(id: string): string[];
  layers: { diffDir(diffId: string): string; has(diffId: string): boolean; meta(diffId: string): LayerMeta };
}

/** `GET /images/json` items, newest first. */
export function listImages(store: ImageCatalog, filters: Map<string, string[]>): Array<Record<string, unknown>> {
  const known = new Set(['dangling', 'reference', 'label', 'before', 'since']);
  for (const k of filters.keys()) if (!known.has(k)) throw badRequest(`invalid filter '${k}'`);
  const dangling = filters.get('dangling');
  if (dangling)
    for (const v of dangling)
      if (!['true', 'false', '1', '0'].includes(v)) throw badRequest(`invalid filter 'dangling=${v}'`);
  const wantDangling = dangling ? ['true', '1'].includes(dangling[0]) : undefined;
  const refPatterns = filters.get('reference') ?? [];
  const labels = filters.get('label') ?? [];
  const before = filters.get('before')?.map((r) => store.lookup(r));
  const since = filters.get('since')?.map((r) => store.lookup(r));
  const created = (i: Image) => Date.parse(i.config.created ?? '') || 0;

  const items: Array<Record<string, unknown>> = [];
  for (const img of store.all()) {
    const tagRefs = store.refsOf(img.id).filter((r) => !r.includes('@'));
    if (wantDangling !== undefined && wantDangling !== (tagRefs.length === 0)) continue;
    let tags = tagRefs.map(familiar);
    let digests = store.repoDigests(img.id);
    if (refPatterns.length) {
      // Like dockerd, only the matching names are listed, digests included.
      const matching = store.refsOf(img.id).filter((r) => refPatterns.some((p) => referenceFilterMatch(p, r)));
      if (matching.length === 0) continue;
      tags = matching.filter((r) => !r.includes('@')).map(familiar);
      digests = matching.filter((r) => r.includes('@')).map(familiar);
    }
    const imgLabels = img.config.config?.Labels ?? {};
    if (!labels.every((l) => matchLabel(imgLabels, l))) continue;
    if (before && !before.every((b) => created(img) < created(b))) continue;
    if (since && !since.every((s) => created(img) > created(s))) continue;
    items.push({
      Containers: -1,
      Created: Math.floor(created(img) / 1000),
      Id: img.id,
      Labels: img.config.config?.Labels ?? null,
      ParentId: liveParent(store, img),
      RepoDigests: digests,
      RepoTags: tags,
      SharedSize: -1,
      Size: img.size,
      VirtualSize: img.size,
    });
  }
  return items.sort((a, b) => (b.Created as number) - (a.Created as number));
}

/** The parent image's ID while that image is still here, as dockerd shows it; '' otherwise. */
function liveParent(store: ImageCatalog, img: Image): string {
  return img.record.parent && store.get(img.record.parent) ? img.record.parent : '';
}

/** `GET /images/{name}/json`. */
export function inspectImage(store: ImageCatalog, ref: string): Record<string, unknown> {
  const img = store.lookup(ref);
  const c = img.config;
  const diffIds = c.rootfs.diff_ids;
  const dirs = diffIds.map((d) => store.layers.diffDir(d));
  return {
    Id: img.id,
    RepoTags: store.repoTags(img.id),
    RepoDigests: store.repoDigests(img.id),
    Parent: liveParent(store, img),
    Comment: c.comment ?? '',
    Created: c.created ?? new Date(0).toISOString(),
    Container: '',
    ContainerConfig: containerConfigShape({}),
    DockerVersion: c.docker_version ?? '',
    Author: c.author ?? '',
    Config: containerConfigShape(c.config ?? {}),
    Architecture: c.architecture,
    ...(c.variant ? { Variant: c.variant } : {}),
    Os: c.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: {
      Name: 'overlay2',
      Data: dirs.length ? { LowerDir: [...dirs].reverse().join(':') } : null,
    },
    RootFS: { Type: c.rootfs.type ?? 'layers', Layers: diffIds },
    Metadata: { LastTagTime: img.record.lastTagTime ?? '0001-01-01T00:00:00Z' },
  };
}

/** `GET /images/{name}/history`, newest first. */
export function imageHistory(store: ImageCatalog, ref: string): Array<Record<string, unknown>> {
  const img = store.lookup(ref);
  const c = img.config;
  const hist: HistoryEntry[] = c.history?.length ? c.history : c.rootfs.diff_ids.map(() => ({ created: c.created }));
  const layerIds = [...c.rootfs.diff_ids];
  const rows = hist.map((h) => {
    const layer = h.empty_layer ? undefined : layerIds.shift();
    return {
      Id: '<missing>',
      Created: Math.floor((Date.parse(h.created ?? '') || 0) / 1000),
      CreatedBy: h.created_by ?? '',
      Tags: null as string[] | null,
      Size: layer && store.layers.has(layer) ? store.layers.meta(layer).size : 0,
      Comment: h.comment ?? '',
    };
  });
  rows.reverse();
  if (rows.length) {
    rows[0].Id = img.id;
    rows[0].Tags = store.repoTags(img.id);
  }
  return rows;
}

function matchLabel(labels: Record<string, string>, filter: string): boolean {
  const i = filter.indexOf('=');
  if (i < 0) return filter in labels;
  return labels[filter.slice(0, i)] === filter.slice(i + 1);
}

/** An image config in the full container-config shape `docker image inspect` shows. */
function containerConfigShape(cfg: ImageConfig & Record<string, unknown>): Record<string, unknown> {
  return {
    Hostname: '',
    Domainname: '',
    User: cfg.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(cfg.ExposedPorts ? { ExposedPorts: cfg.ExposedPorts } : {}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: cfg.Env ?? null,
    Cmd: cfg.Cmd ?? null,
    ...(cfg.Healthcheck ? { Healthcheck: cfg.Healthcheck } : {}),
    Image: '',
    Volumes: cfg.Volumes ?? null,
    WorkingDir: cfg.WorkingDir ?? '',
    Entrypoint: cfg.Entrypoint ?? null,
    OnBuild: null,
    Labels: cfg.Labels ?? null,
    ...(cfg.StopSignal ? { StopSignal: cfg.StopSignal } : {}),
  };
}
