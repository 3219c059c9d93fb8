import { createHash } from 'node:crypto';
import tar from 'tar-stream';

/** `sha256:…` of some bytes: a layer's diff ID, a config's image ID, a blob's digest. */
export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A tar archive in memory of plain files (mode 0644, mtime 0, so the same files give the same bytes). */
export async function packTar(files: Array<{ name: string; data: Buffer }>): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const f of files) p.entry({ name: f.name, size: f.data.length, mode: 0o644, mtime: new Date(0) }, f.data);
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}
