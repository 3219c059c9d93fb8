// Local image operations through the real docker CLI: import, load, tag, images, inspect,
// history, rmi, and Docker's answers to bad input. Needs root (shoald in a netns).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import tar from 'tar-stream';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { packTar, sha256 } from '../helpers/tar.js';
import { buildMicroImage, buildMicroRootfs, MICRO_CHANGES, MICRO_CMD } from '../../examples/micro/build.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon({ prefix: 'shtimg' });
});
after(async () => {
  await d?.destroy();
});

function api(method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, path, method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const lines = (s: string) => s.trim().split('\n').filter(Boolean);

test('docker import of a rootfs tarball with -c CMD/ENV/EXPOSE', async () => {
  const rootfs = await buildMicroRootfs();
  const args = ['import', '-m', 'micro rootfs'];
  for (const c of MICRO_CHANGES) args.push('-c', c);
  const r = await d.docker([...args, '-', 'imported/micro:1.0'], { input: rootfs });
  const id = r.stdout.trim();
  assert.match(id, /^sha256:[a-f0-9]{64}$/);
  const cfg = JSON.parse(
    (await d.docker(['image', 'inspect', '--format', '{{json .Config}}', 'imported/micro:1.0'])).stdout,
  );
  assert.deepEqual(cfg.Cmd, MICRO_CMD);
  assert.deepEqual(cfg.Env, ['PATH=/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.deepEqual(cfg.ExposedPorts, { '8000/tcp': {} });
  const insp = JSON.parse((await d.docker(['image', 'inspect', 'imported/micro:1.0'])).stdout)[0];
  assert.equal(insp.Id, id);
  assert.deepEqual(insp.RepoTags, ['imported/micro:1.0']);
  assert.equal(insp.Comment, 'micro rootfs');
  assert.equal(insp.Os, 'linux');
  assert.equal(insp.Architecture, 'amd64');
  assert.equal(insp.RootFS.Layers.length, 1);
  assert.ok(insp.Size > 1_000_000, `size ${insp.Size}`);
  // A shell-form CMD runs under /bin/sh -c, as in a Dockerfile.
  const r2 = await d.docker(['import', '-c', 'CMD echo hi', '-c', 'ENV A=1 B="two words"', '-', 'imported/shell'], {
    input: rootfs,
  });
  const cfg2 = JSON.parse(
    (await d.docker(['image', 'inspect', '--format', '{{json .Config}}', r2.stdout.trim()])).stdout,
  );
  assert.deepEqual(cfg2.Cmd, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(cfg2.Env, ['A=1', 'B=two words']);
  // The same rootfs is one layer, unpacked once.
  assert.equal(
    JSON.parse(
      (await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'imported/shell'])).stdout,
    )[0],
    insp.RootFS.Layers[0],
  );
});

test('docker import refuses a bad change line with 400 and stores nothing', async () => {
  const before = lines((await d.docker(['images', '-q', '--no-trunc'])).stdout).length;
  const r = await d.docker(['import', '-c', 'RUN echo no', '-', 'imported/bad'], {
    input: await buildMicroRootfs(),
    allowFail: true,
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /RUN is not a valid change command/);
  assert.equal(lines((await d.docker(['images', '-q', '--no-trunc'])).stdout).length, before);
});

test('docker load of a docker-save archive, tag, images (filters, --digests), history', async () => {
  const micro = await buildMicroImage({ tag: 'micro:1.0.0' });
  const r = await d.docker(['load'], { input: micro.tarball });
  assert.match(r.stdout, /Loaded image: micro:1\.0\.0/);
  assert.equal(
    (await d.docker(['images', '--no-trunc', '--format', '{{.ID}}', 'micro:1.0.0'])).stdout.trim(),
    micro.id,
  );

  await d.docker(['tag', 'micro:1.0.0', 'example.com/team/micro:v2']);
  await d.docker(['tag', micro.id.slice(7, 19), 'micro']);
  const tags = (await d.docker(['image', 'inspect', '--format', '{{json .RepoTags}}', 'micro:1.0.0'])).stdout;
  assert.deepEqual(JSON.parse(tags).sort(), ['example.com/team/micro:v2', 'micro:1.0.0', 'micro:latest']);

  const listed = lines((await d.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout);
  assert.ok(listed.includes(`micro:1.0.0 ${micro.id.slice(7, 19)}`), listed.join('\n'));
  assert.ok(listed.includes(`example.com/team/micro:v2 ${micro.id.slice(7, 19)}`));
  assert.ok(
    listed.includes(`imported/micro:1.0 ${listed.find((l) => l.startsWith('imported/micro:1.0'))!.split(' ')[1]}`),
  );

  const byRef = lines(
    (await d.docker(['images', '--filter', 'reference=micro', '--format', '{{.Repository}}:{{.Tag}}'])).stdout,
  ).sort();
  assert.deepEqual(byRef, ['micro:1.0.0', 'micro:latest']);
  const byGlob = lines(
    (await d.docker(['images', '--filter', 'reference=*/*/micro:*', '--format', '{{.Repository}}:{{.Tag}}'])).stdout,
  );
  assert.deepEqual(byGlob, ['example.com/team/micro:v2']);
  const byLabel = lines(
    (await d.docker(['images', '--filter', 'label=org.opencontainers.image.title=micro', '-q'])).stdout,
  );
  assert.deepEqual([...new Set(byLabel)], [micro.id.slice(7, 19)]);
  const digests = lines(
    (await d.docker(['images', '--digests', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}', 'micro:1.0.0'])).stdout,
  );
  assert.deepEqual(digests, ['micro:1.0.0 <none>']);

  const bad = await d.docker(['images', '--filter', 'color=red'], { allowFail: true });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid filter 'color'/);

  const hist = lines(
    (await d.docker(['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}', 'micro:1.0.0'])).stdout,
  );
  assert.equal(hist.length, 1);
  assert.match(
    hist[0],
    new RegExp(`^${micro.id}\\|examples/micro/build\\.ts: busybox-static \\+ httpd CGI page\\|2\\.0\\dMB$`),
  );

  // Loading the same archive again changes nothing.
  const again = await d.docker(['load'], { input: micro.tarball });
  assert.match(again.stdout, /Loaded image: micro:1\.0\.0/);
  assert.equal(lines((await d.docker(['images', '-q', '--no-trunc', 'micro:1.0.0'])).stdout)[0], micro.id);
});

test('docker rmi: untag, 409 for an ID in several repositories, -f removes it', async () => {
  const micro = await buildMicroImage({ tag: 'rmi/micro:1' });
  await d.docker(['load'], { input: micro.tarball });
  // The image is shared with micro:1.0.0 from the test before (same archive contents).
  const r1 = await d.docker(['rmi', 'rmi/micro:1']);
  assert.match(r1.stdout, /^Untagged: rmi\/micro:1$/m);
  assert.doesNotMatch(r1.stdout, /Deleted/);

  const byId = await d.docker(['rmi', micro.id.slice(7, 19)], { allowFail: true });
  assert.notEqual(byId.code, 0);
  assert.match(
    byId.stderr,
    new RegExp(
      `conflict: unable to delete ${micro.id.slice(7, 19)} \\(must be forced\\) - image is referenced in multiple repositories`,
    ),
  );

  const forced = await d.docker(['rmi', '-f', micro.id.slice(7, 19)]);
  assert.match(forced.stdout, /Untagged: micro:1\.0\.0/);
  assert.match(forced.stdout, /Untagged: example\.com\/team\/micro:v2/);
  assert.match(forced.stdout, new RegExp(`Deleted: ${micro.id}`));
  // The imported images hold the very same layer (same rootfs bytes): it stays.
  assert.doesNotMatch(forced.stdout, new RegExp(`Deleted: ${micro.diffId}`));
  const gone = await d.docker(['image', 'inspect', micro.id], { allowFail: true });
  assert.match(gone.stderr, new RegExp(`No such image: ${micro.id}`));

  await d.docker(['rmi', 'imported/micro:1.0']);
  const last = await d.docker(['rmi', 'imported/shell']);
  assert.match(last.stdout, /^Untagged: imported\/shell:latest$/m);
  assert.match(last.stdout, new RegExp(`Deleted: ${micro.diffId}`));
});

test('unknown images are 404 "No such image", malformed references 400', async () => {
  const r = await d.docker(['image', 'inspect', 'nosuch'], { allowFail: true });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /No such image: nosuch/);
  const inspect = await api('GET', '/v1.41/images/nosuch/json');
  assert.equal(inspect.status, 404, inspect.body);
  assert.equal(JSON.parse(inspect.body).message, 'No such image: nosuch:latest');
  const rmi = await d.docker(['rmi', 'nosuch:1'], { allowFail: true });
  assert.match(rmi.stderr, /No such image: nosuch:1/);
  const hist = await api('GET', '/v1.41/images/nosuch/history');
  assert.equal(hist.status, 404, hist.body);
  const tag = await d.docker(['tag', 'nosuch', 'other'], { allowFail: true });
  assert.match(tag.stderr, /No such image: nosuch:latest/);

  const upper = await api('GET', '/v1.41/images/Bad/json');
  assert.equal(upper.status, 400, upper.body);
  assert.equal(
    JSON.parse(upper.body).message,
    'invalid reference format: repository name (library/Bad) must be lowercase',
  );
  const badTag = await api('POST', '/v1.41/images/create?fromImage=' + encodeURIComponent('micro:bad:tag'));
  assert.equal(badTag.status, 400, badTag.body);
  assert.match(JSON.parse(badTag.body).message, /invalid reference format/);
  const tagBad = await api('POST', '/v1.41/images/imported%2Fmicro:1.0/tag?repo=UP');
  assert.equal(tagBad.status, 400, tagBad.body);
  assert.match(JSON.parse(tagBad.body).message, /invalid reference format/);
  const loadBad = await d.docker(['load'], { input: Buffer.from('not a tar at all'.repeat(64)), allowFail: true });
  assert.notEqual(loadBad.code, 0);
});

test('a tag moved by load leaves the old image dangling; filters and prune find it', async () => {
  const rootfs = await buildMicroRootfs();
  const old = (await d.docker(['import', '-', 'moving:1'], { input: rootfs })).stdout.trim();
  const micro = await buildMicroImage({ tag: 'moving:1' });
  const r = await d.docker(['load'], { input: micro.tarball });
  assert.match(
    r.stdout,
    new RegExp(`The image moving:1 already exists, renaming the old one with ID ${old} to empty string`),
  );
  assert.deepEqual(lines((await d.docker(['images', '--filter', 'dangling=true', '-q', '--no-trunc'])).stdout), [old]);
  assert.ok(
    !lines((await d.docker(['images', '--filter', 'dangling=false', '-q', '--no-trunc'])).stdout).includes(old),
  );
  const row = lines((await d.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout).find((l) =>
    l.endsWith(old.slice(7, 19)),
  );
  assert.equal(row, `<none>:<none> ${old.slice(7, 19)}`);
  const pruned = await d.docker(['image', 'prune', '-f']);
  assert.match(pruned.stdout, new RegExp(`deleted: ${old}`));
  assert.deepEqual(lines((await d.docker(['images', '--filter', 'dangling=true', '-q'])).stdout), []);
  assert.equal((await d.docker(['images', '-q', '--no-trunc', 'moving:1'])).stdout.trim(), micro.id);
});

test('docker save -o, docker load -i round-trip an image; bad archives and rootfs leave nothing behind', async () => {
  const micro = await buildMicroImage({ tag: 'moving:1' });
  const tarFile = `${d.dir}/saved.tar`;
  await d.docker(['save', '-o', tarFile, 'moving:1']);
  await d.docker(['rmi', 'moving:1']);
  assert.equal((await d.docker(['images', '-q', 'moving:1'])).stdout.trim(), '');
  const loaded = await d.docker(['load', '-i', tarFile]);
  assert.match(loaded.stdout, /Loaded image: moving:1/);
  assert.equal((await d.docker(['images', '-q', '--no-trunc', 'moving:1'])).stdout.trim(), micro.id);

  const blobsDir = `${d.dataRoot}/image/blobs/sha256`;
  const layersDir = `${d.dataRoot}/overlay`;
  const before = [fs.readdirSync(blobsDir).sort(), fs.readdirSync(layersDir).sort()];
  const junk = Buffer.alloc(20_000, 7);
  const imp = await d.docker(['import', '-', 'junk:1'], { input: junk, allowFail: true });
  assert.notEqual(imp.code, 0);
  const load = await d.docker(['load'], { input: junk, allowFail: true });
  assert.notEqual(load.code, 0);
  assert.deepEqual([fs.readdirSync(blobsDir).sort(), fs.readdirSync(layersDir).sort()], before);
  assert.deepEqual(fs.readdirSync(`${d.dataRoot}/image/tmp`), []);
  assert.equal((await d.docker(['images', '-q', 'junk:1'])).stdout.trim(), '');
});

test('images, tags and layers survive a daemon restart, even after kill -9', async () => {
  const micro = await buildMicroImage({ tag: 'persist:1' });
  await d.docker(['load'], { input: micro.tarball });
  await d.docker(['tag', 'persist:1', 'persist:2']);
  // The CLI groups an image's tags by repository in a Go map, so rows of one image come in any order.
  const listing = async () =>
    (await d.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout
      .split('\n')
      .sort();
  const before = await listing();
  await d.kill9();
  await d.start();
  assert.deepEqual(await listing(), before);
  const insp = JSON.parse((await d.docker(['image', 'inspect', 'persist:2'])).stdout)[0];
  assert.equal(insp.Id, micro.id);
  assert.deepEqual(insp.RootFS.Layers, [micro.diffId]);
  await d.stop();
  await d.start();
  // Same bytes as moving:1 from the test before: one image, which stays for that name.
  const r = await d.docker(['rmi', 'persist:1', 'persist:2']);
  assert.equal(r.stdout, 'Untagged: persist:1\nUntagged: persist:2\n');
  assert.equal((await d.docker(['images', '-q', '--no-trunc', 'moving:1'])).stdout.trim(), micro.id);
});

test('docker load of an OCI image layout archive (index.json, blobs/sha256)', async () => {
  const micro = await buildMicroImage({ tag: 'unused' });
  // Take the layer and config out of the docker-save archive and lay them out the OCI way.
  const files = new Map<string, Buffer>();
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      files.set(h.name, Buffer.concat(chunks));
      next();
    });
  });
  ex.end(micro.tarball);
  await done;
  const layer = files.get(`${micro.diffId.slice(7)}/layer.tar`)!;
  const config = files.get(`${micro.id.slice(7)}.json`)!;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: micro.id, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: micro.diffId, size: layer.length }],
    }),
  );
  const mdigest = sha256(manifest);
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: mdigest,
        size: manifest.length,
        annotations: {
          'io.containerd.image.name': 'docker.io/library/oci-micro:2',
          'org.opencontainers.image.ref.name': '2',
        },
      },
    ],
  };
  const archive = await packTar([
    { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: `blobs/sha256/${micro.diffId.slice(7)}`, data: layer },
    { name: `blobs/sha256/${micro.id.slice(7)}`, data: config },
    { name: `blobs/sha256/${mdigest.slice(7)}`, data: manifest },
    { name: 'index.json', data: Buffer.from(JSON.stringify(index)) },
  ]);
  const r = await d.docker(['load'], { input: archive });
  assert.match(r.stdout, /Loaded image: oci-micro:2/);
  assert.equal((await d.docker(['images', '-q', '--no-trunc', 'oci-micro:2'])).stdout.trim(), micro.id);
});

