// A registry on a non-loopback address speaks plain HTTP: only a daemon started with
// --insecure-registry HOST:PORT reaches it; others try HTTPS and get Docker's error. Needs root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/util/run.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createNetns, deleteNetns } from '../helpers/netns.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushMicro } from '../helpers/micro.js';

const ADDR = '10.231.9.1';
const R = `${ADDR}:5000`;
let ns: string;
let reg: TestRegistry;
let trusting: TestDaemon;
let strict: TestDaemon;

before(async () => {
  ns = await createNetns('shtinsec');
  await run('ip', ['-n', ns, 'link', 'add', 'r0', 'type', 'veth', 'peer', 'name', 'r1']);
  await run('ip', ['-n', ns, 'addr', 'add', `${ADDR}/24`, 'dev', 'r0']);
  await run('ip', ['-n', ns, 'link', 'set', 'r0', 'up']);
  await run('ip', ['-n', ns, 'link', 'set', 'r1', 'up']);
  reg = await startRegistry(ns, { addr: R });
  trusting = await startDaemon({ prefix: 'shtinsec1', ns, insecureRegistries: [R] });
  strict = await startDaemon({ prefix: 'shtinsec2', ns });
});
after(async () => {
  await trusting?.destroy();
  await strict?.destroy();
  await reg?.stop();
  if (ns) await deleteNetns(ns);
});

test('--insecure-registry HOST:PORT: push and pull over plain HTTP', async () => {
  const ref = await pushMicro(trusting, R);
  await trusting.docker(['rmi', ref]);
  const r = await trusting.docker(['pull', ref]);
  assert.match(r.stdout, /Status: Downloaded newer image/);
});

test('without it the daemon speaks HTTPS and says so', async () => {
  const r = await strict.docker(['pull', `${R}/micro:1.0.0`], { allowFail: true });
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    new RegExp(
      `Get "https://${R.replace(/\./g, '\\.')}/v2/micro/manifests/1\\.0\\.0": http: server gave HTTP response to HTTPS client`,
    ),
  );
});
