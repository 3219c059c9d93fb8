// The ImageStore as the container manager uses it, in-process on a scratch data root:
// resolve() gives overlayfs lowerdirs (lowest first) that really mount, and rmi refuses images
// that containers use. Needs root (mknod whiteouts, overlay mounts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { packTar, sha256 as sha } from '../helpers/tar.js';
import { run } from '../../src/util/run.js';
import { ApiError } from '../../src/util/errors.js';
import type { ImageStore, ImageUser } from '../../src/engine/images/store.js';
import { importImage } from '../../src/engine/images/importer.js';
import { loadImages } from '../../src/engine/images/archive.js';
import { ProgressStream } from '../../src/engine/images/progress.js';
import { TEST_ROOT } from '../helpers/daemon.js';
import { openScratchImageStore } from '../helpers/scratch-image-store.js';
import { uniqueName } from '../helpers/netns.js';
import { buildMicroRootfs, MICRO_CHANGES } from '../../examples/micro/build.js';
import { Writable } from 'node:stream';

const dir = path.join(TEST_ROOT, uniqueName('shtstore'));
let store: ImageStore;
const mounts: string[] = [];

before(async () => {
  store = await openScratchImageStore(dir, 'images-store-test');
});
after(async () => {
  for (const m of mounts.reverse()) await run('umount', [m], { allowFail: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A progress stream that just collects what it is told. */
function sink(): { progress: ProgressStream; text: () => string } {
  let text = '';
  const w = new Writable({
    write(c: Buffer, _e, cb) {
      text += c.toString();
      cb();
    },
  });
  return { progress: new ProgressStream(() => w), text: () => text };
}

/**
 * A `docker save`-format archive of one image tagged `tag`: `rootfs` with `top` on it, and an
 * image config of `fields` plus the platform and the two layers' diff IDs.
 */
async function twoLayerArchive(
  tag: string,
  rootfs: Buffer,
  top: Buffer,
  fields: Record<string, unknown>,
): Promise<{ archive: Buffer; config: Buffer }> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      ...fields,
      rootfs: { type: 'layers', diff_ids: [sha(rootfs), sha(top)] },
    }),
  );
  const archive = await packTar([
    { name: 'a/layer.tar', data: rootfs },
    { name: 'b/layer.tar', data: top },
    { name: 'config.json', data: config },
    {
      name: 'manifest.json',
      data: Buffer.from(
        JSON.stringify([{ Config: 'config.json', RepoTags: [tag], Layers: ['a/layer.tar', 'b/layer.tar'] }]),
      ),
    },
  ]);
  return { archive, config };
}

async function mountOverlay(layerDirs: string[]): Promise<string> {
  const base = path.join(dir, uniqueName('ovl'));
  for (const d of ['upper', 'work', 'merged']) fs.mkdirSync(path.join(base, d), { recursive: true });
  // overlayfs lists lowerdirs topmost first; ResolvedImage gives them lowest first.
  const lower = [...layerDirs].reverse().join(':');
  const merged = path.join(base, 'merged');
  await run('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${base}/upper,workdir=${base}/work`,
    merged,
  ]);
  mounts.push(merged);
  return merged;
}

test('resolve(ref) gives ResolvedImage whose layerDirs mount as an overlayfs root (lowest first)', async () => {
  const rootfs = await buildMicroRootfs();
  const id = await importImage(store, Readable.from([rootfs]), { repo: 'micro', tag: '1.0.0', changes: MICRO_CHANGES });
  // A second layer on top: replaces the CGI page, adds a file, deletes /etc/group (whiteout).
  const top = await packTar([
    { name: 'www/cgi-bin/index.cgi', data: Buffer.from('#!/bin/sh\necho top\n') },
    { name: 'added.txt', data: Buffer.from('from layer 2\n') },
    { name: 'etc/.wh.group', data: Buffer.alloc(0) },
  ]);
  const { archive, config } = await twoLayerArchive('two:layers', rootfs, top, {
    created: '2024-01-02T00:00:00Z',
    config: { Cmd: ['/bin/sh'], Env: ['A=1'], WorkingDir: '/www' },
  });
  const out = sink();
  await loadImages(store, Readable.from([archive]), out.progress);
  assert.match(out.text(), /Loaded image: two:layers/);

  const one = await store.resolve('micro:1.0.0');
  assert.equal(one.id, id);
  assert.deepEqual(one.repoTags, ['micro:1.0.0']);
  assert.deepEqual(one.config.Cmd, ['/bin/httpd', '-f', '-p', '8000', '-h', '/www']);
  assert.deepEqual(one.config.ExposedPorts, { '8000/tcp': {} });
  assert.equal(one.layerDirs.length, 1);

  const two = await store.resolve('two:layers');
  assert.equal(two.id, sha(config));
  assert.deepEqual(two.config, { Cmd: ['/bin/sh'], Env: ['A=1'], WorkingDir: '/www' });
  assert.equal(two.layerDirs.length, 2);
  assert.equal(two.layerDirs[0], one.layerDirs[0], 'the shared base layer is the same directory');
  // By short ID and by full ID too.
  assert.equal((await store.resolve(two.id.slice(7, 19))).id, two.id);
  assert.equal((await store.resolve(two.id)).id, two.id);

  const merged = await mountOverlay(two.layerDirs);
  assert.equal(fs.readFileSync(path.join(merged, 'www/cgi-bin/index.cgi'), 'utf8'), '#!/bin/sh\necho top\n');
  assert.equal(fs.readFileSync(path.join(merged, 'added.txt'), 'utf8'), 'from layer 2\n');
  assert.equal(fs.existsSync(path.join(merged, 'etc/group')), false, 'the whiteout hides /etc/group');
  assert.match(fs.readFileSync(path.join(merged, 'etc/passwd'), 'utf8'), /^root:x:0:0/);
  assert.ok(fs.statSync(path.join(merged, 'bin/busybox')).mode & 0o111);
  assert.equal(fs.readlinkSync(path.join(merged, 'bin/sh')), 'busybox');
  // The busybox of the image runs from the mounted root.
  const r = await run('chroot', [merged, '/bin/sh', '-c', 'echo hello from $(uname -s)']);
  assert.equal(r.stdout.trim(), 'hello from Linux');

  const micro = await mountOverlay(one.layerDirs);
  assert.match(fs.readFileSync(path.join(micro, 'www/cgi-bin/index.cgi'), 'utf8'), /Hostname:/);
  assert.ok(fs.existsSync(path.join(micro, 'etc/group')));

  await assert.rejects(
    store.resolve('nosuch'),
    (e: ApiError) => e.status === 404 && e.message === 'No such image: nosuch:latest',
  );
});

