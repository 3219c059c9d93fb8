import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageTag } from '../../../../src/api/dashboard/view.js';
import { parseDashboardAddr } from '../../../../src/api/dashboard/server.js';
import { sameToken } from '../../../../src/api/dashboard/token.js';
import {
  dashboardToken,
  rotateDashboardToken,
  type DashboardTokenControl,
} from '../../../../src/manager/control/dashboard-token.js';
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

/** The store's side of the token in memory: compare-and-put as etcd's transaction does. */
function memoryTokenStore(): DashboardTokenControl & { value?: string } {
  const c: DashboardTokenControl & { value?: string } = {
    read: () => Promise.resolve(c.value),
    write: (t, ifAbsent) => {
      if (ifAbsent && c.value !== undefined) return Promise.resolve(false);
      c.value = t;
      return Promise.resolve(true);
    },
  };
  return c;
}

test('the swarm token: made once on first use, the same for concurrent askers, replaced by a rotation', async () => {
  const c = memoryTokenStore();
  const [a, b] = await Promise.all([dashboardToken(c), dashboardToken(c)]);
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(a, b);
  assert.equal(await dashboardToken(c), a);
  const r = await rotateDashboardToken(c);
  assert.notEqual(r, a);
  assert.equal(await dashboardToken(c), r);
});

test('the token is compared exactly, and nothing matches when there is none', () => {
  assert.ok(sameToken('abc', 'abc'));
  assert.ok(!sameToken('ab', 'abc') && !sameToken('', 'abc') && !sameToken(undefined, 'abc'));
  assert.ok(!sameToken('abc', undefined) && !sameToken('', ''));
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
