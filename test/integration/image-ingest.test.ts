// ingestLayer's one pass (the blob hashed and written while tar unpacks the same bytes), on a
// scratch image store with the real GNU tar: what arrives whole is kept, a source cut off midway
// or a blob with the wrong digest leaves nothing (no blob, no layer, no temp file). Needs root (tar --same-owner).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { packTar, sha256 } from '../helpers/tar.js';
import type { ImageStore } from '../../src/engine/images/store.js';
import { ingestLayer } from '../../src/engine/images/ingest.js';
import { MT } from '../../src/engine/images/manifest.js';
import { TEST_ROOT } from '../helpers/daemon.js';
import { openScratchImageStore } from '../helpers/scratch-image-store.js';
import { uniqueName } from '../helpers/netns.js';

const dir = path.join(TEST_ROOT, uniqueName('shtingest'));
let store: ImageStore;

before(async () => {
  store = await openScratchImageStore(dir, 'image-ingest-test');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A gzip layer of one 3 MiB random file, as a registry or a peer would send it. */
async function gzipLayer(): Promise<{ tar: Buffer; gz: Buffer }> {
  const tar = await packTar([{ name: 'data.bin', data: randomBytes(3 << 20) }]);
  return { tar, gz: gzipSync(tar) };
}

/** `data` in 16 KiB pieces (a TLS socket's records); with `failAt`, an error after that many bytes. */
function source(data: Buffer, failAt?: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += 16384) {
        if (failAt !== undefined && i >= failAt) throw new Error('aborted');
        yield data.subarray(i, i + 16384);
      }
    })(),
  );
}

/** Temp files of blobs and temp dirs of layers: a failed ingest must leave none. */
const leftovers = () => ({
  tmp: fs.readdirSync(store.blobs.tmpDir),
  layerTemps: fs.readdirSync(store.layers.root).filter((f) => f.startsWith('.tmp-')),
});

test('a whole layer is stored (blob by its digest) and unpacked in one pass', async () => {
  const { tar, gz } = await gzipLayer();
  const meta = await ingestLayer(store, source(gz), {
    expectedDigest: sha256(gz),
    expectedDiffId: sha256(tar),
    mediaType: MT.dockerLayerGzip,
  });
  assert.equal(meta.diffId, sha256(tar));
  assert.equal(meta.size, tar.length);
  assert.deepEqual(
    meta.blobs.map((b) => [b.digest, b.size]),
    [[sha256(gz), gz.length]],
  );
  assert.ok(store.blobs.read(sha256(gz)).equals(gz));
  assert.equal(fs.statSync(path.join(store.layers.diffDir(meta.diffId), 'data.bin')).size, 3 << 20);
  assert.deepEqual(leftovers(), { tmp: [], layerTemps: [] });
});

test('a plain tar without a media type is told by its first bytes', async () => {
  const { tar } = await gzipLayer();
  const meta = await ingestLayer(store, source(tar), { expectedDiffId: sha256(tar) });
  assert.equal(meta.blobs[0].mediaType, MT.dockerLayerTar);
  assert.ok(store.blobs.has(sha256(tar)));
  assert.ok(store.layers.has(sha256(tar)));
});

test('a source cut off midway leaves no blob, no layer and no temp file; the error is the source’s', async () => {
  const { tar, gz } = await gzipLayer();
  await assert.rejects(
    ingestLayer(store, source(gz, 1 << 20), {
      expectedDigest: sha256(gz),
      expectedDiffId: sha256(tar),
      mediaType: MT.dockerLayerGzip,
    }),
    /aborted/,
  );
  assert.equal(store.blobs.has(sha256(gz)), false);
  assert.equal(store.layers.has(sha256(tar)), false);
  assert.deepEqual(leftovers(), { tmp: [], layerTemps: [] });
});

test('a blob with the wrong digest is refused with "digest mismatch" and nothing of it stays', async () => {
  const { tar, gz } = await gzipLayer();
  const wrong = sha256('something else');
  await assert.rejects(
    ingestLayer(store, source(gz), {
      expectedDigest: wrong,
      expectedDiffId: sha256(tar),
      mediaType: MT.dockerLayerGzip,
    }),
    /digest mismatch/,
  );
  assert.equal(store.blobs.has(sha256(gz)), false);
  assert.equal(store.blobs.has(wrong), false);
  assert.equal(store.layers.has(sha256(tar)), false);
  assert.deepEqual(leftovers(), { tmp: [], layerTemps: [] });
});

test('content that does not match the diff ID is refused and nothing of it stays', async () => {
  const { gz } = await gzipLayer();
  const other = sha256('another layer');
  await assert.rejects(
    ingestLayer(store, source(gz), {
      expectedDigest: sha256(gz),
      expectedDiffId: other,
      mediaType: MT.dockerLayerGzip,
    }),
    /does not match the image config/,
  );
  assert.equal(store.blobs.has(sha256(gz)), false);
  assert.equal(store.layers.has(other), false);
  assert.deepEqual(leftovers(), { tmp: [], layerTemps: [] });
});
