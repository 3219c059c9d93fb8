/**
 * The build context: the request body (a tar, plain or gzip) unpacked into a private
 * directory, each member resolved inside it so no name or symlink leads a write out of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { PassThrough, type Readable } from 'node:stream';
import { serverError } from '../../util/errors.js';
import { extractInto, resolveInRoot } from '../containers/files.js';

export class BuildContext {
  private constructor(readonly dir: string) {}

  /** Unpacks `body` into a fresh directory under `tmpRoot`. */
  static async unpack(tmpRoot: string, body: Readable): Promise<BuildContext> {
    fs.mkdirSync(tmpRoot, { recursive: true });
    const dir = fs.mkdtempSync(path.join(tmpRoot, 'build-'));
    const ctx = new BuildContext(dir);
    try {
      const src = await decompressed(body);
      // Everything in the context belongs to root in the image, as the classic builder copies it.
      if (src) await extractInto(dir, '/', src, { copyUidGid: false, noOverwriteDirNonDir: false });
      return ctx;
    } catch (e) {
      ctx.remove();
      throw e;
    }
  }

  /** The Dockerfile's text; dockerd's (500) "Cannot locate specified Dockerfile: NAME" when it is not there. */
  dockerfile(name: string): string {
    const host = resolveInRoot(this.dir, '/' + name, true);
    try {
      return fs.readFileSync(host, 'utf8');
    } catch {
      throw serverError(`Cannot locate specified Dockerfile: ${name}`);
    }
  }

  /** A context path as a host path inside the context (never outside it). */
  resolve(p: string): string {
    return resolveInRoot(this.dir, '/' + p, true);
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The body as a plain tar stream (gunzipped when it starts with gzip's magic), or undefined when empty. */
async function decompressed(body: Readable): Promise<Readable | undefined> {
  const first = await new Promise<Buffer | null>((resolve, reject) => {
    const onReadable = () => {
      const chunk = body.read() as Buffer | null;
      if (chunk === null) return;
      cleanup();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      body.off('readable', onReadable);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    body.on('readable', onReadable);
    body.once('end', onEnd);
    body.once('error', onError);
  });
  if (!first) return undefined;
  const out = new PassThrough();
  out.write(first);
  body.pipe(out);
  body.on('error', (e) => out.destroy(e));
  if (first[0] === 0x1f && first[1] === 0x8b) return out.pipe(createGunzip());
  return out;
}
