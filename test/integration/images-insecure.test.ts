// A registry on a non-loopback address speaks plain HTTP: only a daemon started with
// --insecure-registry HOST:PORT reaches it; others try HTTPS and get Docker's error. Needs root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/run.js';
import { startDaemon, TEST_ROOT, type TestDaemon } from '../helpers/daemon.js';
import { createNetns, deleteNetns, inNetns, uniqueName } from '../helpers/netns.js';
import { startProcess, stopProcess, waitFor } from '../helpers/process.js';
import { pushMicro } from '../helpers/micro.js';

const ADDR = '10.231.9.1';
const R = `${ADDR}:5000`;
let ns: string;
let dir: string;
let registryPid: number | undefined;
let trusting: TestDaemon;
let strict: TestDaemon;

before(async () => {
  ns = await createNetns('shtinsec');
  await run('ip', ['-n', ns, 'link', 'add', 'r0', 'type', 'veth', 'peer', 'name', 'r1']);
  await run('ip', ['-n', ns, 'addr', 'add', `${ADDR}/24`, 'dev', 'r0']);
  await run('ip', ['-n', ns, 'link', 'set', 'r0', 'up']);
  await run('ip', ['-n', ns, 'link', 'set', 'r1', 'up']);
  dir = path.join(TEST_ROOT, uniqueName('shtinsec'));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'registry.yml'), ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${dir}/data`, 'http:', `  addr: ${R}`, ''].join('\n'));
  registryPid = startProcess('nsenter', [`--net=/run/netns/${ns}`, '--', 'docker-registry', 'serve', path.join(dir, 'registry.yml')], path.join(dir, 'registry.log')).pid;
  await waitFor('the registry', async () => (await inNetns(ns, 'curl', ['-sf', `http://${R}/v2/`], { allowFail: true })).code === 0);
  trusting = await startDaemon({ prefix: 'shtinsec1', ns, insecureRegistries: [R] });
  strict = await startDaemon({ prefix: 'shtinsec2', ns });
});
after(async () => {
  await trusting?.destroy();
  await strict?.destroy();
  await stopProcess(registryPid);
  if (ns) await deleteNetns(ns);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
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
  assert.match(r.stderr, new RegExp(`Get "https://${R.replace(/\./g, '\\.')}/v2/micro/manifests/1\\.0\\.0": http: server gave HTTP response to HTTPS client`));
});
