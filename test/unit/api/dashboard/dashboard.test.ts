import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { imageTag } from '../../../../src/api/dashboard/view.js';
import { parseDashboardAddr } from '../../../../src/api/dashboard/server.js';
import { DashboardToken } from '../../../../src/api/dashboard/token.js';
import { APP_JS } from '../../../../src/api/dashboard/assets.js';
import { engineOptArgs } from '../../../../src/lab/lab.js';
import { requiredRole } from '../../../../src/api/access/roles.js';

test('imageTag: the name and tag a person reads', () => {
  assert.equal(imageTag('docker.io/library/nginx:1.25@sha256:abc'), 'nginx:1.25');
  assert.equal(imageTag('10.0.0.1:5000/micro'), 'micro:latest');
  assert.equal(imageTag('localhost:5000/a/b:2'), 'b:2');
  assert.equal(imageTag(undefined), '');
});

test('--dashboard-addr wants HOST:PORT', () => {
  assert.deepEqual(parseDashboardAddr('0.0.0.0:8080'), { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(parseDashboardAddr('[::1]:80'), { host: '::1', port: 80 });
  for (const bad of ['8080', ':8080', 'host:', 'host:99999', 'host:x'])
    assert.throws(() => parseDashboardAddr(bad), /--dashboard-addr/);
});

test('the token: made once, kept 0600, rotated, compared exactly', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-dash-'));
  try {
    const t = new DashboardToken(dir);
    const a = t.get();
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(new DashboardToken(dir).get(), a);
    assert.equal(fs.statSync(path.join(dir, 'dashboard/token')).mode & 0o777, 0o600);
    assert.ok(t.matches(a));
    assert.ok(!t.matches(a.slice(1)) && !t.matches('') && !t.matches(undefined));
    const b = t.rotate();
    assert.notEqual(a, b);
    assert.ok(!new DashboardToken(dir).matches(a));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the token routes are admin only', () => {
  assert.equal(requiredRole('GET', '/shoal/dashboard/token'), 'admin');
  assert.equal(requiredRole('POST', '/shoal/dashboard/token/rotate'), 'admin');
});

test('the page script parses and fetches nothing from elsewhere', () => {
  assert.doesNotThrow(() => new Function(APP_JS));
  assert.doesNotMatch(APP_JS, /https?:\/\//);
});

test("--engine-opt: flag=value becomes --flag value; the lab's own flags are refused", () => {
  assert.deepEqual(engineOptArgs(['dashboard-addr=0.0.0.0:8080', 'metrics-addr=0.0.0.0:9323', 'insecure-api']), [
    '--dashboard-addr',
    '0.0.0.0:8080',
    '--metrics-addr',
    '0.0.0.0:9323',
    '--insecure-api',
  ]);
  assert.throws(() => engineOptArgs(['data-root=/tmp']), /the lab sets --data-root itself/);
  assert.throws(() => engineOptArgs(['--x=1']), /invalid engine option/);
});
