import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { importBusybox } from '../helpers/busybox.js';
import { packTar } from '../helpers/tar.js';
import { waitFor } from '../helpers/process.js';

// Needs root: runc, conmon, overlayfs. `docker build` (classic builder) with the real CLI and raw HTTP.
let d: TestDaemon;
const BASE = 'shbldbase';
const LEGACY = { env: { DOCKER_BUILDKIT: '0' } };

before(async () => {
  d = await startDaemon({ prefix: 'shbld' });
  await importBusybox(d.docker, d.dir, BASE);
});
after(async () => {
  await d?.destroy();
});

/** POST /build with a tar body: status and the JSON lines of the answer. */
function postBuild(
  query: string,
  body: Buffer,
): Promise<{ status: number; lines: Array<Record<string, unknown>>; raw: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: d.socket,
        method: 'POST',
        path: `/v1.41/build?${query}`,
        headers: { 'Content-Type': 'application/x-tar', 'Content-Length': body.length },
      },
      (res) => {
        let raw = '';
        res.on('data', (c: Buffer) => {
          raw += c.toString();
        });
        res.on('end', () => {
          const lines =
            res.statusCode === 200
              ? raw
                  .split('\n')
                  .filter((l) => l.trim())
                  .map((l) => JSON.parse(l) as Record<string, unknown>)
              : [];
          resolve({ status: res.statusCode ?? 0, lines, raw });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const tarOf = (files: Record<string, string>) =>
  packTar(Object.entries(files).map(([name, data]) => ({ name, data: Buffer.from(data) })));

test('docker build (DOCKER_BUILDKIT=0): COPY, ENV, WORKDIR, RUN, CMD; the image runs and is tagged', async () => {
  const dir = path.join(d.dir, 'ctx1');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello from the context\n');
  fs.writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      `FROM ${BASE}`,
      '# a comment',
      'ENV GREETING=hi \\',
      '    OTHER=x',
      'WORKDIR /app',
      'COPY hello.txt ./',
      'RUN cat hello.txt > copy.txt && \\',
      '    echo "$GREETING" >> copy.txt',
      'LABEL org.example.kind=test',
      'CMD ["cat", "/app/copy.txt"]',
      '',
    ].join('\n'),
  );
  const r = await d.docker(['build', '-t', 'shbld1', '-t', 'shbld1:v2', dir], LEGACY);
  assert.match(r.stdout, /Step 1\/7 : FROM shbldbase/);
  assert.match(r.stdout, /Step 5\/7 : RUN cat hello.txt > copy.txt && +echo "\$GREETING" >> copy.txt/);
  assert.match(r.stdout, /Successfully built [0-9a-f]{12}/);
  assert.match(r.stdout, /Successfully tagged shbld1:latest/);
  assert.match(r.stdout, /Successfully tagged shbld1:v2/);
  const run = await d.docker(['run', '--rm', 'shbld1']);
  assert.equal(run.stdout, 'hello from the context\nhi\n');
  const inspect = JSON.parse((await d.docker(['image', 'inspect', 'shbld1:v2'])).stdout)[0];
  assert.equal(inspect.Config.WorkingDir, '/app');
  assert.equal(inspect.Config.Labels['org.example.kind'], 'test');
  assert.ok(inspect.Config.Env.includes('GREETING=hi'));
  // Intermediate containers are gone (rm defaults to true).
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
});

test('docker build -q prints only the image ID (CLI 28 without buildx takes the legacy builder by itself)', async () => {
  const dir = path.join(d.dir, 'ctx2');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${BASE}\nCMD echo quiet\n`);
  const r = await d.docker(['build', '-q', dir]);
  assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  assert.equal((await d.docker(['run', '--rm', r.stdout.trim()])).stdout, 'quiet\n');
});

test("POST /build: a failing RUN ends the stream with dockerd's errorDetail and code", async () => {
  const body = await tarOf({ Dockerfile: `FROM ${BASE}\nRUN echo before; exit 3\nCMD echo never\n` });
  const r = await postBuild('', body);
  assert.equal(r.status, 200);
  const last = r.lines[r.lines.length - 1];
  const msg = "The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3";
  assert.deepEqual(last, { errorDetail: { code: 3, message: msg }, error: msg });
  assert.ok(
    r.lines.some((l) => l.stream === 'before\n'),
    r.raw,
  );
  assert.ok(!r.lines.some((l) => typeof l.stream === 'string' && l.stream.startsWith('Successfully built')));
  // dockerd keeps the failed step's container unless forcerm; forcerm removes it.
  const left = (await d.docker(['ps', '-aq'])).stdout.trim();
  assert.notEqual(left, '');
  await d.docker(['rm', '-f', ...left.split('\n')]);
  const r2 = await postBuild('forcerm=1', body);
  assert.equal(r2.lines[r2.lines.length - 1].error, msg);
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
  // The real CLI fails with the same text.
  const dir = path.join(d.dir, 'ctx3');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${BASE}\nRUN exit 1\n`);
  const cli = await d.docker(['build', '--force-rm', dir], { ...LEGACY, allowFail: true });
  assert.notEqual(cli.code, 0);
  assert.match(cli.stderr + cli.stdout, /The command '\/bin\/sh -c exit 1' returned a non-zero code: 1/);
});

