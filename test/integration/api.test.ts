import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon({ prefix: 'shtapi' });
});
after(async () => {
  await d?.destroy();
});

function get(
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, path, method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the docker CLI negotiates API 1.41 and reads the server version', async () => {
  const r = await d.docker([
    'version',
    '--format',
    '{{.Client.APIVersion}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}',
  ]);
  assert.equal(r.stdout.trim(), '1.41 1.41 1.24');
});

test('/_ping answers OK with the API-Version header, also under HEAD', async () => {
  const r = await get('/_ping');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'OK');
  assert.equal(r.headers['api-version'], '1.41');
  const h = await get('/_ping', 'HEAD');
  assert.equal(h.status, 200);
  assert.equal(h.headers['api-version'], '1.41');
});

test('docker info shows the daemon name and engine labels', async () => {
  const r = await d.docker(['info', '--format', '{{.Name}} {{.OSType}} {{.Swarm.LocalNodeState}}']);
  assert.equal(r.stdout.trim(), `${d.name} linux inactive`);
});

test('versioned prefixes: older versions accepted, too new or too old refused with 400', async () => {
  assert.equal((await get('/v1.30/version')).status, 200);
  const tooNew = await get('/v1.99/version');
  assert.equal(tooNew.status, 400);
  assert.match(
    JSON.parse(tooNew.body).message,
    /client version 1.99 is too new. Maximum supported API version is 1.41/,
  );
  const tooOld = await get('/v1.12/version');
  assert.equal(tooOld.status, 400);
  assert.match(JSON.parse(tooOld.body).message, /too old/);
});

test("unknown routes answer 404 in Docker's error shape", async () => {
  const r = await get('/v1.41/nothing/here');
  assert.equal(r.status, 404);
  assert.equal(typeof JSON.parse(r.body).message, 'string');
});
