/**
 * Unpacked layers: each layer (keyed by its diff ID, the sha256 of its uncompressed tar) is
 * unpacked ONCE into `<layers>/<hex>/diff`, ready to be an overlayfs lowerdir. OCI whiteouts
 * become overlayfs whiteouts (char device 0/0; opaque dirs get trusted.overlay.opaque=y).
 */
import { writeFileAtomicSync } from '../../util/atomic-file.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { run } from '../../util/run.js';
import { drainedOrClosed } from '../../util/drained.js';
import { Hasher, hexOf, type BlobStore } from './blobs.js';
import { isSha256Digest } from './reference.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** A blob that holds this layer as a registry would serve it. */
export interface LayerBlob {
  digest: string;
  mediaType: string;
  size: number;
  /** Repositories (`host/path`) known to hold this blob: a push elsewhere on that registry mounts it from there. */
  sources?: string[];
}

export interface LayerMeta {
  diffId: string;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Stored blobs with this content (plain tar from load/import, gzip from a pull or a push). */
  blobs: LayerBlob[];
}

export type Compression = 'gzip' | 'none' | 'zstd' | 'bzip2' | 'xz';

export function sniffCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

export function sniffFile(file: string): Compression {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const n = fs.readSync(fd, head, 0, 8, 0);
    return n < 4 ? 'none' : sniffCompression(head);
  } finally {
    fs.closeSync(fd);
  }
}

/** What a `.wh.` entry asks of overlayfs, or undefined for an ordinary file. */
export function whiteoutAction(
  basename: string,
): { kind: 'opaque' } | { kind: 'whiteout'; target: string } | { kind: 'drop' } | undefined {
  if (basename === OPAQUE_MARKER) return { kind: 'opaque' };
  if (!basename.startsWith(WHITEOUT_PREFIX)) return undefined;
  // `.wh..wh.*` are aufs metadata (hard-link dirs); they mean nothing to overlayfs.
  if (basename.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: 'drop' };
  const target = basename.slice(WHITEOUT_PREFIX.length);
  return target === '' || target === '.' || target === '..' ? { kind: 'drop' } : { kind: 'whiteout', target };
}

export class LayerStore {
  private readonly inflight = new Map<string, Promise<LayerMeta>>();

  constructor(
    readonly root: string,
    private readonly blobs: BlobStore,
  ) {
    fs.mkdirSync(root, { recursive: true });
    for (const f of fs.readdirSync(root)) {
      // A crash mid-unpack leaves a temp dir (or a dir without layer.json): never used, so removed.
      if (f.startsWith('.tmp-') || !fs.existsSync(path.join(root, f, 'layer.json')))
        fs.rmSync(path.join(root, f), { recursive: true, force: true });
    }
  }

  /** The directory overlayfs stacks (lowerdir). */
  diffDir(diffId: string): string {
    return path.join(this.root, hexOf(diffId), 'diff');
  }

  has(diffId: string): boolean {
    return isSha256Digest(diffId) && fs.existsSync(path.join(this.root, hexOf(diffId), 'layer.json'));
  }

  meta(diffId: string): LayerMeta {
    return JSON.parse(fs.readFileSync(path.join(this.root, hexOf(diffId), 'layer.json'), 'utf8')) as LayerMeta;
  }

  list(): string[] {
    return fs
      .readdirSync(this.root)
      .filter((f) => /^[a-f0-9]{64}$/.test(f))
      .map((f) => `sha256:${f}`);
  }

  /** Records that `blob` is another stored form of this layer (e.g. its gzip for pushes). */
  addBlob(diffId: string, blob: LayerBlob): void {
    const m = this.meta(diffId);
    if (m.blobs.some((b) => b.digest === blob.digest)) return;
    m.blobs.push(blob);
    writeFileAtomicSync(path.join(this.root, hexOf(diffId), 'layer.json'), JSON.stringify(m), 0o600);
  }

