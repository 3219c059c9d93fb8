// push and pull against a real registry (Debian docker-registry) through the real docker CLI:
// two daemons and the registry share one netns, so both reach it on 127.0.0.1. Needs root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { packTar, sha256 as sha } from '../helpers/tar.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createNetns, deleteNetns } from '../helpers/netns.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushMicro } from '../helpers/micro.js';
import { buildMicroImage, buildMicroRootfs } from '../../examples/micro/build.js';

let ns: string;
let reg: TestRegistry;
let d1: TestDaemon;
let d2: TestDaemon;
let R: string;

before(async () => {
  ns = await createNetns('shtreg');
  reg = await startRegistry(ns, 5000);
  R = reg.address;
  d1 = await startDaemon({ prefix: 'shtreg1', ns, insecureRegistries: [R] });
  d2 = await startDaemon({ prefix: 'shtreg2', ns, insecureRegistries: [R] });
});
after(async () => {
  await d1?.destroy();
  await d2?.destroy();
  await reg?.stop();
  if (ns) await deleteNetns(ns);
});

/** curl inside the namespace: the registry listens on its 127.0.0.1. */
async function registry(
  method: string,
  urlPath: string,
  body?: Buffer,
  contentType?: string,
): Promise<{ status: number; headers: string; body: string }> {
  const accept =
    'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';
  const args = ['-s', '-D', '-', '-X', method, '-H', `Accept: ${accept}`, `http://${R}${urlPath}`];
  if (contentType) args.push('-H', `Content-Type: ${contentType}`);
  if (body) args.push('--data-binary', '@-');
  const r = await d1.inNs('curl', args, { input: body });
  const [head, ...rest] = r.stdout.split('\r\n\r\n');
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(head)?.[1]), headers: head, body: rest.join('\r\n\r\n') };
}

/**
 * A docker-save archive with two layers: micro's rootfs, and above it a layer that adds
 * /extra.txt and deletes /etc/group (an OCI whiteout).
 */
async function microPlusArchive(tag: string): Promise<{ tarball: Buffer; id: string; diffIds: string[] }> {
  const base = await buildMicroRootfs();
  const top = await packTar([
    { name: 'extra.txt', data: Buffer.from('second layer\n') },
    { name: 'etc/.wh.group', data: Buffer.alloc(0) },
  ]);
  const diffIds = [sha(base), sha(top)];
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-02T00:00:00Z',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: [
        { created: '2024-01-01T00:00:00Z', created_by: 'base' },
        { created: '2024-01-02T00:00:00Z', created_by: 'extra' },
      ],
    }),
  );
  const manifest = JSON.stringify([
    { Config: 'config.json', RepoTags: [tag], Layers: ['l0/layer.tar', 'l1/layer.tar'] },
  ]);
  const tarball = await packTar([
    { name: 'l0/layer.tar', data: base },
    { name: 'l1/layer.tar', data: top },
    { name: 'config.json', data: config },
    { name: 'manifest.json', data: Buffer.from(manifest) },
  ]);
  return { tarball, id: sha(config), diffIds };
}

/** The `repo@sha256:…` of `ref`'s repository among the image's RepoDigests. */
async function repoDigest(d: TestDaemon, ref: string): Promise<string> {
  const all = JSON.parse(
    (await d.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])).stdout,
  ) as string[];
  const repo = ref.slice(0, ref.lastIndexOf(':'));
  const found = all.find((r) => r.startsWith(`${repo}@`));
  assert.ok(found, `no digest of ${repo} in ${all.join(', ')}`);
  return found;
}

/** The unpacked layer directory of `diffId` in a daemon's data root. */
const layerDir = (d: TestDaemon, diffId: string) => path.join(d.dataRoot, 'overlay', diffId.slice(7));