test('docker history lists empty-layer steps with size 0 and the image ID on the newest row', async () => {
  const rootfs = await buildMicroRootfs();
  const diffId = sha256(rootfs);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-03-01T00:00:00Z',
      config: { Env: ['A=1'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [
        { created: '2024-03-01T00:00:00Z', created_by: 'ADD rootfs.tar /' },
        { created: '2024-03-01T00:00:01Z', created_by: 'ENV A=1', empty_layer: true },
        {
          created: '2024-03-01T00:00:02Z',
          created_by: 'CMD ["/bin/sh"]',
          empty_layer: true,
          comment: 'buildkit.dockerfile.v0',
        },
      ],
    }),
  );
  const id = sha256(config);
  const manifest = Buffer.from(JSON.stringify([{ Config: 'c.json', RepoTags: ['hist:1'], Layers: ['l/layer.tar'] }]));
  await d.docker(['load'], {
    input: await packTar([
      { name: 'l/layer.tar', data: rootfs },
      { name: 'c.json', data: config },
      { name: 'manifest.json', data: manifest },
    ]),
  });
  const rows = lines(
    (await d.docker(['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}', 'hist:1']))
      .stdout,
  );
  assert.deepEqual(rows, [
    `${id}|CMD ["/bin/sh"]|0B|buildkit.dockerfile.v0`,
    '<missing>|ENV A=1|0B|',
    '<missing>|ADD rootfs.tar /|2.01MB|',
  ]);
});