  /** Remembers that repository `repo` (`host/path`) holds the blob `digest` of this layer. */
  addSource(diffId: string, digest: string, repo: string): void {
    if (!this.has(diffId)) return;
    const m = this.meta(diffId);
    const b = m.blobs.find((x) => x.digest === digest);
    if (!b || b.sources?.includes(repo)) return;
    // The most recent first, and only a few: each is one mount attempt at most.
    b.sources = [repo, ...(b.sources ?? [])].slice(0, 5);
    writeFileAtomicSync(path.join(this.root, hexOf(diffId), 'layer.json'), JSON.stringify(m), 0o600);
  }

  /**
   * Unpacks a stored blob (gzip or plain tar). With `expectedDiffId` the uncompressed content
   * must hash to it; a layer already unpacked is not unpacked again. Concurrent callers share one unpack.
   */
  unpackBlob(blob: LayerBlob, expectedDiffId?: string): Promise<LayerMeta> {
    if (expectedDiffId && this.has(expectedDiffId)) {
      this.addBlob(expectedDiffId, blob);
      return Promise.resolve(this.meta(expectedDiffId));
    }
    const key = expectedDiffId ?? blob.digest;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.doUnpack(blob, expectedDiffId).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** True while a layer with this diff ID is being unpacked (a caller joins it through unpackBlob). */
  unpacking(diffId: string): boolean {
    return this.inflight.has(diffId);
  }

  /**
   * Unpacks a layer tar (gzip or plain) as it arrives, while the caller stores its blob from the
   * same bytes (ingest.ts): `blobOf` runs once the content matched `expectedDiffId` and returns
   * the blob, verified and stored; when it throws, nothing of the layer is kept.
   */
  unpackStream(
    src: Readable,
    expectedDiffId: string,
    blobOf: () => Promise<LayerBlob>,
    label = 'stream',
  ): Promise<LayerMeta> {
    const p = this.unpackFrom(src, expectedDiffId, blobOf, label).finally(() => this.inflight.delete(expectedDiffId));
    this.inflight.set(expectedDiffId, p);
    return p;
  }

  private doUnpack(blob: LayerBlob, expectedDiffId?: string): Promise<LayerMeta> {
    const src = this.blobs.path(blob.digest);
    const compression = sniffFile(src);
    if (compression !== 'gzip' && compression !== 'none')
      return Promise.reject(new Error(`unsupported layer compression ${compression} (${blob.digest})`));
    return this.unpackFrom(fs.createReadStream(src), expectedDiffId, () => Promise.resolve(blob), blob.digest);
  }

  private async unpackFrom(
    src: Readable,
    expectedDiffId: string | undefined,
    blobOf: () => Promise<LayerBlob>,
    label: string,
  ): Promise<LayerMeta> {
    const tmp = path.join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
    const diff = path.join(tmp, 'diff');
    fs.mkdirSync(diff, { recursive: true, mode: 0o755 });
    try {
      const { diffId, size } = await untar(src, diff);
      if (expectedDiffId && diffId !== expectedDiffId)
        throw new Error(`layer ${label}: diff ID ${diffId} does not match the image config's ${expectedDiffId}`);
      await convertWhiteouts(diff);
      const blob = await blobOf();
      const meta: LayerMeta = { diffId, size, blobs: [blob] };
      fs.writeFileSync(path.join(tmp, 'layer.json'), JSON.stringify(meta));
      const final = path.join(this.root, hexOf(diffId));
      if (this.has(diffId)) {
        fs.rmSync(tmp, { recursive: true, force: true });
        this.addBlob(diffId, blob);
        return this.meta(diffId);
      }
      fs.rmSync(final, { recursive: true, force: true }); // a dir without layer.json is junk
      fs.renameSync(tmp, final);
      return meta;
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  remove(diffId: string): void {
    if (!isSha256Digest(diffId)) return;
    const dir = path.join(this.root, hexOf(diffId));
    // Rename first so a crash mid-delete never leaves a layer that looks complete but is not.
    const doomed = path.join(this.root, `.tmp-rm-${randomBytes(6).toString('hex')}`);
    try {
      fs.renameSync(dir, doomed);
    } catch {
      return;
    }
    fs.rmSync(doomed, { recursive: true, force: true });
  }
}

/** The first bytes of `src` tell its compression; the returned iterable yields all of it. */
async function sniffStream(src: Readable): Promise<{ compression: Compression; data: AsyncIterable<Buffer> }> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let n = 0;
  let ended = false;
  while (n < 8) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    n += r.value.length;
  }
  const first = Buffer.concat(head);
  async function* data() {
    yield* head;
    if (ended) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { compression: first.length < 4 ? 'none' : sniffCompression(first), data: data() };
}

/**
 * Streams a layer tar (gzip or plain, told by its first bytes) into GNU tar (which keeps
 * owners, modes, links, devices and xattrs and refuses members that escape the directory)
 * while hashing the uncompressed bytes: the diff ID.
 */
async function untar(src: Readable, dir: string): Promise<{ diffId: string; size: number }> {
  let sniffed: Awaited<ReturnType<typeof sniffStream>>;
  try {
    sniffed = await sniffStream(src);
  } catch (e) {
    throw new Error(`reading layer: ${(e as Error).message}`);
  }
  const { compression, data } = sniffed;
  if (compression !== 'gzip' && compression !== 'none') {
    src.destroy();
    throw new Error(`unsupported layer compression ${compression}`);
  }
  const tar = spawn(
    'tar',
    [
      '-x',
      '-f',
      '-',
      '-C',
      dir,
      '--numeric-owner',
      '--same-owner',
      '--same-permissions',
      '--xattrs',
      '--xattrs-include=*',
      '--no-overwrite-dir',
    ],
    {
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  tar.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('close', (code) => resolve(code));
  });
  const hasher = new Hasher();
  const sink = tolerantSink(tar.stdin);
  try {
    // Larger output chunks than zlib's 16 KiB: fewer writes into tar's pipe.
    if (compression === 'gzip') await pipeline(data, createGunzip({ chunkSize: 1 << 18 }), hasher, sink);
    else await pipeline(data, hasher, sink);
  } catch (e) {
    src.destroy();
    tar.kill('SIGKILL');
    await exited.catch(() => undefined);
    throw new Error(`reading layer: ${(e as Error).message}`);
  }
  const code = await exited;
  if (code !== 0) throw new Error(`unpacking layer failed: ${stderr.trim() || `tar exited with ${code}`}`);
  return { diffId: hasher.digest(), size: hasher.bytes };
}

/**
 * Forwards into a child's stdin but keeps consuming after the child stops reading: tar may
 * exit at the end-of-archive marker before the trailing padding, and the whole stream must
 * still be hashed.
 */
function tolerantSink(stdin: Writable): Writable {
  let closed = false;
  stdin.on('error', () => (closed = true));
  stdin.on('close', () => (closed = true));
  // 'close' comes a tick after tar exits; `destroyed` tells at once.
  const open = () => !closed && !stdin.destroyed && !stdin.writableEnded;
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!open() || !stdin.write(chunk)) {
        if (!open()) return cb();
        drainedOrClosed(stdin).then(() => cb(), cb);
        return;
      }
      cb();
    },
    final(cb) {
      if (!open()) return cb();
      stdin.end(() => cb());
    },
  });
}

/** Turns OCI whiteout files into what overlayfs understands. */
export async function convertWhiteouts(dir: string): Promise<void> {
  const found = await run('find', [dir, '-name', `${WHITEOUT_PREFIX}*`, '-print0']);
  const paths = found.stdout.split('\0').filter(Boolean);
  for (const p of paths) {
    const parent = path.dirname(p);
    const action = whiteoutAction(path.basename(p));
    if (!action) continue;
    fs.rmSync(p, { recursive: true, force: true });
    if (action.kind === 'opaque') {
      await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', parent]);
    } else if (action.kind === 'whiteout') {
      const target = path.join(parent, action.target);
      fs.rmSync(target, { recursive: true, force: true });
      await run('mknod', ['-m', '0000', target, 'c', '0', '0']);
    }
  }
}