test('pushMicro builds micro and pushes it through a daemon; the registry has it', async () => {
  const ref = await pushMicro(d1, R);
  assert.equal(ref, `${R}/micro:1.0.0`);
  const tags = await registry('GET', '/v2/micro/tags/list');
  assert.deepEqual(JSON.parse(tags.body), { name: 'micro', tags: ['1.0.0'] });
  const digest = (await repoDigest(d1, ref)).split('@')[1];
  const m = await registry('GET', `/v2/micro/manifests/1.0.0`);
  assert.match(m.headers, new RegExp(`Docker-Content-Digest: ${digest}`, 'i'));
  // Pushing again: every blob is already there.
  const again = await d1.docker(['push', ref]);
  assert.match(again.stdout, /Layer already exists/);
  assert.match(again.stdout, new RegExp(`1\\.0\\.0: digest: ${digest} size: \\d+`));
});

test('docker pull on a second daemon gets the same image; pulling again is up to date', async () => {
  const micro = await buildMicroImage();
  const ref = `${R}/micro:1.0.0`;
  const r = await d2.docker(['pull', ref]);
  assert.match(r.stdout, /Pull complete/);
  assert.match(r.stdout, new RegExp(`Status: Downloaded newer image for ${ref.replace(/\./g, '\\.')}`));
  assert.equal((await d2.docker(['images', '-q', '--no-trunc', ref])).stdout.trim(), micro.id);
  const digest = await repoDigest(d1, ref);
  assert.equal(await repoDigest(d2, ref), digest);
  const listed = (
    await d2.docker(['images', '--digests', '--format', '{{.Repository}} {{.Tag}} {{.Digest}}', `${R}/micro`])
  ).stdout.trim();
  assert.equal(listed, `${R}/micro 1.0.0 ${digest.split('@')[1]}`);
  const byDigest = await d2.docker(['pull', digest]);
  assert.match(byDigest.stdout, /Status: Image is up to date/);
  const again = await d2.docker(['pull', ref]);
  assert.match(again.stdout, /Status: Image is up to date/);
});

test('layers are unpacked once: a second image sharing a layer reuses it', async () => {
  const plus = await microPlusArchive(`${R}/micro-plus:1`);
  await d1.docker(['load'], { input: plus.tarball });
  const pushed = await d1.docker(['push', `${R}/micro-plus:1`]);
  // micro's layer is in the registry already, under micro: linked over, not sent again.
  assert.match(pushed.stdout, new RegExp(`${plus.diffIds[0].slice(7, 19)}: Mounted from micro`));
  assert.match(pushed.stdout, new RegExp(`${plus.diffIds[1].slice(7, 19)}: Pushed`));

  const before = fs.statSync(layerDir(d2, plus.diffIds[0]));
  const r = await d2.docker(['pull', `${R}/micro-plus:1`]);
  assert.match(r.stdout, /Already exists/);
  const after = fs.statSync(layerDir(d2, plus.diffIds[0]));
  assert.equal(after.ino, before.ino, 'the shared layer was unpacked again');
  assert.equal(after.mtimeMs, before.mtimeMs);
  const layers = fs
    .readdirSync(path.join(d2.dataRoot, 'overlay'))
    .filter((f) => /^[a-f0-9]{64}$/.test(f))
    .sort();
  assert.deepEqual(layers, plus.diffIds.map((d) => d.slice(7)).sort());
  assert.equal((await d2.docker(['images', '-q', '--no-trunc', `${R}/micro-plus:1`])).stdout.trim(), plus.id);
  // The whiteout became an overlayfs whiteout (a 0/0 character device).
  const wh = fs.statSync(path.join(layerDir(d2, plus.diffIds[1]), 'diff/etc/group'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
  const hist = (await d2.docker(['history', '--format', '{{.CreatedBy}}', `${R}/micro-plus:1`])).stdout
    .trim()
    .split('\n');
  assert.deepEqual(hist, ['extra', 'base']);
});

test('a manifest list resolves to linux/amd64', async () => {
  const amd64 = (await repoDigest(d1, `${R}/micro:1.0.0`)).split('@')[1];
  const other = (await repoDigest(d1, `${R}/micro-plus:1`)).split('@')[1];
  // Both manifests must live in the list's repository.
  await d1.docker(['tag', `${R}/micro:1.0.0`, `${R}/multi:amd64`]);
  await d1.docker(['push', `${R}/multi:amd64`]);
  await d1.docker(['tag', `${R}/micro-plus:1`, `${R}/multi:other`]);
  await d1.docker(['push', `${R}/multi:other`]);
  const size = async (digest: string) =>
    Buffer.byteLength((await registry('GET', `/v2/multi/manifests/${digest}`)).body);
  const mt = 'application/vnd.docker.distribution.manifest.v2+json';
  const list = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [
        {
          mediaType: mt,
          digest: other,
          size: await size(other),
          platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
        },
        { mediaType: mt, digest: other, size: await size(other), platform: { architecture: 'amd64', os: 'windows' } },
        { mediaType: mt, digest: amd64, size: await size(amd64), platform: { architecture: 'amd64', os: 'linux' } },
      ],
    }),
  );
  const put = await registry(
    'PUT',
    '/v2/multi/manifests/1',
    list,
    'application/vnd.docker.distribution.manifest.list.v2+json',
  );
  assert.equal(put.status, 201, put.body);

  const r = await d2.docker(['pull', `${R}/multi:1`]);
  assert.match(r.stdout, new RegExp(`Digest: ${sha(list)}`));
  assert.equal(
    (await d2.docker(['images', '-q', '--no-trunc', `${R}/multi:1`])).stdout.trim(),
    (await buildMicroImage()).id,
  );
  assert.equal(await repoDigest(d2, `${R}/multi:1`), `${R}/multi@${sha(list)}`);

  // A list without linux/amd64 is refused, and nothing is tagged.
  const armOnly = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [
        { mediaType: mt, digest: other, size: await size(other), platform: { architecture: 'arm64', os: 'linux' } },
      ],
    }),
  );
  assert.equal(
    (
      await registry(
        'PUT',
        '/v2/multi/manifests/arm',
        armOnly,
        'application/vnd.docker.distribution.manifest.list.v2+json',
      )
    ).status,
    201,
  );
  const bad = await d2.docker(['pull', `${R}/multi:arm`], { allowFail: true });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no matching manifest for linux\/amd64 in the manifest list entries/);
  assert.equal((await d2.docker(['images', '-q', `${R}/multi:arm`])).stdout.trim(), '');
});

