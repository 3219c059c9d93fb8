import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { busyboxRootfsTar } from './busybox.js';
import { packTar, sha256 } from './tar.js';

export interface ImageArchive {
  /** The `docker load` input (Docker's save format). */
  file: string;
  /** The image ID (config digest). */
  id: string;
  /** Each layer's diff ID, busybox's first. */
  diffIds: string[];
}

/**
 * A `docker save`-format archive of an image no registry has: busybox, then one layer per entry
 * of `dataLayers` holding that many random bytes in /data/<n>. Written into `dir` as `name`.tar.
 */
export async function randomImageArchive(dir: string, tag: string, dataLayers: number[]): Promise<ImageArchive> {
  const work = fs.mkdtempSync(path.join(dir, 'archive-'));
  const layers: Buffer[] = [fs.readFileSync(await busyboxRootfsTar(work))];
  for (const [i, size] of dataLayers.entries())
    layers.push(await packTar([{ name: `data/${i}`, data: randomBytes(size) }]));
  const diffIds = layers.map((l) => sha256(l));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: new Date().toISOString(),
      config: { Cmd: ['sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: layers.map(() => ({ created_by: 'test' })),
    }),
  );
  const id = sha256(config);
  const hex = (d: string) => d.slice('sha256:'.length);
  const files = [
    { name: `${hex(id)}.json`, data: config },
    ...layers.map((l, i) => ({ name: `${hex(diffIds[i])}/layer.tar`, data: l })),
    {
      name: 'manifest.json',
      data: Buffer.from(
        JSON.stringify([
          { Config: `${hex(id)}.json`, RepoTags: [tag], Layers: diffIds.map((d) => `${hex(d)}/layer.tar`) },
        ]),
      ),
    },
  ];
  const file = path.join(dir, `${hex(id).slice(0, 12)}.tar`);
  fs.writeFileSync(file, await packTar(files));
  fs.rmSync(work, { recursive: true, force: true });
  return { file, id, diffIds };
}
