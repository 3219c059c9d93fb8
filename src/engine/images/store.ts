/**
 * The node's images: config blobs (whose digest is the image ID), image records, the
 * repository references (tags and digests) that point at them, and their unpacked layers.
 * Everything is written temp + rename, in an order where a crash leaves at worst an unused
 * blob or layer, never a half image: layers and blobs first, then the record, then references.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { badRequest, conflict, noSuchImage } from '../../util/errors.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import type { ImageConfig, ResolvedImage } from '../types.js';
import { BlobStore, hexOf, shortId, writeFileAtomic } from './blobs.js';
import { LayerStore, type LayerMeta } from './layers.js';
import type { HistoryEntry, ImageConfigBlob } from './manifest.js';
import {
  familiar,
  formatReference,
  isSha256Digest,
  parseReference,
  referenceFilterMatch,
  repoName,
  withDefaultTag,
  type ImageReference,
} from './reference.js';

/** What the store keeps about one image besides its config blob. */
export interface ImageRecord {
  id: string;
  /** When this node got it (pull, load, import). */
  loadedAt: string;
  lastTagTime?: string;
}

export interface Image {
  id: string;
  record: ImageRecord;
  config: ImageConfigBlob;
  /** Size of the uncompressed layers. */
  size: number;
}

export type DeleteResponseItem = { Untagged: string } | { Deleted: string };

/** Tells whether a container uses an image: its ID, or undefined. Set by the container manager. */
export type InUseCheck = (imageId: string) => string | undefined;

const isIdPrefix = (s: string) => /^(sha256:)?[a-f0-9]{1,64}$/.test(s);

export class ImageStore {
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  private readonly images = new Map<string, Image>();
  /** Full reference (`docker.io/library/a:b`, `host/a@sha256:…`) → image ID. */
  private refs = new Map<string, string>();
  private inUse: InUseCheck = () => undefined;
  /** Layers an operation in progress relies on: never garbage-collected meanwhile. */
  private readonly pinned = new Map<string, number>();
  private readonly recordsDir: string;
  private readonly refsFile: string;

  private constructor(
    readonly config: DaemonConfig,
    readonly log: Logger,
  ) {
    const root = daemonPaths(config).images;
    this.blobs = new BlobStore(root);
    this.layers = new LayerStore(daemonPaths(config).layers, this.blobs);
    this.recordsDir = path.join(root, 'records');
    this.refsFile = path.join(root, 'repositories.json');
    fs.mkdirSync(this.recordsDir, { recursive: true });
  }

  static async open(config: DaemonConfig, log: Logger): Promise<ImageStore> {
    const s = new ImageStore(config, log);
    s.load();
    return s;
  }

  private load(): void {
    for (const f of fs.readdirSync(this.recordsDir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(f)) {
        fs.rmSync(path.join(this.recordsDir, f), { force: true });
        continue;
      }
      try {
        const record = JSON.parse(fs.readFileSync(path.join(this.recordsDir, f), 'utf8')) as ImageRecord;
        const config = JSON.parse(this.blobs.read(record.id).toString('utf8')) as ImageConfigBlob;
        const missing = config.rootfs.diff_ids.filter((d) => !this.layers.has(d));
        if (missing.length) throw new Error(`layers missing: ${missing.join(', ')}`);
        this.images.set(record.id, { id: record.id, record, config, size: this.sizeOf(config) });
      } catch (e) {
        this.log.warn({ err: e, record: f }, 'dropping unreadable image record');
      }
    }
    if (fs.existsSync(this.refsFile)) {
      const saved = JSON.parse(fs.readFileSync(this.refsFile, 'utf8')) as Record<string, string>;
      for (const [ref, id] of Object.entries(saved)) if (this.images.has(id)) this.refs.set(ref, id);
    }
    this.log.info({ images: this.images.size, references: this.refs.size }, 'image store open');
  }

  private sizeOf(config: ImageConfigBlob): number {
    return config.rootfs.diff_ids.reduce((n, d) => n + (this.layers.has(d) ? this.layers.meta(d).size : 0), 0);
  }

  private saveRefs(): void {
    writeFileAtomic(this.refsFile, JSON.stringify(Object.fromEntries([...this.refs].sort(([a], [b]) => a.localeCompare(b))), null, 1));
  }

  /** The container manager plugs in here so `docker rmi` answers 409 for images in use. */
  setInUseCheck(fn: InUseCheck): void {
    this.inUse = fn;
  }

  count(): number {
    return this.images.size;
  }

  all(): Image[] {
    return [...this.images.values()];
  }