test("pulling what the registry does not have: Docker's errors", async () => {
  const repo = await d2.docker(['pull', `${R}/nothere:1`], { allowFail: true });
  assert.notEqual(repo.code, 0);
  assert.match(
    repo.stderr,
    new RegExp(
      `Error response from daemon: (repository ${R}/nothere not found: name unknown: repository name not known to registry|manifest for ${R}/nothere:1 not found: manifest unknown: manifest unknown)`,
    ),
  );
  const tag = await d2.docker(['pull', `${R}/micro:9.9`], { allowFail: true });
  assert.notEqual(tag.code, 0);
  assert.match(
    tag.stderr,
    new RegExp(
      `Error response from daemon: manifest for ${R}/micro:9\\.9 not found: manifest unknown: manifest unknown`,
    ),
  );
  const push = await d2.docker(['push', `${R}/notlocal:1`], { allowFail: true });
  assert.notEqual(push.code, 0);
  assert.match(push.stderr, new RegExp(`An image does not exist locally with the tag: ${R}/notlocal`));
});

function api(d: TestDaemon, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, path: urlPath }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('GET /distribution/{name}/json: digest and platforms without pulling (what service create pins)', async () => {
  const digest = (await repoDigest(d1, `${R}/micro:1.0.0`)).split('@')[1];
  const one = await api(d2, `/v1.41/distribution/${R}/micro:1.0.0/json`);
  assert.equal(one.status, 200, one.body);
  const body = JSON.parse(one.body);
  assert.equal(body.Descriptor.digest, digest);
  assert.equal(body.Descriptor.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.deepEqual(body.Platforms, [{ architecture: 'amd64', os: 'linux' }]);
  const list = JSON.parse((await api(d2, `/v1.41/distribution/${R}/multi:1/json`)).body);
  assert.equal(list.Descriptor.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
  assert.deepEqual(
    list.Platforms.map((p: { os: string; architecture: string }) => `${p.os}/${p.architecture}`),
    ['linux/arm64', 'windows/amd64', 'linux/amd64'],
  );
  const missing = await api(d2, `/v1.41/distribution/${R}/micro:9.9/json`);
  assert.equal(missing.status, 404);
  assert.match(JSON.parse(missing.body).message, /manifest for .*micro:9\.9 not found/);
  assert.equal((await api(d2, '/v1.41/distribution/Bad/json')).status, 400);
});

test('concurrent pulls of images sharing layers all succeed and store each layer once', async () => {
  const ids = [...new Set((await d2.docker(['images', '-q'])).stdout.trim().split('\n').filter(Boolean))];
  await d2.docker(['rmi', '-f', ...ids]);
  assert.deepEqual(fs.readdirSync(path.join(d2.dataRoot, 'overlay')), []);
  const results = await Promise.all([
    d2.docker(['pull', `${R}/micro-plus:1`]),
    d2.docker(['pull', `${R}/micro-plus:1`]),
    d2.docker(['pull', `${R}/micro:1.0.0`]),
  ]);
  for (const r of results) assert.match(r.stdout, /Digest: sha256:/);
  const plus = await microPlusArchive(`${R}/micro-plus:1`);
  const layers = fs.readdirSync(path.join(d2.dataRoot, 'overlay')).sort();
  assert.deepEqual(layers, plus.diffIds.map((d) => d.slice(7)).sort());
  assert.deepEqual(fs.readdirSync(path.join(d2.dataRoot, 'image/tmp')), []);
  assert.equal((await d2.docker(['images', '-q', '--no-trunc', `${R}/micro-plus:1`])).stdout.trim(), plus.id);
});

test('docker push --all-tags pushes every tag of the repository', async () => {
  await d1.docker(['tag', `${R}/micro:1.0.0`, `${R}/every:a`]);
  await d1.docker(['tag', `${R}/micro-plus:1`, `${R}/every:b`]);
  const r = await d1.docker(['push', '--all-tags', `${R}/every`]);
  assert.match(r.stdout, /^a: digest: sha256:[a-f0-9]{64} size: \d+$/m);
  assert.match(r.stdout, /^b: digest: sha256:[a-f0-9]{64} size: \d+$/m);
  const tags = JSON.parse((await registry('GET', '/v2/every/tags/list')).body);
  assert.deepEqual(tags.tags.sort(), ['a', 'b']);
});

test('docker pull --all-tags pulls every tag the registry lists', async () => {
  const r = await d2.docker(['pull', '--all-tags', `${R}/every`]);
  assert.match(r.stdout, /Digest: sha256:/);
  const tags = (await d2.docker(['images', '--format', '{{.Tag}}', `${R}/every`])).stdout.trim().split('\n').sort();
  assert.deepEqual(tags, ['a', 'b']);
  const none = await d2.docker(['pull', '--all-tags', `${R}/nothere`], { allowFail: true });
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, new RegExp(`repository ${R}/nothere not found: name unknown`));
});

test('docker save of a pulled image (gzip layers) loads on another daemon', async () => {
  const ref = `${R}/micro-plus:1`;
  const file = path.join(d2.dir, 'plus.tar');
  await d2.docker(['save', '-o', file, ref]);
  await d1.docker(['rmi', '-f', ref, `${R}/every:b`, `${R}/multi:other`]);
  assert.equal((await d1.docker(['images', '-q', ref])).stdout.trim(), '');
  const r = await d1.docker(['load', '-i', file]);
  assert.match(r.stdout, new RegExp(`Loaded image: ${ref.replace(/\./g, '\\.')}`));
  const plus = await microPlusArchive(ref);
  assert.equal((await d1.docker(['images', '-q', '--no-trunc', ref])).stdout.trim(), plus.id);
  assert.deepEqual(
    JSON.parse((await d1.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref])).stdout),
    plus.diffIds,
  );
});
