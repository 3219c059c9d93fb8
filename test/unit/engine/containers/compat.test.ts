import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DetachWatcher, parseDetachKeys, DEFAULT_DETACH_KEYS } from '../../../../src/engine/containers/detach-keys.js';
import { linkEnv, linkHostNames, normalizeLinks, parseLink } from '../../../../src/engine/containers/links.js';
import { extraHostsEntries, hostsContent } from '../../../../src/engine/containers/rootfs.js';
import { normalizeLogConfig, verifyHostConfig } from '../../../../src/engine/containers/host-config.js';
import { ApiError } from '../../../../src/util/errors.js';

test('detach keys: moby/term names, the default, and a 400 for a bad one', () => {
  assert.deepEqual(parseDetachKeys(''), DEFAULT_DETACH_KEYS);
  assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [0x10, 0x11]);
  assert.deepEqual([...parseDetachKeys('a,ctrl-@,ctrl-_,ctrl-\\')], [0x61, 0, 31, 28]);
  assert.throws(
    () => parseDetachKeys('ctrl-1'),
    (e: ApiError) => e.status === 400 && e.message === 'Invalid detach keys (ctrl-1) provided',
  );
});

test('detach watcher: held prefix, mismatch passes it on, sequence across chunks, nothing after it', () => {
  const w = new DetachWatcher(Buffer.from([0x10, 0x11]));
  assert.deepEqual(w.push(Buffer.from('ab\x10')), { pass: Buffer.from('ab'), detach: false });
  assert.deepEqual(w.push(Buffer.from('c')), { pass: Buffer.from('\x10c'), detach: false });
  assert.deepEqual(w.push(Buffer.from('\x10\x10')), { pass: Buffer.from('\x10'), detach: false });
  assert.deepEqual(w.push(Buffer.from('\x11zz')), { pass: Buffer.alloc(0), detach: true });
  const one = new DetachWatcher(Buffer.from([0x18]));
  assert.deepEqual(one.push(Buffer.from('x\x18y')), { pass: Buffer.from('x'), detach: true });
});

test('links: stored as dockerd shows them; env and hosts names as moby daemon/links', () => {
  assert.deepEqual(normalizeLinks(['c1:db', 'c2', '/c4:/old/cache'], '/web'), [
    '/c1:/web/db',
    '/c2:/web/c2',
    '/c4:/web/cache',
  ]);
  assert.deepEqual(normalizeLinks(null, '/web'), []);
  assert.throws(() => normalizeLinks([':x'], '/web'), ApiError);
  const l = parseLink('/c1:/web/my-db');
  assert.deepEqual(linkHostNames(l, 'c1host'), ['my-db', 'c1host', 'c1']);
  assert.deepEqual(linkEnv(l, '172.17.0.5', ['PATH=/bin', 'HOME=/root', 'FOO=a=b'], ['8080/tcp', '53/udp']), [
    'MY_DB_PORT=udp://172.17.0.5:53',
    'MY_DB_PORT_53_UDP=udp://172.17.0.5:53',
    'MY_DB_PORT_53_UDP_ADDR=172.17.0.5',
    'MY_DB_PORT_53_UDP_PORT=53',
    'MY_DB_PORT_53_UDP_PROTO=udp',
    'MY_DB_PORT_8080_TCP=tcp://172.17.0.5:8080',
    'MY_DB_PORT_8080_TCP_ADDR=172.17.0.5',
    'MY_DB_PORT_8080_TCP_PORT=8080',
    'MY_DB_PORT_8080_TCP_PROTO=tcp',
    'MY_DB_NAME=/web/my-db',
    'MY_DB_ENV_FOO=a=b',
  ]);
});

test('/etc/hosts: defaults, extra lines, then the own line with domain and aliases', () => {
  const text = hostsContent('web', {
    ip: '10.0.1.5',
    domainname: 'example.org',
    aliases: ['api', 'web'],
    extra: extraHostsEntries(['db:10.9.8.7', 'v6:fd00::1', 'bad']),
  });
  const lines = text.trim().split('\n');
  assert.equal(lines[0], '127.0.0.1\tlocalhost');
  assert.deepEqual(lines.slice(-3), ['10.9.8.7\tdb', 'fd00::1\tv6', '10.0.1.5\tweb.example.org web api']);
  assert.ok(!hostsContent('web').includes('web'), 'no address, no own line');
});

test('host config at create: log driver default and refusals, runtime, realtime, storage options', () => {
  assert.deepEqual(normalizeLogConfig(undefined), { Type: 'json-file', Config: {} });
  assert.deepEqual(normalizeLogConfig({ Type: '', Config: { 'max-size': '1m' } }), {
    Type: 'json-file',
    Config: { 'max-size': '1m' },
  });
  assert.deepEqual(normalizeLogConfig({ Type: 'none', Config: null }), { Type: 'none', Config: {} });
  assert.throws(
    () => normalizeLogConfig({ Type: 'syslog' }),
    (e: ApiError) =>
      e.status === 400 && e.message === 'error looking up logging plugin syslog: plugin "syslog" not found',
  );
  const h = verifyHostConfig({ NetworkMode: 'default' });
  assert.equal(h.Runtime, 'runc');
  assert.deepEqual(h.LogConfig, { Type: 'json-file', Config: {} });
  assert.throws(
    () => verifyHostConfig({ Runtime: 'crun' }),
    (e: ApiError) => e.status === 400 && e.message === 'Unknown runtime specified crun',
  );
  assert.throws(
    () => verifyHostConfig({ CpuRealtimePeriod: 100, CpuRealtimeRuntime: 200 }),
    (e: ApiError) => e.status === 400,
  );
  assert.throws(
    () => verifyHostConfig({ StorageOpt: { size: '1G' } }),
    (e: ApiError) => e.status === 500 && /pquota/.test(e.message),
  );
  assert.doesNotThrow(() => verifyHostConfig({ StorageOpt: {} }));
  assert.throws(
    () => verifyHostConfig({ GroupAdd: [1000] as unknown as string[] }),
    (e: ApiError) => e.status === 400,
  );
});