  get(id: string): Image | undefined {
    return this.images.get(id);
  }

  /** Finds a local image by name[:tag], name@digest, full or short ID. 404 "No such image" otherwise. */
  async resolve(ref: string): Promise<ResolvedImage> {
    const img = this.lookup(ref);
    // overlayfs refuses the same lowerdir twice; a repeated identical layer adds nothing.
    const dirs: string[] = [];
    for (const d of img.config.rootfs.diff_ids) {
      const dir = this.layers.diffDir(d);
      const at = dirs.indexOf(dir);
      if (at >= 0) dirs.splice(at, 1);
      dirs.push(dir);
    }
    return { id: img.id, repoTags: this.repoTags(img.id), repoDigests: this.repoDigests(img.id), config: runConfig(img.config), layerDirs: dirs };
  }

  /** Docker's lookup order: a full ID, a reference, then an ID prefix. */
  lookup(ref: string): Image {
    const found = this.find(ref);
    if (!found) throw noSuchImage(ref);
    return found.image;
  }

  /** Like lookup, also telling which reference matched (undefined when found by ID). */
  find(ref: string): { image: Image; ref?: string } | undefined {
    if (isSha256Digest(ref)) {
      const img = this.images.get(ref);
      return img ? { image: img } : undefined;
    }
    let parsed: ImageReference | undefined;
    try {
      parsed = withDefaultTag(parseReference(ref));
    } catch {
      parsed = undefined;
    }
    if (parsed) {
      const full = formatReference(parsed.digest ? { ...parsed, tag: undefined } : parsed);
      const id = this.refs.get(full);
      if (id) return { image: this.images.get(id)!, ref: full };
      // name:tag@digest: the digest decides, as in Docker.
      if (parsed.digest && parsed.tag) {
        const byDigest = this.refs.get(formatReference({ ...parsed, tag: undefined }));
        if (byDigest) return { image: this.images.get(byDigest)! };
      }
    }
    if (isIdPrefix(ref)) {
      const prefix = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
      const matches = [...this.images.keys()].filter((id) => id.startsWith(prefix));
      if (matches.length > 1) throw badRequest(`ambiguous image ID prefix ${ref}`);
      if (matches.length === 1) return { image: this.images.get(matches[0])! };
    }
    return undefined;
  }

  refsOf(id: string): string[] {
    return [...this.refs].filter(([, v]) => v === id).map(([k]) => k);
  }

  repoTags(id: string): string[] {
    return this.refsOf(id).filter((r) => !r.includes('@')).map(familiar);
  }

  repoDigests(id: string): string[] {
    return this.refsOf(id).filter((r) => r.includes('@')).map(familiar);
  }

  // --- writing -----------------------------------------------------------------------------

  /** Keeps layers safe from garbage collection while an operation builds an image on them. */
  pin(diffIds: string[]): () => void {
    for (const d of diffIds) this.pinned.set(d, (this.pinned.get(d) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const d of diffIds) {
        const n = (this.pinned.get(d) ?? 1) - 1;
        if (n <= 0) this.pinned.delete(d);
        else this.pinned.set(d, n);
      }
    };
  }

  /**
   * Registers an image whose layers are all unpacked already: stores the config blob (its
   * digest is the ID) and the record. Returns the image (the existing one if already known).
   */
  addImage(configJson: Buffer): Image {
    const config = JSON.parse(configJson.toString('utf8')) as ImageConfigBlob;
    if (!config.rootfs || !Array.isArray(config.rootfs.diff_ids)) throw badRequest('invalid image config: no rootfs.diff_ids');
    for (const d of config.rootfs.diff_ids) if (!this.layers.has(d)) throw new Error(`layer ${d} is not unpacked`);
    const id = this.blobs.put(configJson);
    const existing = this.images.get(id);
    if (existing) return existing;
    const record: ImageRecord = { id, loadedAt: new Date().toISOString() };
    writeFileAtomic(path.join(this.recordsDir, `${hexOf(id)}.json`), JSON.stringify(record));
    const img: Image = { id, record, config, size: this.sizeOf(config) };
    this.images.set(id, img);
    return img;
  }

  /**
   * Points a tag or digest reference at an image. Returns the ID it pointed at before, if a
   * different one (that image may now be dangling).
   */
  setReference(ref: ImageReference, id: string): string | undefined {
    if (!this.images.has(id)) throw noSuchImage(id);
    const full = formatReference(ref.digest ? { ...ref, tag: undefined } : withDefaultTag(ref));
    const before = this.refs.get(full);
    if (before === id) return undefined;
    this.refs.set(full, id);
    const img = this.images.get(id)!;
    if (!ref.digest) {
      img.record.lastTagTime = new Date().toISOString();
      writeFileAtomic(path.join(this.recordsDir, `${hexOf(id)}.json`), JSON.stringify(img.record));
    }
    this.saveRefs();
    return before;
  }

