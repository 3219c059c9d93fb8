/**
 * The node's images: config blobs (whose digest is the image ID), image records, the
 * repository references (tags and digests) that point at them, and their unpacked layers.
 * Everything is written temp + rename, in an order where a crash leaves at worst an unused
 * blob or layer, never a half image: layers and blobs first, then the record, then references.
 */
import { writeFileAtomicSync } from '../../util/atomic-file.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { badRequest, noSuchImage } from '../../util/errors.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import type { ImageConfig, ResolvedImage } from '../types.js';
import { BlobStore, hexOf } from './blobs.js';
import { LayerStore, type LayerMeta } from './layers.js';
import type { ImageConfigBlob } from './manifest.js';
import type { DeleteResponseItem, Image, ImageRecord, ImageUser, InUseCheck } from './image.js';
import { imageHistory, inspectImage, listImages } from './views.js';
import { missingName, removeImage } from './rmi.js';
import {
  familiar,
  formatReference,
  isSha256Digest,
  parseReference,
  withDefaultTag,
  type ImageReference,
} from './reference.js';

export type { DeleteResponseItem, Image, ImageRecord, ImageUser, InUseCheck } from './image.js';

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
  private readonly listeners = new Set<() => void>();
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
        (record.orphaned ? this.orphans : this.images).set(record.id, {
          id: record.id,
          record,
          config,
          size: this.sizeOf(config),
        });
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

  /** Called after any change to the images or their names (the node's report to the managers follows). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  private saveRefs(): void {
    this.changed();
    writeFileAtomicSync(
      this.refsFile,
      JSON.stringify(Object.fromEntries([...this.refs].sort(([a], [b]) => a.localeCompare(b))), null, 1),
      0o600,
    );
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
    return {
      id: img.id,
      repoTags: this.repoTags(img.id),
      repoDigests: this.repoDigests(img.id),
      config: runConfig(img.config),
      layerDirs: dirs,
    };
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
    return [...this.refs]
      .filter(([, v]) => v === id)
      .map(([k]) => k)
      .sort();
  }

  repoTags(id: string): string[] {
    return this.refsOf(id)
      .filter((r) => !r.includes('@'))
      .map(familiar);
  }

  repoDigests(id: string): string[] {
    return this.refsOf(id)
      .filter((r) => r.includes('@'))
      .map(familiar);
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
    if (!config.rootfs || !Array.isArray(config.rootfs.diff_ids))
      throw badRequest('invalid image config: no rootfs.diff_ids');
    for (const d of config.rootfs.diff_ids) if (!this.layers.has(d)) throw new Error(`layer ${d} is not unpacked`);
    const id = this.blobs.put(configJson);
    const existing = this.images.get(id);
    if (existing) return existing;
    const orphan = this.orphans.get(id);
    if (orphan) {
      // The same image again (pull, load): it is a full image once more.
      delete orphan.record.orphaned;
      writeFileAtomicSync(path.join(this.recordsDir, `${hexOf(id)}.json`), JSON.stringify(orphan.record), 0o600);
      this.orphans.delete(id);
      this.images.set(id, orphan);
      this.changed();
      return orphan;
    }
    const record: ImageRecord = {
      id,
      loadedAt: new Date().toISOString(),
      ...(opts.parent ? { parent: opts.parent } : {}),
    };
    writeFileAtomicSync(path.join(this.recordsDir, `${hexOf(id)}.json`), JSON.stringify(record), 0o600);
    const img: Image = { id, record, config, size: this.sizeOf(config) };
    this.images.set(id, img);
    this.changed();
    return img;
  }

  /** Marks an image as pulled with credentials (or, false, as one anyone may pull). */
  setPrivate(id: string, isPrivate: boolean): void {
    const img = this.images.get(id);
    if (!img || !!img.record.private === isPrivate) return;
    if (isPrivate) img.record.private = true;
    else delete img.record.private;
    writeFileAtomicSync(path.join(this.recordsDir, `${hexOf(id)}.json`), JSON.stringify(img.record), 0o600);
    this.changed();
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
      writeFileAtomicSync(path.join(this.recordsDir, `${hexOf(id)}.json`), JSON.stringify(img.record), 0o600);
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
   * `docker rmi`, with dockerd's rules (rmi.ts): a name untags, an ID deletes; a container's
   * image is kept for it.
   */
  remove(ref: string, force: boolean, prune = true): DeleteResponseItem[] {
    void prune; // images have no parent chain here: nothing beyond the image itself to prune
    return removeImage(
      {
        find: (r) => this.find(r),
        refsOf: (id) => this.refsOf(id),
        untag: (full) => this.untag(full),
        userOf: (id) => this.userOf(id),
        orphan: (img) => this.orphan(img),
        deleteImage: (img) => this.deleteImage(img),
        collectOrphans: () => this.collectOrphans(),
      },
      ref,
      force,
    );
  }

  private orphan(img: Image): DeleteResponseItem[] {
    img.record.orphaned = true;
    writeFileAtomicSync(path.join(this.recordsDir, `${hexOf(img.id)}.json`), JSON.stringify(img.record), 0o600);
    this.images.delete(img.id);
    this.orphans.set(img.id, img);
    this.changed();
    return [{ Deleted: img.id }];
  }

  /** Deletes the orphans no container uses any more, with their unused layers. */
  private collectOrphans(): void {
    for (const img of [...this.orphans.values()]) if (!this.userOf(img.id)) this.deleteImage(img);
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

  // --- views (API shapes: views.ts) ---------------------------------------------------------

  /** `GET /images/json` items, newest first. */
  list(filters: Map<string, string[]>): Array<Record<string, unknown>> {
    return listImages(this, filters);
  }

  /** `GET /images/{name}/json`. */
  inspect(ref: string): Record<string, unknown> {
    return inspectImage(this, ref);
  }

  /** `GET /images/{name}/history`, newest first. */
  history(ref: string): Array<Record<string, unknown>> {
    return imageHistory(this, ref);
  }
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
