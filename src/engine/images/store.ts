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
  familiarString,
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
  /**
   * Deleted by `docker rmi -f` while a stopped container still uses it: gone for users, but
   * kept (by full ID) with its layers so that container can start again. Collected later.
   */
  orphaned?: boolean;
  /** The image it was committed from (dockerd keeps this locally, not in the config blob). */
  parent?: string;
}

export interface Image {
  id: string;
  record: ImageRecord;
  config: ImageConfigBlob;
  /** Size of the uncompressed layers. */
  size: number;
}

export type DeleteResponseItem = { Untagged: string } | { Deleted: string };

/** A container that uses an image. */
export interface ImageUser {
  id: string;
  running: boolean;
}

/**
 * Tells whether a container uses an image: the container, or undefined. Set by the container
 * manager. A bare container ID is read as a running container (never deleted under it).
 */
export type InUseCheck = (imageId: string) => string | ImageUser | undefined;

const isIdPrefix = (s: string) => /^(sha256:)?[a-f0-9]{1,64}$/.test(s);

export class ImageStore {
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  private readonly images = new Map<string, Image>();
  /** Images deleted under a stopped container (see ImageRecord.orphaned). */
  private readonly orphans = new Map<string, Image>();
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
        (record.orphaned ? this.orphans : this.images).set(record.id, { id: record.id, record, config, size: this.sizeOf(config) });
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
    // A container whose image was force-deleted still starts: by full ID the orphan answers.
    const img = (isSha256Digest(ref) && this.orphans.get(ref)) || this.lookup(ref);
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
    if (!found) throw noSuchImage(missingName(ref));
    return found.image;
  }

  /** Like lookup, also telling which reference matched (undefined when found by ID). */
  find(ref: string): { image: Image; ref?: string } | undefined {
    if (isSha256Digest(ref)) {
      const img = this.images.get(ref);
      return img ? { image: img } : undefined;
    }
    // A malformed name is a 400, as in dockerd; a bare 64-hex ID is not a name but still an ID.
    const parsed = /^[a-f0-9]{64}$/.test(ref) ? undefined : withDefaultTag(parseReference(ref));
    if (parsed) {
      const full = formatReference(parsed.digest ? { ...parsed, tag: undefined } : parsed);
      const id = this.refs.get(full);
      if (id) return { image: this.images.get(id)!, ref: full };
      // name:tag@digest: the digest decides, as in Docker.
      if (parsed.digest && parsed.tag) {
        const digestRef = formatReference({ ...parsed, tag: undefined });
        const byDigest = this.refs.get(digestRef);
        if (byDigest) return { image: this.images.get(byDigest)!, ref: digestRef };
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

  /** Sorted, as Docker's reference store returns them, so listings do not depend on load order. */
  refsOf(id: string): string[] {
    return [...this.refs].filter(([, v]) => v === id).map(([k]) => k).sort();
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
  addImage(configJson: Buffer, opts: { parent?: string } = {}): Image {
    const config = JSON.parse(configJson.toString('utf8')) as ImageConfigBlob;
    if (!config.rootfs || !Array.isArray(config.rootfs.diff_ids)) throw badRequest('invalid image config: no rootfs.diff_ids');
    for (const d of config.rootfs.diff_ids) if (!this.layers.has(d)) throw new Error(`layer ${d} is not unpacked`);
    const id = this.blobs.put(configJson);
    const existing = this.images.get(id);
    if (existing) return existing;
    const orphan = this.orphans.get(id);
    if (orphan) {
      // The same image again (pull, load): it is a full image once more.
      delete orphan.record.orphaned;
      writeFileAtomic(path.join(this.recordsDir, `${hexOf(id)}.json`), JSON.stringify(orphan.record));
      this.orphans.delete(id);
      this.images.set(id, orphan);
      return orphan;
    }
    const record: ImageRecord = { id, loadedAt: new Date().toISOString(), ...(opts.parent ? { parent: opts.parent } : {}) };
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
    // The new name is checked first, as dockerd does: a bad one is a 400 even for an unknown image.
    if (!repo) throw badRequest('repository name must have at least one component');
    const target = parseReference(repo);
    if (target.digest) throw badRequest('refusing to create a tag with a digest reference');
    if (tag) {
      if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw badRequest(`invalid tag format`);
      target.tag = tag;
    }
    const img = this.lookup(source);
    this.setReference(withDefaultTag(target), img.id);
  }

  /** Drops one reference; answers whether it existed. */
  private untag(full: string): boolean {
    const had = this.refs.delete(full);
    if (had) this.saveRefs();
    return had;
  }

  /** Who uses an image; a bare container ID counts as a running container (the safe reading). */
  private userOf(id: string): ImageUser | undefined {
    const u = this.inUse(id);
    return typeof u === 'string' ? { id: u, running: true } : u;
  }

  /**
   * `docker rmi`, with dockerd's rules: a name untags (refused while a container uses the image
   * through its only name, unless forced) and deletes the image once nothing names it; an ID
   * deletes the image (refused while other repositories name it or a container uses it).
   */
  remove(ref: string, force: boolean, prune = true): DeleteResponseItem[] {
    void prune; // images have no parent chain here: nothing beyond the image itself to prune
    this.collectOrphans();
    const found = this.find(ref);
    if (!found) throw noSuchImage(missingName(ref));
    const img = found.image;
    const out: DeleteResponseItem[] = [];
    let refs = this.refsOf(img.id);
    let quiet = false;
    if (found.ref && !isIdPrefixOf(ref, img.id)) {
      if (!force && isSingleReference(refs)) {
        const user = this.userOf(img.id);
        if (user) throw conflict(`conflict: unable to remove repository reference "${ref}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${shortId(img.id)}`);
      }
      this.untag(found.ref);
      out.push({ Untagged: familiar(found.ref) });
      refs = this.refsOf(img.id);
      const gone = parseReference(found.ref);
      // A tag gone and only digests of that repository left: they go too.
      if (!gone.digest && !refs.some((r) => !parseReference(r).digest && repoName(parseReference(r)) === repoName(gone))) {
        for (const r of refs.filter((r) => repoName(parseReference(r)) === repoName(gone))) {
          this.untag(r);
          out.push({ Untagged: familiar(r) });
        }
        refs = this.refsOf(img.id);
      }
      if (refs.length > 0) return out;
      quiet = true;
    } else if (isSingleReference(refs)) {
      const c = this.deleteConflict(img, { stopped: !force, references: false });
      if (c) throw c.error;
      for (const r of refs) {
        this.untag(r);
        out.push({ Untagged: familiar(r) });
      }
    }
    const c = this.deleteConflict(img, { stopped: !force, references: !force });
    if (c) {
      // After an untag the image quietly stays for the container that uses it.
      if (quiet && c.used) return out;
      throw c.error;
    }
    for (const r of this.refsOf(img.id)) {
      this.untag(r);
      out.push({ Untagged: familiar(r) });
    }
    // Forced under a stopped container: deleted for users, kept for that container.
    if (this.userOf(img.id)) return out.concat(this.orphan(img));
    return out.concat(this.deleteImage(img));
  }

  private orphan(img: Image): DeleteResponseItem[] {
    img.record.orphaned = true;
    writeFileAtomic(path.join(this.recordsDir, `${hexOf(img.id)}.json`), JSON.stringify(img.record));
    this.images.delete(img.id);
    this.orphans.set(img.id, img);
    return [{ Deleted: img.id }];
  }

  /** Deletes the orphans no container uses any more, with their unused layers. */
  private collectOrphans(): void {
    for (const img of [...this.orphans.values()]) if (!this.userOf(img.id)) this.deleteImage(img);
  }

  /** What stops an image from being deleted: a running container always; names and stopped containers unless forced. */
  private deleteConflict(img: Image, soft: { stopped: boolean; references: boolean }): { error: Error; used: boolean } | undefined {
    const user = this.userOf(img.id);
    const say = (forced: string, why: string) => conflict(`conflict: unable to delete ${shortId(img.id)} (${forced}) - ${why}`);
    if (user?.running) return { error: say('cannot be forced', `image is being used by running container ${user.id.slice(0, 12)}`), used: true };
    if (soft.references && this.refsOf(img.id).length > 0) return { error: say('must be forced', 'image is referenced in multiple repositories'), used: false };
    if (soft.stopped && user) return { error: say('must be forced', `image is being used by stopped container ${user.id.slice(0, 12)}`), used: true };
    return undefined;
  }

  /** Removes the record, its config blob and the layers no other image uses. */
  private deleteImage(img: Image): DeleteResponseItem[] {
    const out: DeleteResponseItem[] = [{ Deleted: img.id }];
    for (const r of this.refsOf(img.id)) this.refs.delete(r);
    this.saveRefs();
    fs.rmSync(path.join(this.recordsDir, `${hexOf(img.id)}.json`), { force: true });
    this.images.delete(img.id);
    this.orphans.delete(img.id);
    this.blobs.remove(img.id);
    const used = new Set([...this.images.values(), ...this.orphans.values()].flatMap((i) => i.config.rootfs.diff_ids));
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
    this.collectOrphans();
    for (const img of [...this.images.values()]) {
      if (this.inUse(img.id)) continue;
      if (!all && this.repoTags(img.id).length > 0) continue;
      for (const r of this.refsOf(img.id)) {
        this.untag(r);
        deleted.push({ Untagged: familiar(r) });
      }
      space += img.size;
      deleted.push(...this.deleteImage(img));
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
      let digests = this.repoDigests(img.id);
      if (refPatterns.length) {
        // Like dockerd, only the matching names are listed, digests included.
        const matching = this.refsOf(img.id).filter((r) => refPatterns.some((p) => referenceFilterMatch(p, r)));
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
        ParentId: this.liveParent(img),
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
  private liveParent(img: Image): string {
    return img.record.parent && this.images.has(img.record.parent) ? img.record.parent : '';
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
      Parent: this.liveParent(img),
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

/** dockerd's isSingleReference: all references in one repository, at most one of them a tag. */
function isSingleReference(refs: string[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  const parsed = refs.map((r) => parseReference(r));
  const tags = parsed.filter((r) => !r.digest);
  if (tags.length > 1) return false;
  const digestRepos = new Set(parsed.filter((r) => r.digest).map(repoName));
  const single = tags[0] ?? parsed[0];
  return digestRepos.size === 1 && digestRepos.has(repoName(single));
}

/** How dockerd names what it did not find: `nosuch:latest`, `sha256:…` as given. */
function missingName(ref: string): string {
  if (isSha256Digest(ref) || /^[a-f0-9]{64}$/.test(ref)) return ref;
  return familiarString(withDefaultTag(parseReference(ref)));
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
  if (cfg.Healthcheck) out.Healthcheck = cfg.Healthcheck;
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