  /** `POST /images/{name}/tag`. */
  tag(source: string, repo: string, tag: string): void {
    const img = this.lookup(source);
    if (!repo) throw badRequest('repository name must have at least one component');
    const target = parseReference(repo);
    if (target.digest) throw badRequest('refusing to create a tag with a digest reference');
    if (tag) {
      if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw badRequest(`invalid tag format`);
      target.tag = tag;
    }
    this.setReference(withDefaultTag(target), img.id);
  }

  /** Drops one reference; answers whether it existed. */
  private untag(full: string): boolean {
    const had = this.refs.delete(full);
    if (had) this.saveRefs();
    return had;
  }

  /** `docker rmi`: untags a reference and deletes the image when nothing refers to it any more. */
  remove(ref: string, force: boolean, prune = true): DeleteResponseItem[] {
    const found = this.find(ref);
    if (!found) throw noSuchImage(ref);
    const img = found.image;
    const out: DeleteResponseItem[] = [];
    const user = this.inUse(img.id);
    if (found.ref && !isIdPrefixOf(ref, img.id)) {
      const others = this.refsOf(img.id).filter((r) => r !== found.ref);
      if (!force && user && others.length === 0) {
        throw conflict(`conflict: unable to remove repository reference "${ref}" (must force) - container ${user.slice(0, 12)} is using its referenced image ${shortId(img.id)}`);
      }
      this.untag(found.ref);
      out.push({ Untagged: familiar(found.ref) });
      // Only digest references of the same repository left: they go too, and the image with them.
      const remaining = this.refsOf(img.id);
      const repo = repoName(parseReference(found.ref));
      if (remaining.some((r) => !r.includes('@') || repoName(parseReference(r)) !== repo)) return out;
      for (const r of remaining) {
        this.untag(r);
        out.push({ Untagged: familiar(r) });
      }
      if (user) return out; // forced while in use: untagged, the image stays for its container
      return out.concat(this.deleteImage(img, prune));
    }
    const refs = this.refsOf(img.id);
    if (!force) {
      const repos = new Set(refs.map((r) => repoName(parseReference(r))));
      if (repos.size > 1) throw conflict(`conflict: unable to delete ${shortId(img.id)} (must be forced) - image is referenced in multiple repositories`);
      if (user) throw conflict(`conflict: unable to delete ${shortId(img.id)} (must be forced) - image is being used by container ${user.slice(0, 12)}`);
    }
    for (const r of refs) {
      this.untag(r);
      out.push({ Untagged: familiar(r) });
    }
    if (user) return out;
    return out.concat(this.deleteImage(img, prune));
  }

  /** Removes the record, its config blob and the layers no other image uses. */
  private deleteImage(img: Image, prune: boolean): DeleteResponseItem[] {
    void prune; // images have no parent chain here: nothing beyond the image itself to prune
    const out: DeleteResponseItem[] = [{ Deleted: img.id }];
    for (const r of this.refsOf(img.id)) this.refs.delete(r);
    this.saveRefs();
    fs.rmSync(path.join(this.recordsDir, `${hexOf(img.id)}.json`), { force: true });
    this.images.delete(img.id);
    this.blobs.remove(img.id);
    const used = new Set([...this.images.values()].flatMap((i) => i.config.rootfs.diff_ids));
    for (const d of new Set(img.config.rootfs.diff_ids)) {
      if (used.has(d) || this.pinned.has(d) || !this.layers.has(d)) continue;
      const meta: LayerMeta = this.layers.meta(d);
      this.layers.remove(d);
      for (const b of meta.blobs) this.blobs.remove(b.digest);
      out.push({ Deleted: d });
    }
    return out;
  }

  /** `docker image prune`: dangling images (no tags) no container uses; `all` also unused tagged ones. */
  prune(all: boolean): { ImagesDeleted: DeleteResponseItem[]; SpaceReclaimed: number } {
    const deleted: DeleteResponseItem[] = [];
    let space = 0;
    for (const img of [...this.images.values()]) {
      if (this.inUse(img.id)) continue;
      if (!all && this.repoTags(img.id).length > 0) continue;
      for (const r of this.refsOf(img.id)) {
        this.untag(r);
        deleted.push({ Untagged: familiar(r) });
      }
      space += img.size;
      deleted.push(...this.deleteImage(img, true));
    }
    return { ImagesDeleted: deleted, SpaceReclaimed: space };
  }

