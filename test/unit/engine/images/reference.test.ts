// Pure image logic: reference parsing as Docker normalises names, reference filters,
// `-c` change lines, platform choice in manifest lists, which registries are plain HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../../../src/util/errors.js';
import {
  familiar,
  familiarString,
  formatReference,
  globMatch,
  parseReference,
  referenceFilterMatch,
  withDefaultTag,
} from '../../../../src/engine/images/reference.js';
import { applyChanges } from '../../../../src/engine/images/changes.js';
import { choosePlatform, MT } from '../../../../src/engine/images/manifest.js';
import { isInsecureRegistry } from '../../../../src/engine/images/registry.js';

const D = 'sha256:' + 'ab'.repeat(32);

test('references normalise as in Docker', () => {
  assert.equal(formatReference(withDefaultTag(parseReference('busybox'))), 'docker.io/library/busybox:latest');
  assert.equal(formatReference(parseReference('foo/bar:1')), 'docker.io/foo/bar:1');
  assert.equal(formatReference(parseReference('127.0.0.1:5000/micro:1.0.0')), '127.0.0.1:5000/micro:1.0.0');
  assert.equal(formatReference(parseReference('localhost/a/b')), 'localhost/a/b');
  assert.equal(formatReference(parseReference(`host:5000/a@${D}`)), `host:5000/a@${D}`);
  assert.equal(formatReference(parseReference('index.docker.io/library/x')), 'docker.io/library/x');
  assert.equal(familiar('docker.io/library/busybox:latest'), 'busybox:latest');
  assert.equal(familiar('docker.io/foo/bar:1'), 'foo/bar:1');
  assert.equal(familiarString(parseReference('127.0.0.1:5000/micro:1.0.0')), '127.0.0.1:5000/micro:1.0.0');
});

test("malformed references are 400 with Docker's messages", () => {
  const bad = (s: string, msg: RegExp) =>
    assert.throws(
      () => parseReference(s),
      (e: ApiError) => e.status === 400 && msg.test(e.message),
    );
  bad('Busybox', /^invalid reference format: repository name \(library\/Busybox\) must be lowercase$/);
  bad('a:b:c', /^invalid reference format$/);
  bad('', /^invalid reference format$/);
  bad('a@sha256:short', /^invalid reference format$/);
  bad('-a', /^invalid reference format$/);
  bad('a//b', /^invalid reference format$/);
  bad('ab'.repeat(32), /cannot specify 64-byte hexadecimal strings/);
});

test('reference filters match familiar names with path.Match globs', () => {
  assert.ok(referenceFilterMatch('busybox', 'docker.io/library/busybox:latest'));
  assert.ok(referenceFilterMatch('busybox:*', 'docker.io/library/busybox:1'));
  assert.ok(!referenceFilterMatch('busy', 'docker.io/library/busybox:latest'));
  assert.ok(referenceFilterMatch('*/micro', '127.0.0.1:5000/micro:1.0.0'));
  assert.ok(!referenceFilterMatch('*', 'docker.io/foo/bar:1'), '* never crosses /');
  assert.ok(globMatch('a[0-9]?', 'a7x'));
});

test('change lines: CMD/ENTRYPOINT forms, ENV, EXPOSE, LABEL, WORKDIR; bad lines are 400', () => {
  const cfg = applyChanges({}, [
    'CMD ["/bin/httpd","-f"]',
    'ENTRYPOINT /bin/sh',
    'ENV A=1 B="two words"',
    'ENV C legacy form value',
    'EXPOSE 8000 53/udp 7000-7001',
    'LABEL x=y',
    'WORKDIR /www',
    'WORKDIR cgi-bin',
    'USER nobody',
  ]);
  assert.deepEqual(cfg.Cmd, ['/bin/httpd', '-f']);
  assert.deepEqual(cfg.Entrypoint, ['/bin/sh', '-c', '/bin/sh']);
  assert.deepEqual(cfg.Env, ['A=1', 'B=two words', 'C=legacy form value']);
  assert.deepEqual(Object.keys(cfg.ExposedPorts ?? {}).sort(), ['53/udp', '7000/tcp', '7001/tcp', '8000/tcp']);
  assert.deepEqual(cfg.Labels, { x: 'y' });
  assert.equal(cfg.WorkingDir, '/www/cgi-bin');
  assert.equal(cfg.User, 'nobody');
  const bad = (line: string, msg: RegExp) =>
    assert.throws(
      () => applyChanges({}, [line]),
      (e: ApiError) => e.status === 400 && msg.test(e.message),
    );
  bad('RUN true', /RUN is not a valid change command/);
  bad('EXPOSE http', /invalid containerPort: http/);
  bad('ENV', /ENV requires at least one argument/);
  bad('ENV =x', /ENV names can not be blank/);
});

test('a manifest list picks linux/amd64, skipping attestations and other platforms', () => {
  const m = (
    digest: string,
    platform: { os: string; architecture: string; variant?: string },
    annotations?: Record<string, string>,
  ) => ({ mediaType: MT.ociManifest, digest, size: 1, platform, ...(annotations ? { annotations } : {}) });
  const index = {
    schemaVersion: 2 as const,
    manifests: [
      m('sha256:arm', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
      m(
        'sha256:att',
        { os: 'unknown', architecture: 'unknown' },
        { 'vnd.docker.reference.type': 'attestation-manifest' },
      ),
      m('sha256:win', { os: 'windows', architecture: 'amd64' }),
      m('sha256:amd', { os: 'linux', architecture: 'amd64' }),
    ],
  };
  assert.equal(choosePlatform(index)?.digest, 'sha256:amd');
  assert.equal(choosePlatform({ schemaVersion: 2, manifests: index.manifests.slice(0, 3) }), undefined);
});

test('plain-HTTP registries: listed ones, loopback and localhost', () => {
  assert.ok(isInsecureRegistry('127.0.0.1:5000', []));
  assert.ok(isInsecureRegistry('localhost:5000', []));
  assert.ok(isInsecureRegistry('10.0.0.5:5000', ['10.0.0.5:5000']));
  assert.ok(isInsecureRegistry('10.0.0.5:5000', ['10.0.0.0/8']));
  assert.ok(!isInsecureRegistry('10.0.0.5:5000', ['10.0.0.6:5000']));
  assert.ok(!isInsecureRegistry('docker.io', []));
});
