/**
 * `docker load` and `docker save`: image archives in Docker's format (manifest.json) and as an
 * OCI image layout (oci-layout, index.json, blobs/). Save writes both, as Docker 25+ does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { badRequest } from '../../util/errors.js';
import type { ImageStore, Image } from './store.js';
import { hexOf, sha256 } from './blobs.js';
import { ingestLayer } from './ingest.js';
import { sniffCompression } from './layers.js';
import {
  choosePlatform,
  isImageManifest,
  isIndex,
  MT,
  type Descriptor,
  type ImageConfigBlob,
  type ImageIndex,
  type ImageManifest,
} from './manifest.js';
import type { ProgressStream } from './progress.js';
import { familiar, formatReference, parseReference, withDefaultTag, type ImageReference } from './reference.js';

/** Unpacks the archive's files into `dir` (regular files and in-archive symlinks only). */
async function extractArchive(body: Readable, dir: string): Promise<void> {
  const extract = tar.extract();
  const root = path.resolve(dir);
  const inside = (name: string) => {
    const p = path.resolve(root, name);
    if (p !== root && !p.startsWith(root + path.sep)) throw badRequest(`invalid archive: ${name} escapes the archive`);
    return p;
  };
  extract.on('entry', (header, stream, next) => {
    const done = (e?: unknown) => next(e as Error | undefined);
    try {
      const target = inside(header.name);
      if (header.type === 'directory') {
        fs.mkdirSync(target, { recursive: true });
        stream.resume();
        stream.on('end', () => done());
      } else if (header.type === 'file' || header.type === 'contiguous-file') {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        pipeline(stream, fs.createWriteStream(target)).then(() => done(), done);
      } else if (header.type === 'symlink' && header.linkname) {
        // Old `docker save` links repeated layers to their first copy; only links inside count.
        inside(path.join(path.dirname(header.name), header.linkname));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.symlinkSync(header.linkname, target);
        stream.resume();
        stream.on('end', () => done());
      } else {
        stream.resume();
        stream.on('end', () => done());
      }
    } catch (e) {
      stream.resume();
      done(e);
    }
  });
  // The archive itself may be gzip-compressed (`docker save | gzip`): sniff the first chunk.
  // One iterator throughout: leaving a for-await loop early would destroy the body stream.
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  async function* all(): AsyncGenerator<Buffer> {
    if (first.done) return;
    yield first.value;
    for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
  }
  const src = Readable.from(all());
  if (!first.done && sniffCompression(first.value) === 'gzip') await pipeline(src, createGunzip(), extract);
  else await pipeline(src, extract);
}

function readIn(dir: string, rel: string): Buffer {
  const p = fs.realpathSync(path.resolve(dir, rel));
  if (!p.startsWith(fs.realpathSync(dir) + path.sep)) throw badRequest(`invalid archive: ${rel} escapes the archive`);
  return fs.readFileSync(p);
}

function openIn(dir: string, rel: string): fs.ReadStream {
  const p = fs.realpathSync(path.resolve(dir, rel));
  if (!p.startsWith(fs.realpathSync(dir) + path.sep)) throw badRequest(`invalid archive: ${rel} escapes the archive`);
  return fs.createReadStream(p);
}

interface ArchiveImage {
  config: Buffer;
  layerFiles: string[];
  /** Full references to tag the image with. */
  refs: ImageReference[];
}

/** Docker's manifest.json: `[{Config, RepoTags, Layers}]`. */
function fromDockerManifest(dir: string): ArchiveImage[] {
  const entries = JSON.parse(readIn(dir, 'manifest.json').toString('utf8')) as Array<{
    Config: string;
    RepoTags?: string[] | null;
    Layers: string[];
  }>;
  if (!Array.isArray(entries)) throw badRequest('invalid archive: manifest.json is not a list');
  return entries.map((e) => ({
    config: readIn(dir, e.Config),
    layerFiles: e.Layers,
    refs: (e.RepoTags ?? []).map((t) => withDefaultTag(parseReference(t))),
  }));
}

/** OCI layout: index.json → (index →) manifest → config + layers, names from annotations. */
function fromOciLayout(dir: string): ArchiveImage[] {
  const blobPath = (d: Descriptor) => path.join('blobs', d.digest.split(':')[0], d.digest.split(':')[1] ?? '');
  const index = JSON.parse(readIn(dir, 'index.json').toString('utf8')) as ImageIndex;
  const out: ArchiveImage[] = [];
  for (const top of index.manifests ?? []) {
    let desc: Descriptor | undefined = top;
    if (isIndex(desc.mediaType))
      desc = choosePlatform(JSON.parse(readIn(dir, blobPath(desc)).toString('utf8')) as ImageIndex);
    if (!desc || !isImageManifest(desc.mediaType)) continue;
    const manifest = JSON.parse(readIn(dir, blobPath(desc)).toString('utf8')) as ImageManifest;
    const name =
      top.annotations?.['io.containerd.image.name'] ?? top.annotations?.['org.opencontainers.image.ref.name'];
    const refs: ImageReference[] = [];
    if (name) {
      try {
        const r = parseReference(name);
        // A bare ref.name such as `1.0.0` is only a tag: it names nothing on its own.
        if (name.includes('/') || name.includes(':') || top.annotations?.['io.containerd.image.name'])
          refs.push(withDefaultTag(r));
      } catch {
        /* an annotation that is not a reference names nothing */
      }
    }
    out.push({ config: readIn(dir, blobPath(manifest.config)), layerFiles: manifest.layers.map(blobPath), refs });
  }
  return out;
}

