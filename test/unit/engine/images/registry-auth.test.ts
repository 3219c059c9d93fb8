// The registry client's answer to WWW-Authenticate challenges (Bearer token flow, Basic),
// against a small registry + token server on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import {
  RegistryClient,
  RegistryError,
  parseChallenge,
  decodeRegistryAuth,
} from '../../../../src/engine/images/registry.js';

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: {},
  layers: [],
});
const USER = 'alice';
const PASS = 's3cret';

let server: http.Server;
let origin: string;
let domain: string;
/** What the token endpoint was asked. */
let tokenRequests: Array<{ query: URLSearchParams; authorization?: string }> = [];
/** Switches the registry between Bearer and Basic challenges. */
let scheme: 'bearer' | 'basic' = 'bearer';

before(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    const auth = req.headers.authorization;
    if (url.pathname === '/token') {
      tokenRequests.push({ query: url.searchParams, authorization: auth });
      const anonymous = !auth;
      const good = auth === `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
      if (!anonymous && !good) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      const token = anonymous ? 'anon-token' : `token-for-${USER}`;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    if (url.pathname.startsWith('/v2/')) {
      const ok =
        scheme === 'bearer'
          ? auth === `Bearer token-for-${USER}` || (auth === 'Bearer anon-token' && url.pathname.includes('/public/'))
          : auth === `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
      if (!ok) {
        const repo = url.pathname.split('/').slice(2, -2).join('/');
        const challenge =
          scheme === 'bearer'
            ? `Bearer realm="${origin}/token",service="test-registry",scope="repository:${repo}:pull"`
            : 'Basic realm="test"';
        res
          .writeHead(401, { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json' })
          .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' }).end(MANIFEST);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  domain = `127.0.0.1:${port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const digest = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;

test('Bearer challenge: the client fetches a token with its credentials, scope and service, then retries', async () => {
  tokenRequests = [];
  scheme = 'bearer';
  const client = new RegistryClient(
    { domain, path: 'team/app' },
    { insecure: true, auth: { username: USER, password: PASS }, actions: 'pull' },
  );
  const m = await client.getManifest('1.0');
  assert.equal(m.digest, digest);
  assert.equal(m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(tokenRequests.length, 1);
  const q = tokenRequests[0].query;
  assert.equal(q.get('service'), 'test-registry');
  assert.equal(q.get('scope'), 'repository:team/app:pull');
  assert.equal(q.get('account'), USER);
  assert.equal(tokenRequests[0].authorization, `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`);
  // The token is kept: the next request needs no new one.
  await client.getManifest(digest);
  assert.equal(tokenRequests.length, 1);
});

test('a push asks for pull,push; anonymous clients get an anonymous token', async () => {
  tokenRequests = [];
  scheme = 'bearer';
  const pusher = new RegistryClient(
    { domain, path: 'team/app' },
    { insecure: true, auth: { username: USER, password: PASS }, actions: 'pull,push' },
  );
  await pusher.getManifest('1.0');
  assert.equal(tokenRequests[0].query.get('scope'), 'repository:team/app:pull,push');

  const anon = new RegistryClient({ domain, path: 'public/app' }, { insecure: true, actions: 'pull' });
  assert.equal((await anon.getManifest('1.0')).digest, digest);
  assert.equal(tokenRequests[1].authorization, undefined);
  assert.equal(tokenRequests[1].query.get('account'), null);
  // Anonymous, on a private repository: the registry still says 401 after the token.
  const denied = new RegistryClient({ domain, path: 'team/app' }, { insecure: true, actions: 'pull' });
  await assert.rejects(
    denied.getManifest('1.0'),
    (e: RegistryError) => e.status === 401 && e.code === 'UNAUTHORIZED' && /authentication required/.test(e.message),
  );
});

test('wrong password: the token server\'s 401 becomes Docker\'s "incorrect username or password"', async () => {
  scheme = 'bearer';
  const client = new RegistryClient(
    { domain, path: 'team/app' },
    { insecure: true, auth: { username: USER, password: 'nope' }, actions: 'pull' },
  );
  await assert.rejects(
    client.getManifest('1.0'),
    (e: RegistryError) => e.status === 401 && e.message === 'unauthorized: incorrect username or password',
  );
});

test('Basic challenge: credentials are sent as Basic auth', async () => {
  scheme = 'basic';
  tokenRequests = [];
  const client = new RegistryClient(
    { domain, path: 'team/app' },
    { insecure: true, auth: { username: USER, password: PASS }, actions: 'pull' },
  );
  assert.equal((await client.getManifest('1.0')).digest, digest);
  assert.equal(tokenRequests.length, 0);
  const anon = new RegistryClient({ domain, path: 'team/app' }, { insecure: true, actions: 'pull' });
  await assert.rejects(anon.getManifest('1.0'), (e: RegistryError) => e.status === 401);
});

test('challenge parsing and the X-Registry-Auth header', () => {
  assert.deepEqual(
    parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    ),
    {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/busybox:pull',
      },
    },
  );
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), {
    scheme: 'basic',
    params: { realm: 'Registry Realm' },
  });
  const header = Buffer.from(
    JSON.stringify({ auth: Buffer.from('bob:pw:with:colons').toString('base64'), serveraddress: 'r.example' }),
  ).toString('base64url');
  const decoded = decodeRegistryAuth(header);
  assert.equal(decoded?.username, 'bob');
  assert.equal(decoded?.password, 'pw:with:colons');
  assert.equal(decodeRegistryAuth('%%%not-base64-json'), undefined);
  assert.equal(decodeRegistryAuth(undefined), undefined);
});
