// Token auth end to end: Debian docker-registry with `auth: token`, a small token server that
// signs ES256 JWTs (x5c chain), both in the daemon's netns; docker login / push / pull with
// the real CLI. Needs root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/run.js';
import { startDaemon, TEST_ROOT, type TestDaemon } from '../helpers/daemon.js';
import { createNetns, deleteNetns, inNetns, uniqueName } from '../helpers/netns.js';
import { startProcess, stopProcess, waitFor } from '../helpers/process.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { buildMicroImage } from '../../examples/micro/build.js';

const USER = 'deployer';
const PASS = 'correct horse';
const REG_PORT = 5002;
const TOKEN_PORT = 5003;
const R = `127.0.0.1:${REG_PORT}`;

/** The token server: Basic credentials in, a JWT granting the asked scopes out. */
const TOKEN_SERVER = `
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
const [port, keyFile, certFile, user, pass] = process.argv.slice(2);
const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
const certDer = new crypto.X509Certificate(fs.readFileSync(certFile)).raw.toString('base64');
const b64u = (b) => Buffer.from(b).toString('base64url');
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://token');
  if (req.headers.authorization !== 'Basic ' + Buffer.from(user + ':' + pass).toString('base64')) {
    res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"incorrect username or password"}');
    return;
  }
  const access = url.searchParams.getAll('scope').map((s) => {
    const [type, name, actions] = s.split(':');
    return { type, name, actions: actions.split(',') };
  });
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'ES256', typ: 'JWT', x5c: [certDer] };
  const claims = { iss: 'shoal-test', sub: user, aud: url.searchParams.get('service'), exp: now + 600, nbf: now - 60, iat: now, jti: crypto.randomUUID(), access };
  const input = b64u(JSON.stringify(header)) + '.' + b64u(JSON.stringify(claims));
  const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: input + '.' + b64u(sig), expires_in: 600 }));
}).listen(Number(port), '127.0.0.1');
`;

let ns: string;
let dir: string;
const pids: Array<number | undefined> = [];
let reg: TestRegistry;
let d1: TestDaemon;
let d2: TestDaemon;

before(async () => {
  ns = await createNetns('shtauth');
  dir = path.join(TEST_ROOT, uniqueName('shtauth'));
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=shoal-test-token',
  ]);
  fs.writeFileSync(path.join(dir, 'token-server.mjs'), TOKEN_SERVER);
  pids.push(
    startProcess(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        '--',
        process.execPath,
        path.join(dir, 'token-server.mjs'),
        String(TOKEN_PORT),
        key,
        cert,
        USER,
        PASS,
      ],
      path.join(dir, 'token.log'),
    ).pid,
  );
  reg = await startRegistry(ns, {
    addr: R,
    extraConfig: [
      'auth:',
      '  token:',
      `    realm: http://127.0.0.1:${TOKEN_PORT}/token`,
      '    service: shoal-test-registry',
      '    issuer: shoal-test',
      `    rootcertbundle: ${cert}`,
    ],
    readyStatus: 401,
  });
  await waitFor(
    'the token server',
    async () =>
      (
        await inNetns(
          ns,
          'curl',
          ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${TOKEN_PORT}/token`],
          { allowFail: true },
        )
      ).stdout === '401',
  );
  d1 = await startDaemon({ prefix: 'shtauth1', ns });
  d2 = await startDaemon({ prefix: 'shtauth2', ns });
});
after(async () => {
  await d1?.destroy();
  await d2?.destroy();
  await reg?.stop();
  for (const p of pids) await stopProcess(p);
  if (ns) await deleteNetns(ns);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The CLI with its own config dir, where `docker login` keeps the credentials. */
function cli(d: TestDaemon, config: string, args: string[], opts: Parameters<TestDaemon['docker']>[1] = {}) {
  fs.mkdirSync(config, { recursive: true });
  return d.docker(args, { ...opts, env: { DOCKER_CONFIG: config } });
}

test('without credentials a token registry refuses push and pull', async () => {
  const anon = path.join(dir, 'cli-anon');
  await cli(d1, anon, ['load'], { input: (await buildMicroImage({ tag: `${R}/micro:1.0.0` })).tarball });
  const push = await cli(d1, anon, ['push', `${R}/micro:1.0.0`], { allowFail: true });
  assert.notEqual(push.code, 0);
  assert.match(push.stderr, /unauthorized: authentication required/);
  const pull = await cli(d2, anon, ['pull', `${R}/micro:1.0.0`], { allowFail: true });
  assert.notEqual(pull.code, 0);
  assert.match(
    pull.stderr,
    new RegExp(
      `pull access denied for ${R}/micro, repository does not exist or may require 'docker login': unauthorized: authentication required`,
    ),
  );
});

test('docker login checks the password through the token server', async () => {
  const bad = await cli(d1, path.join(dir, 'cli-bad'), ['login', '-u', USER, '--password-stdin', R], {
    input: 'wrong\n',
    allowFail: true,
  });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /incorrect username or password/);
  const good = await cli(d1, path.join(dir, 'cli-1'), ['login', '-u', USER, '--password-stdin', R], {
    input: `${PASS}\n`,
  });
  assert.match(good.stdout, /Login Succeeded/);
});

test('logged in: push through one daemon, pull on another (Bearer tokens per repository scope)', async () => {
  const c1 = path.join(dir, 'cli-1');
  const r = await cli(d1, c1, ['push', `${R}/micro:1.0.0`]);
  assert.match(r.stdout, /1\.0\.0: digest: sha256:[a-f0-9]{64}/);
  const c2 = path.join(dir, 'cli-2');
  await cli(d2, c2, ['login', '-u', USER, '--password-stdin', R], { input: `${PASS}\n` });
  const pull = await cli(d2, c2, ['pull', `${R}/micro:1.0.0`]);
  assert.match(pull.stdout, /Status: Downloaded newer image/);
  assert.equal(
    (await d2.docker(['images', '-q', '--no-trunc', `${R}/micro:1.0.0`])).stdout.trim(),
    (await buildMicroImage()).id,
  );
});