test("an opaque directory marker (.wh..wh..opq) hides the lower layer's directory contents", async () => {
  const rootfs = await buildMicroRootfs();
  const top = await packTar([
    { name: 'www/.wh..wh..opq', data: Buffer.alloc(0) },
    { name: 'www/index.html', data: Buffer.from('<p>static</p>\n') },
  ]);
  const { archive } = await twoLayerArchive('opaque:1', rootfs, top, {});
  await loadImages(store, Readable.from([archive]), sink().progress);
  const img = await store.resolve('opaque:1');
  const topDir = img.layerDirs[1];
  assert.equal(fs.existsSync(path.join(topDir, 'www/.wh..wh..opq')), false);
  assert.equal(
    (await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', path.join(topDir, 'www')])).stdout,
    'y',
  );
  const merged = await mountOverlay(img.layerDirs);
  assert.deepEqual(fs.readdirSync(path.join(merged, 'www')), ['index.html']);
  assert.ok(fs.existsSync(path.join(merged, 'bin/busybox')));
});

test("rmi refuses images containers use (409, Docker's messages) unless forced", async () => {
  const users = new Map<string, ImageUser>();
  store.setInUseCheck((id) => users.get(id));
  const img = await store.resolve('micro:1.0.0');
  const short = img.id.slice(7, 19);
  const cid = 'c0ffee'.repeat(10) + 'abcd';
  const expect409 = (fn: () => unknown, message: string) =>
    assert.throws(fn, (e: ApiError) => e.status === 409 && e.message === message);

  users.set(img.id, { id: cid, running: true });
  expect409(
    () => store.remove('micro:1.0.0', false),
    `conflict: unable to remove repository reference "micro:1.0.0" (must force) - container ${cid.slice(0, 12)} is using its referenced image ${short}`,
  );
  expect409(
    () => store.remove(short, false),
    `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${cid.slice(0, 12)}`,
  );
  expect409(
    () => store.remove(short, true),
    `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${cid.slice(0, 12)}`,
  );
  users.set(img.id, { id: cid, running: false });
  expect409(
    () => store.remove(short, false),
    `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${cid.slice(0, 12)}`,
  );
  assert.deepEqual(store.repoTags(img.id), ['micro:1.0.0'], 'nothing was untagged by refused removals');

  // Forced by name while running: untagged, the image stays for its container.
  users.set(img.id, { id: cid, running: true });
  assert.deepEqual(store.remove('micro:1.0.0', true), [{ Untagged: 'micro:1.0.0' }]);
  assert.equal((await store.resolve(img.id)).id, img.id);
  // A bare container ID (the older callback shape) counts as a running container.
  store.setInUseCheck((id) => (id === img.id ? cid : undefined));
  expect409(
    () => store.remove(img.id, true),
    `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${cid.slice(0, 12)}`,
  );

  // Once no container uses it, the image goes; its layer stays for two:layers.
  store.setInUseCheck(() => undefined);
  const del = store.remove(short, false);
  assert.deepEqual(del, [{ Deleted: img.id }]);
  const two = await store.resolve('two:layers');
  assert.ok(fs.existsSync(two.layerDirs[0]));
});

test('rmi -f under a stopped container: gone for users, still resolvable by ID for it, collected later', async () => {
  const layer = await packTar([{ name: 'only-here.txt', data: Buffer.from('orphan\n') }]);
  const id = await importImage(store, Readable.from([layer]), { repo: 'orphan', tag: '1' });
  const cid = 'deadbeef'.repeat(8);
  let user: ImageUser | undefined = { id: cid, running: false };
  store.setInUseCheck((i) => (i === id ? user : undefined));
  const dirs = (await store.resolve(id)).layerDirs;

  assert.deepEqual(store.remove('orphan:1', true), [{ Untagged: 'orphan:1' }, { Deleted: id }]);
  assert.equal(store.find(id), undefined);
  assert.ok(!store.list(new Map()).some((i) => i.Id === id));
  assert.throws(
    () => store.inspect(id),
    (e: ApiError) => e.status === 404,
  );
  const again = await store.resolve(id);
  assert.deepEqual(again.layerDirs, dirs);
  assert.ok(fs.existsSync(path.join(dirs[0], 'only-here.txt')));

  // The container is gone: the next removal or prune collects the orphan and its layer.
  user = undefined;
  store.prune(false);
  assert.equal(fs.existsSync(dirs[0]), false);
  await assert.rejects(store.resolve(id), (e: ApiError) => e.status === 404);
});