/** `POST /images/load`. Writes `Loaded image: …` lines to `progress`. */
export async function loadImages(store: ImageStore, body: Readable, progress: ProgressStream): Promise<void> {
  const dir = store.blobs.tempPath('load');
  fs.mkdirSync(dir, { recursive: true });
  try {
    await extractArchive(body, dir);
    const images = fs.existsSync(path.join(dir, 'manifest.json'))
      ? fromDockerManifest(dir)
      : fs.existsSync(path.join(dir, 'index.json'))
        ? fromOciLayout(dir)
        : undefined;
    if (!images) throw badRequest('invalid archive: no manifest.json or OCI index.json found');
    if (images.length === 0) throw badRequest('invalid archive: it holds no image');
    for (const a of images) {
      let config: ImageConfigBlob;
      try {
        config = JSON.parse(a.config.toString('utf8')) as ImageConfigBlob;
      } catch {
        throw badRequest('invalid archive: image config is not JSON');
      }
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== a.layerFiles.length)
        throw badRequest(`invalid archive: config has ${diffIds.length} layers, manifest ${a.layerFiles.length}`);
      const unpin = store.pin(diffIds);
      try {
        for (let i = 0; i < diffIds.length; i++) {
          if (store.layers.has(diffIds[i])) continue;
          await ingestLayer(store, openIn(dir, a.layerFiles[i]), { expectedDiffId: diffIds[i] });
        }
        const img = store.addImage(a.config);
        if (a.refs.length === 0) progress.stream(`Loaded image ID: ${img.id}\n`);
        for (const ref of a.refs) {
          const old = store.setReference(ref, img.id);
          const name = familiar(formatReference(ref));
          if (old)
            progress.stream(`The image ${name} already exists, renaming the old one with ID ${old} to empty string\n`);
          progress.stream(`Loaded image: ${name}\n`);
        }
      } finally {
        unpin();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `GET /images/get`: the named images as one archive (Docker manifest.json + OCI layout). */
export async function saveImages(store: ImageStore, names: string[], out: Writable): Promise<void> {
  if (names.length === 0) throw badRequest('no images given');
  const chosen = new Map<string, { image: Image; tags: Set<string> }>();
  for (const n of names) {
    const found = store.find(n);
    if (!found) throw badRequest(`reference does not exist: ${n}`);
    const entry = chosen.get(found.image.id) ?? { image: found.image, tags: new Set<string>() };
    if (found.ref && !found.ref.includes('@')) entry.tags.add(found.ref);
    chosen.set(found.image.id, entry);
  }

  const pack = tar.pack();
  const done = pipeline(pack, out);
  const written = new Set<string>();
  const addBuffer = (name: string, data: Buffer) =>
    new Promise<void>((resolve, reject) =>
      pack.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (e) =>
        e ? reject(e) : resolve(),
      ),
    );
  const addBlob = async (digest: string) => {
    if (written.has(digest)) return;
    written.add(digest);
    const size = store.blobs.size(digest);
    await new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ name: `blobs/sha256/${hexOf(digest)}`, size, mode: 0o644, mtime: new Date(0) }, (e) =>
        e ? reject(e) : resolve(),
      );
      store.blobs.readStream(digest).on('error', reject).pipe(entry);
    });
  };

  const dockerManifest: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  const index: ImageIndex = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
  await addBuffer('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  for (const { image, tags } of chosen.values()) {
    await addBlob(image.id);
    const layers: Descriptor[] = [];
    for (const diffId of image.config.rootfs.diff_ids) {
      const meta = store.layers.meta(diffId);
      // Prefer the plain tar: what `docker save` writes and any loader reads.
      const blob =
        meta.blobs.find((b) => b.digest === diffId && store.blobs.has(b.digest)) ??
        meta.blobs.find((b) => store.blobs.has(b.digest));
      if (!blob) throw new Error(`no stored blob for layer ${diffId}`);
      await addBlob(blob.digest);
      layers.push({
        mediaType: blob.digest === diffId ? MT.ociLayerTar : MT.ociLayerGzip,
        digest: blob.digest,
        size: store.blobs.size(blob.digest),
      });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: image.id, size: store.blobs.size(image.id) },
      layers,
    };
    const manifestJson = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = sha256(manifestJson);
    if (!written.has(manifestDigest)) {
      written.add(manifestDigest);
      await addBuffer(`blobs/sha256/${hexOf(manifestDigest)}`, manifestJson);
    }
    const repoTags = [...tags].map(familiar);
    dockerManifest.push({
      Config: `blobs/sha256/${hexOf(image.id)}`,
      RepoTags: repoTags,
      Layers: layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`),
    });
    const base = { mediaType: MT.ociManifest, digest: manifestDigest, size: manifestJson.length };
    if (tags.size === 0) index.manifests.push(base);
    for (const t of tags) {
      const r = parseReference(t);
      index.manifests.push({
        ...base,
        annotations: { 'io.containerd.image.name': t, 'org.opencontainers.image.ref.name': r.tag ?? 'latest' },
      });
    }
  }
  await addBuffer('index.json', Buffer.from(JSON.stringify(index)));
  await addBuffer('manifest.json', Buffer.from(JSON.stringify(dockerManifest)));
  pack.finalize();
  await done;
}