  // --- views (API shapes) -----------------------------------------------------------------

  /** `GET /images/json` items, newest first. */
  list(filters: Map<string, string[]>): Array<Record<string, unknown>> {
    const known = new Set(['dangling', 'reference', 'label', 'before', 'since']);
    for (const k of filters.keys()) if (!known.has(k)) throw badRequest(`invalid filter '${k}'`);
    const dangling = filters.get('dangling');
    if (dangling) for (const v of dangling) if (!['true', 'false', '1', '0'].includes(v)) throw badRequest(`invalid filter 'dangling=${v}'`);
    const wantDangling = dangling ? ['true', '1'].includes(dangling[0]) : undefined;
    const refPatterns = filters.get('reference') ?? [];
    const labels = filters.get('label') ?? [];
    const before = filters.get('before')?.map((r) => this.lookup(r));
    const since = filters.get('since')?.map((r) => this.lookup(r));
    const created = (i: Image) => Date.parse(i.config.created ?? '') || 0;

    const items: Array<Record<string, unknown>> = [];
    for (const img of this.images.values()) {
      const tagRefs = this.refsOf(img.id).filter((r) => !r.includes('@'));
      if (wantDangling !== undefined && wantDangling !== (tagRefs.length === 0)) continue;
      let tags = tagRefs.map(familiar);
      if (refPatterns.length) {
        const matching = tagRefs.filter((r) => refPatterns.some((p) => referenceFilterMatch(p, r)));
        if (matching.length === 0) continue;
        tags = matching.map(familiar);
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
        ParentId: '',
        RepoDigests: this.repoDigests(img.id),
        RepoTags: tags,
        SharedSize: -1,
        Size: img.size,
        VirtualSize: img.size,
      });
    }
    return items.sort((a, b) => (b.Created as number) - (a.Created as number));
  }

  /** `GET /images/{name}/json`. */
  inspect(ref: string): Record<string, unknown> {
    const img = this.lookup(ref);
    const c = img.config;
    const diffIds = c.rootfs.diff_ids;
    const dirs = diffIds.map((d) => this.layers.diffDir(d));
    return {
      Id: img.id,
      RepoTags: this.repoTags(img.id),
      RepoDigests: this.repoDigests(img.id),
      Parent: '',
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
  history(ref: string): Array<Record<string, unknown>> {
    const img = this.lookup(ref);
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
        Size: layer && this.layers.has(layer) ? this.layers.meta(layer).size : 0,
        Comment: h.comment ?? '',
      };
    });
    rows.reverse();
    if (rows.length) {
      rows[0].Id = img.id;
      rows[0].Tags = this.repoTags(img.id);
    }
    return rows;
  }
}

const isIdPrefixOf = (ref: string, id: string) => isIdPrefix(ref) && id.startsWith(ref.startsWith('sha256:') ? ref : `sha256:${ref}`);

function matchLabel(labels: Record<string, string>, filter: string): boolean {
  const i = filter.indexOf('=');
  if (i < 0) return filter in labels;
  return labels[filter.slice(0, i)] === filter.slice(i + 1);
}

/** The parts of an image config containers run with (what ResolvedImage.config carries). */
function runConfig(c: ImageConfigBlob): ImageConfig {
  const cfg = c.config ?? {};
  const out: ImageConfig = {};
  if (cfg.Env) out.Env = cfg.Env;
  if (cfg.Cmd) out.Cmd = cfg.Cmd;
  if (cfg.Entrypoint) out.Entrypoint = cfg.Entrypoint;
  if (cfg.WorkingDir) out.WorkingDir = cfg.WorkingDir;
  if (cfg.User) out.User = cfg.User;
  if (cfg.ExposedPorts) out.ExposedPorts = cfg.ExposedPorts;
  if (cfg.Labels) out.Labels = cfg.Labels;
  if (cfg.StopSignal) out.StopSignal = cfg.StopSignal;
  if (cfg.Volumes) out.Volumes = cfg.Volumes;
  return out;
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
    Image: '',
    Volumes: cfg.Volumes ?? null,
    WorkingDir: cfg.WorkingDir ?? '',
    Entrypoint: cfg.Entrypoint ?? null,
    OnBuild: null,
    Labels: cfg.Labels ?? null,
    ...(cfg.StopSignal ? { StopSignal: cfg.StopSignal } : {}),
  };
}
