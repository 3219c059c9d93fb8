/** Content-addressed blobs (manifests, configs, layer tarballs) stored by sha256; every write is temp + rename. */
import { writeFileAtomicSync } from '../../util/atomic-file.js';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isSha256Digest } from './reference.js';

export const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
export const hexOf = (digest: string) => digest.slice('sha256:'.length);
export const shortId = (id: string) => hexOf(id).slice(0, 12);

export class DigestMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** A pass-through stream that hashes and counts what flows through it. */
export class Hasher extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
  /** Valid once the stream has ended. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

export class BlobStore {
  private readonly dir: string;
  readonly tmpDir: string;

  constructor(root: string) {
    this.dir = path.join(root, 'blobs', 'sha256');
    this.tmpDir = path.join(root, 'tmp');
    fs.mkdirSync(this.dir, { recursive: true });
    // Leftovers of writes a crash interrupted: never referenced by anything.
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
    fs.mkdirSync(this.tmpDir, { recursive: true });
  }

  path(digest: string): string {
    if (!isSha256Digest(digest)) throw new Error(`unsupported digest ${digest}`);
    return path.join(this.dir, hexOf(digest));
  }

  has(digest: string): boolean {
    return isSha256Digest(digest) && fs.existsSync(this.path(digest));
  }

  size(digest: string): number {
    return fs.statSync(this.path(digest)).size;
  }

  read(digest: string): Buffer {
    return fs.readFileSync(this.path(digest));
  }

  /** `chunk`: bytes per read (larger: fewer, cheaper steps for a big blob sent whole). */
  readStream(digest: string, chunk?: number): fs.ReadStream {
    return fs.createReadStream(this.path(digest), chunk ? { highWaterMark: chunk } : {});
  }

  /** A fresh path under the store's temp dir (same filesystem, so rename is atomic). */
  tempPath(label = 'blob'): string {
    return path.join(this.tmpDir, `${label}-${randomBytes(6).toString('hex')}`);
  }

  put(data: Buffer | string): string {
    const digest = sha256(data);
    if (!this.has(digest)) writeFileAtomicSync(this.path(digest), data, 0o600);
    return digest;
  }

  /**
   * Stores a stream; when `expected` is given the content must hash to it, or nothing is kept.
   * `onBytes` reports the running byte count (progress bars).
   */
  async putStream(
    src: Readable,
    expected?: string,
    onBytes?: (n: number) => void,
  ): Promise<{ digest: string; size: number }> {
    const tmp = this.tempPath();
    const hasher = new Hasher(onBytes);
    try {
      await pipeline(src, hasher, fs.createWriteStream(tmp, { mode: 0o600 }));
      const digest = hasher.digest();
      if (expected && digest !== expected) throw new DigestMismatchError(expected, digest);
      if (this.has(digest)) fs.rmSync(tmp, { force: true });
      else fs.renameSync(tmp, this.path(digest));
      return { digest, size: hasher.bytes };
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Moves an already-verified temp file into place under `digest`. */
  adopt(tmp: string, digest: string): void {
    if (this.has(digest)) fs.rmSync(tmp, { force: true });
    else fs.renameSync(tmp, this.path(digest));
  }

  remove(digest: string): void {
    if (isSha256Digest(digest)) fs.rmSync(this.path(digest), { force: true });
  }

  list(): string[] {
    return fs
      .readdirSync(this.dir)
      .filter((f) => /^[a-f0-9]{64}$/.test(f))
      .map((f) => `sha256:${f}`);
  }
}
