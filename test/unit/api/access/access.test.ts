import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { actionName, allows, isAudited, requiredRole } from '../../../../src/api/access/roles.js';
import { certificateRole, loadRoleMap, subjectName } from '../../../../src/api/access/identity.js';
import { AuditLog } from '../../../../src/api/access/audit.js';
import { isLoopbackHost } from '../../../../src/api/tls.js';

test('roles: reads for viewers, writes for operators, membership and certificates for admins', () => {
  assert.equal(requiredRole('GET', '/services'), 'viewer');
  assert.equal(requiredRole('GET', '/containers/:id/logs'), 'viewer');
  assert.equal(requiredRole('POST', '/containers/:id/wait'), 'viewer');
  assert.equal(requiredRole('POST', '/services/create'), 'operator');
  assert.equal(requiredRole('DELETE', '/secrets/:id'), 'operator');
  assert.equal(requiredRole('POST', '/containers/:id/exec'), 'operator');
  assert.equal(requiredRole('POST', '/exec/:id/start'), 'operator');
  assert.equal(requiredRole('GET', '/containers/:id/archive'), 'operator', 'docker cp out can read /run/secrets');
  assert.equal(requiredRole('POST', '/some/new/route'), 'operator', 'unknown writes never fall to viewers');
  for (const [m, p] of [
    ['POST', '/swarm/leave'],
    ['POST', '/swarm/init'],
    ['POST', '/swarm/update'],
    ['GET', '/swarm/unlockkey'],
    ['DELETE', '/nodes/:id'],
    ['POST', '/shoal/certs'],
  ]) {
    assert.equal(requiredRole(m, p), 'admin', `${m} ${p}`);
  }
  // A node's availability and labels are an operator's; the route asks for admin when the role changes.
  assert.equal(requiredRole('POST', '/nodes/:id/update'), 'operator');
  assert.ok(isAudited('POST', '/nodes/:id/update'));
  assert.ok(allows('admin', 'operator') && allows('operator', 'viewer') && allows('viewer', 'viewer'));
  assert.ok(!allows('viewer', 'operator') && !allows('operator', 'admin') && !allows(undefined, 'viewer'));
});

test('audited calls: writes, exec and attach, and admin reads; never plain reads', () => {
  assert.ok(isAudited('POST', '/services/create'));
  assert.ok(isAudited('POST', '/exec/:id/start'));
  assert.ok(isAudited('GET', '/swarm/unlockkey'));
  assert.ok(!isAudited('GET', '/services'));
  assert.ok(!isAudited('POST', '/containers/:id/wait'));
});

test('action names in messages', () => {
  assert.equal(actionName('POST', '/services/create'), 'services create');
  assert.equal(actionName('DELETE', '/services/:id'), 'services delete');
  assert.equal(actionName('POST', '/swarm/leave'), 'swarm leave');
  assert.equal(actionName('GET', '/services'), 'services list');
  assert.equal(actionName('GET', '/services/:id'), 'services inspect');
});

test("a certificate's role: the role map first, then a single OU naming a role", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-roles-'));
  try {
    const f = path.join(dir, 'roles.json');
    fs.writeFileSync(f, JSON.stringify({ subjects: { 'CN=alice': 'admin', 'CN=bob, O=acme': 'viewer' } }));
    const map = loadRoleMap(f);
    assert.equal(certificateRole({ CN: 'alice' } as never, map), 'admin');
    assert.equal(certificateRole({ CN: 'bob', O: 'acme' } as never, map), 'viewer');
    assert.equal(certificateRole({ CN: 'carol', OU: 'operator' } as never, map), 'operator');
    assert.equal(
      certificateRole({ CN: 'node1', OU: 'swarm-manager' } as never, map),
      undefined,
      'node certificates have no API role',
    );
    assert.equal(
      certificateRole({ CN: 'x', OU: ['viewer', 'admin'] } as never, undefined),
      undefined,
      'two role OUs: ambiguous, none',
    );
    assert.equal(subjectName({ O: 'acme', CN: 'bob', OU: 'viewer' } as never), 'CN=bob, OU=viewer, O=acme');
    fs.writeFileSync(f, JSON.stringify({ subjects: { 'CN=eve': 'root' } }));
    assert.throws(() => loadRoleMap(f), /role must be admin, operator or viewer/);
    fs.writeFileSync(f, '{');
    assert.throws(() => loadRoleMap(f), /--api-roles/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the audit log rotates by size and keeps a bounded number of files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-audit-'));
  try {
    const log = new AuditLog(dir, 1000, 2);
    for (let i = 0; i < 40; i++)
      log.record({
        time: new Date().toISOString(),
        client: 'unix socket',
        method: 'POST',
        path: `/services/s${i}/update`,
        object: `s${i}`,
        status: 200,
        outcome: 'ok',
      });
    const files = fs.readdirSync(dir).sort();
    assert.deepEqual(files, ['audit.log', 'audit.log.1', 'audit.log.2']);
    for (const f of files) assert.ok(fs.statSync(path.join(dir, f)).size <= 1000, f);
    const last = fs
      .readFileSync(path.join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { object: string });
    assert.equal(last[last.length - 1].object, 's39');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('loopback hosts', () => {
  assert.ok(
    isLoopbackHost('127.0.0.1') &&
      isLoopbackHost('localhost') &&
      isLoopbackHost('[::1]') &&
      isLoopbackHost('127.3.4.5'),
  );
  assert.ok(!isLoopbackHost('0.0.0.0') && !isLoopbackHost('192.168.99.2') && !isLoopbackHost('::'));
});
