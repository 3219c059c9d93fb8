import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createApiCA, signApiCert, type CertAndKey } from '../../src/cluster/api-certs.js';
import { run } from '../../src/util/run.js';
import { DOCKER, REPO_ROOT, startDaemon, TEST_ROOT, type TestDaemon } from '../helpers/daemon.js';
import { auditEntries } from '../helpers/audit-log.js';
import { importBusybox } from '../helpers/busybox.js';
import { uniqueName } from '../helpers/netns.js';
import { waitFor } from '../helpers/process.js';

/**
 * The Engine API over TCP with TLS, as dockerd's --tlsverify: the real docker CLI with
 * docker-machine's three variables, refused clients (plain HTTP, no certificate, another CA,
 * expired), roles from the certificate's OU, the audit log, and shoald refusing bad flags.
 * Needs root (a network namespace, runc) and the docker CLI.
 */

const dir = path.join(TEST_ROOT, uniqueName('apitls'));
let d: TestDaemon;
let ca: CertAndKey;

/** A DOCKER_CERT_PATH directory: ca.pem (verifies the daemon), cert.pem and key.pem. */
async function clientDir(
  name: string,
  signer: CertAndKey,
  subject: string,
  validity?: { notBefore: Date; notAfter: Date },
): Promise<string> {
  const p = path.join(dir, name);
  fs.mkdirSync(p, { recursive: true });
  const c = await signApiCert(signer, { subject, usage: 'client', ...validity });
  fs.writeFileSync(path.join(p, 'ca.pem'), ca.certPem);
  fs.writeFileSync(path.join(p, 'cert.pem'), c.certPem);
  fs.writeFileSync(path.join(p, 'key.pem'), c.keyPem!);
  return p;
}

/** The docker CLI inside the daemon's namespace, over TCP+TLS with the certificates in `certPath`. */
function tlsDocker(certPath: string | undefined, args: string[], extraEnv: Record<string, string> = {}) {
  const env: Record<string, string> = { DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_CLI_HINTS: 'false', ...extraEnv };
  if (certPath) Object.assign(env, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certPath });
  return run('nsenter', [`--net=/var/run/netns/${d.ns}`, DOCKER, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
    allowFail: true,
  });
}

const certs: Record<string, string> = {};

before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test needs root');
  fs.mkdirSync(dir, { recursive: true });
  ca = await createApiCA('apitls-test-ca');
  const server = await signApiCert(ca, { subject: 'CN=shoald', usage: 'server', names: ['127.0.0.1', 'localhost'] });
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
  fs.writeFileSync(path.join(dir, 'server.pem'), server.certPem);
  fs.writeFileSync(path.join(dir, 'server-key.pem'), server.keyPem!);
  certs.admin = await clientDir('admin', ca, 'CN=alice, OU=admin');
  certs.viewer = await clientDir('viewer', ca, 'CN=victor, OU=viewer');
  certs.operator = await clientDir('operator', ca, 'CN=olga, OU=operator');
  certs.norole = await clientDir('norole', ca, 'CN=nobody');
  certs.expired = await clientDir('expired', ca, 'CN=late, OU=admin', {
    notBefore: new Date(Date.now() - 10 * 86400_000),
    notAfter: new Date(Date.now() - 86400_000),
  });
  certs.wrongca = await clientDir('wrongca', await createApiCA('someone-else'), 'CN=mallory, OU=admin');
  d = await startDaemon({
    prefix: 'shtls',
    extraArgs: [
      '-H',
      'tcp://0.0.0.0:2376',
      '--tlsverify',
      '--tlscacert',
      path.join(dir, 'ca.pem'),
      '--tlscert',
      path.join(dir, 'server.pem'),
      '--tlskey',
      path.join(dir, 'server-key.pem'),
    ],
  });
  await importBusybox((args, o) => d.docker(args, o), dir, 'busybox:latest');
});

after(async () => {
  await d?.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the docker CLI over TCP+TLS with a CA-signed client certificate: version, run (attach), exec', async () => {
  const v = await tlsDocker(certs.admin, ['version', '--format', '{{.Server.Version}}']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /shoal/);
  const r = await tlsDocker(certs.admin, ['run', '--rm', 'busybox', 'echo', 'hello over tls']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'hello over tls');
  const c = await tlsDocker(certs.admin, ['run', '-d', '--name', 'tls-sleeper', 'busybox', 'sleep', '300']);
  assert.equal(c.code, 0, c.stderr);
  const e = await tlsDocker(certs.admin, ['exec', 'tls-sleeper', 'echo', 'exec over tls']);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(e.stdout.trim(), 'exec over tls');
  const i = await tlsDocker(certs.admin, ['exec', '-i', 'tls-sleeper', 'cat'], {});
  assert.equal(i.code, 0, i.stderr);
});