test('POST /build: tags, labels and build args from the query; the stream carries the aux ID', async () => {
  const body = await tarOf({
    'sub/Build.file': `ARG WHO=nobody\nFROM ${BASE}\nARG WHO\nRUN echo "$WHO" > /who\nCMD ["cat", "/who"]\n`,
  });
  const q = new URLSearchParams({
    dockerfile: 'sub/Build.file',
    t: 'shbld2:x',
    labels: JSON.stringify({ a: 'b' }),
    buildargs: JSON.stringify({ WHO: 'builder' }),
  });
  const r = await postBuild(q.toString(), body);
  assert.equal(r.status, 200, r.raw);
  const aux = r.lines.find((l) => l.aux)?.aux as { ID: string } | undefined;
  assert.match(aux?.ID ?? '', /^sha256:/);
  assert.ok(
    r.lines.some((l) => l.stream === 'Successfully tagged shbld2:x\n'),
    r.raw,
  );
  assert.equal((await d.docker(['run', '--rm', 'shbld2:x'])).stdout, 'builder\n');
  const inspect = JSON.parse((await d.docker(['image', 'inspect', 'shbld2:x'])).stdout)[0];
  assert.equal(inspect.Id, aux?.ID);
  assert.equal(inspect.Config.Labels.a, 'b');
});

test("POST /build: bad input gets dockerd's status and text and builds nothing", async () => {
  const before = (await d.docker(['images', '-q'])).stdout;
  const missing = await postBuild('', await tarOf({ 'other.txt': 'x' }));
  assert.equal(missing.status, 500);
  assert.equal(JSON.parse(missing.raw).message, 'Cannot locate specified Dockerfile: Dockerfile');
  const unknown = await postBuild('', await tarOf({ Dockerfile: `FROM ${BASE}\nFOO bar\n` }));
  assert.equal(unknown.status, 400);
  assert.equal(JSON.parse(unknown.raw).message, 'dockerfile parse error line 2: unknown instruction: FOO');
  const badTag = await postBuild('t=UPPER:x', await tarOf({ Dockerfile: `FROM ${BASE}\n` }));
  assert.equal(badTag.status, 400);
  const noImage = await postBuild('', await tarOf({ Dockerfile: 'FROM 127.0.0.1:1/none/such:tag\n' }));
  assert.equal(noImage.status, 200);
  assert.ok(noImage.lines[noImage.lines.length - 1].error, noImage.raw);
  assert.equal((await d.docker(['images', '-q'])).stdout, before);
});

test('POST /build: a client that goes away cancels the running step and its container goes', async () => {
  const body = await tarOf({ Dockerfile: `FROM ${BASE}\nRUN echo started; sleep 60\n` });
  await new Promise<void>((resolve, reject) => {
    const req = http.request(
      { socketPath: d.socket, method: 'POST', path: '/v1.41/build', headers: { 'Content-Length': body.length } },
      (res) => {
        res.on('data', (c: Buffer) => {
          if (c.toString().includes('started')) {
            req.destroy();
            resolve();
          }
        });
      },
    );
    req.on('error', () => undefined);
    setTimeout(() => reject(new Error('the RUN step never started')), 30_000);
    req.end(body);
  });
  await waitFor(
    "the cancelled step's container removed",
    async () => (await d.docker(['ps', '-aq'])).stdout.trim() === '',
    20_000,
  );
});