/** The reasons shoald logged for refused TLS handshakes so far. */
function refusals(): string[] {
  return fs
    .readFileSync(path.join(d.dir, 'shoald.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('API TLS handshake refused'))
    .map((l) => String((JSON.parse(l) as { err?: string }).err));
}

/** node's TLS client in the daemon's namespace, sending the certificate in `certPath` whatever the server's CA list says. */
function nodeTlsClient(certPath: string) {
  return run(
    'nsenter',
    [
      `--net=/var/run/netns/${d.ns}`,
      process.execPath,
      '-e',
      `
    const tls = require('node:tls'); const fs = require('node:fs'); const p = ${JSON.stringify(certPath)};
    const s = tls.connect({ host: '127.0.0.1', port: 2376, ca: fs.readFileSync(p + '/ca.pem'), cert: fs.readFileSync(p + '/cert.pem'), key: fs.readFileSync(p + '/key.pem') });
    s.on('secureConnect', () => s.write('GET /version HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));
    s.on('data', (b) => process.stdout.write(b));
    s.on('error', (e) => { console.error(e.message); process.exit(1); });
    s.on('close', () => process.exit(2));`,
    ],
    { allowFail: true },
  );
}

/** Runs a client that must be refused, and returns the reason the daemon logged for it. */
async function refusedAtHandshake(
  what: string,
  client: () => Promise<{ code: number | null; stdout: string }>,
): Promise<string> {
  const before = refusals().length;
  const r = await client();
  assert.notEqual(r.code, 0, `${what} was let in`);
  assert.doesNotMatch(r.stdout, /shoal/, what);
  await waitFor(`shoald to log the refused handshake of ${what}`, () => refusals().length > before, 10_000);
  // The CLI may retry on a second connection: every reason logged for it.
  await new Promise((r) => setTimeout(r, 300));
  return refusals().slice(before).join(' | ');
}

test('plain HTTP, no certificate, another CA and an expired certificate are refused at the handshake', async () => {
  const plain = await refusedAtHandshake('plain HTTP', () =>
    tlsDocker(undefined, ['version', '--format', '{{.Server.Version}}']),
  );
  assert.match(plain, /wrong version number|http request|packet length/i);
  // --tlsverify with only the CA: the server is verified, the client shows no certificate.
  const noCert = await refusedAtHandshake('no certificate', () =>
    run(
      'nsenter',
      [
        `--net=/var/run/netns/${d.ns}`,
        DOCKER,
        '-H',
        'tcp://127.0.0.1:2376',
        '--tlsverify',
        '--tlscacert',
        path.join(dir, 'ca.pem'),
        'version',
        '--format',
        '{{.Server.Version}}',
      ],
      { env: { PATH: process.env.PATH ?? '', HOME: dir }, allowFail: true },
    ),
  );
  assert.match(noCert, /no client certificate/);
  const wrong = await refusedAtHandshake('another CA', () =>
    tlsDocker(certs.wrongca, ['version', '--format', '{{.Server.Version}}']),
  );
  // Go's TLS client sends no certificate the server's CA list does not name.
  assert.match(wrong, /no client certificate|UNABLE_TO_GET_ISSUER_CERT/);
  // The docker CLI gives up on the handshake itself here; the server's own check is shown by a
  // client that sends the expired certificate regardless (node's TLS client).
  await refusedAtHandshake('an expired certificate (docker CLI)', () =>
    tlsDocker(certs.expired, ['version', '--format', '{{.Server.Version}}']),
  );
  const expired = await refusedAtHandshake('an expired certificate', () => nodeTlsClient(certs.expired));
  assert.match(expired, /CERT_HAS_EXPIRED/);
  assert.match(
    await refusedAtHandshake('another CA (node client)', () => nodeTlsClient(certs.wrongca)),
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/,
  );
});

test('roles: a viewer lists and inspects, gets 403 naming the role on writes and exec; no role, no access', async () => {
  const ps = await tlsDocker(certs.viewer, ['ps', '-a', '--format', '{{.Names}}']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /tls-sleeper/);
  assert.equal((await tlsDocker(certs.viewer, ['inspect', 'tls-sleeper'])).code, 0);
  assert.equal((await tlsDocker(certs.viewer, ['logs', 'tls-sleeper'])).code, 0);
  for (const args of [
    ['run', '-d', 'busybox', 'true'],
    ['rm', '-f', 'tls-sleeper'],
    ['exec', 'tls-sleeper', 'true'],
    ['network', 'create', 'vnet'],
    ['volume', 'create', 'vvol'],
  ]) {
    const r = await tlsDocker(certs.viewer, args);
    assert.notEqual(r.code, 0, `viewer could ${args.join(' ')}`);
    assert.match(r.stderr, /role viewer \(CN=victor, OU=viewer\) may not/, args.join(' '));
  }
  const op = await tlsDocker(certs.operator, ['volume', 'create', 'opvol']);
  assert.equal(op.code, 0, op.stderr);
  const leave = await tlsDocker(certs.operator, ['swarm', 'leave', '--force']);
  assert.match(leave.stderr, /role operator .* may not "swarm leave"; it needs admin/);
  const none = await tlsDocker(certs.norole, ['ps']);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /CN=nobody has no API role/);
  // The unix socket stays root.
  assert.equal((await d.docker(['volume', 'rm', 'opvol'])).code, 0);
});

test('the audit log names the certificate of each write, denied ones included, and no body', async () => {
  const read = () => auditEntries(d.dataRoot);
  // A hijacked exec is written when its stream ends, which may be just after the CLI returned.
  const lines = await waitFor(
    'the exec stream in the audit log',
    () => {
      const l = read();
      return l.some((e) => String(e.path).startsWith('/exec/')) && l;
    },
    10_000,
  );
  const create = lines.find((l) => l.path === '/containers/create' && l.client === 'CN=alice, OU=admin');
  assert.ok(create, 'container create by alice is audited');
  assert.equal(create.outcome, 'ok');
  assert.equal(create.role, 'admin');
  assert.ok(
    lines.some((l) => l.path === '/containers/tls-sleeper/exec' && l.client === 'CN=alice, OU=admin'),
    'exec audited',
  );
  assert.ok(
    lines.some(
      (l) => (l.path as string).startsWith('/exec/') && l.client === 'CN=alice, OU=admin' && l.outcome === 'stream',
    ),
    'exec start audited as a stream',
  );
  const denied = lines.find(
    (l) => l.client === 'CN=victor, OU=viewer' && l.path === '/containers/tls-sleeper' && l.status === 403,
  );
  assert.ok(denied, 'denied rm by the viewer is audited');
  assert.equal(denied.outcome, 'denied');
  assert.ok(lines.some((l) => l.client === 'unix socket' && l.path === '/volumes/opvol' && l.method === 'DELETE'));
  assert.ok(!lines.some((l) => l.method === 'GET'), 'reads are not audited');
  assert.ok(!lines.some((l) => 'body' in l || String(l.path).includes('?')));
});

/** Runs shoald with `args` and expects it to exit 1 before it does anything, saying `message`. */
async function refusesToStart(args: string[], message: RegExp): Promise<void> {
  const root = path.join(dir, uniqueName('bad'));
  const r = await run(
    process.execPath,
    [
      path.join(REPO_ROOT, 'dist/src/cli/shoald.js'),
      '--data-root',
      path.join(root, 'data'),
      '--exec-root',
      path.join(root, 'exec'),
      '-H',
      `unix://${root}/s.sock`,
      ...args,
    ],
    { allowFail: true, timeout: 20_000 },
  );
  assert.equal(r.code, 1, `shoald ${args.join(' ')} should refuse to start:\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr, message);
  assert.ok(!fs.existsSync(path.join(root, 'data')), 'nothing was created');
}

test('shoald refuses to start on bad API flags, with a clear message', async () => {
  const tlsFlags = (o: { ca?: string; cert?: string; key?: string }) => [
    '-H',
    'tcp://127.0.0.1:0',
    '--tlsverify',
    '--tlscacert',
    o.ca ?? path.join(dir, 'ca.pem'),
    '--tlscert',
    o.cert ?? path.join(dir, 'server.pem'),
    '--tlskey',
    o.key ?? path.join(dir, 'server-key.pem'),
  ];
  await refusesToStart(['-H', 'tcp://0.0.0.0:2376'], /refusing plain HTTP on a non-loopback address.*--insecure-api/);
  await refusesToStart(
    tlsFlags({ cert: path.join(dir, 'missing.pem') }),
    /--tlscert .*missing\.pem: cannot read: ENOENT/,
  );
  await refusesToStart(
    tlsFlags({ key: path.join(certs.admin, 'key.pem') }),
    /--tlskey .* does not match the certificate in --tlscert/,
  );
  await refusesToStart(
    tlsFlags({ ca: path.join(dir, 'server.pem') }),
    /--tlscacert .*: certificate "CN=shoald" is not a CA/,
  );
  await refusesToStart(tlsFlags({ ca: path.join(certs.admin, 'key.pem') }), /--tlscacert .*: no PEM certificate/);
  await refusesToStart(['-H', 'http://x:1'], /unsupported scheme/);
});
