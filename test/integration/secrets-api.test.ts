import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiServer } from '../../src/api/server.js';
import { notASwarmManager, serviceRoutes } from '../../src/api/routes/services.js';
import { secretRoutes } from '../../src/api/routes/secrets.js';
import { openSecretData } from '../../src/manager/secrets/seal.js';
import { createLogger } from '../../src/util/log.js';
import { MemoryStore } from '../helpers/memory-store.js';
import { cliRouter, dockerAt } from '../helpers/cli-api.js';
import { apiJson } from '../helpers/engine-api.js';

/**
 * `docker secret` and `docker config` with the real docker CLI against the API on an in-memory
 * store, sealing with a data-encryption key as a manager does (test/cluster/secrets.test.ts
 * runs them on a real swarm, down to the task containers). Needs the docker CLI, not root.
 */

const log = createLogger('test', 'silent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-secrets-'));
const socket = path.join(dir, 'api.sock');
const store = new MemoryStore();
const dek = crypto.randomBytes(32);
let manager = true;
let server: ApiServer;

const docker = (args: string[], input?: string) => dockerAt(socket, args, input);

/** A raw API call, for what the CLI checks before it asks. */
const api = (method: string, p: string, body?: unknown) => apiJson(socket, method, `/v1.41${p}`, body);

before(async () => {
  const router = cliRouter();
  const access = () => (manager ? store : notASwarmManager());
  serviceRoutes(router, access);
  secretRoutes(router, () => ({ store: access(), dek }));
  server = new ApiServer(router, log);
  await server.listen(`unix://${socket}`);
});

after(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('secret create from a file and from stdin; a duplicate name is a 409', async () => {
  const file = path.join(dir, 'pw.txt');
  fs.writeFileSync(file, 'hunter2-from-file');
  let r = await docker(['secret', 'create', '--label', 'tier=db', 'db_pass', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^[a-z0-9]{25}$/);
  r = await docker(['secret', 'create', 'api_key', '-'], 'key-from-stdin');
  assert.equal(r.code, 0, r.stderr);
  r = await docker(['secret', 'create', 'db_pass', '-'], 'again');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /Error response from daemon: rpc error: code = AlreadyExists desc = secret db_pass already exists/,
  );
  const dup = await api('POST', '/secrets/create', { Name: 'db_pass', Data: Buffer.from('x').toString('base64') });
  assert.equal(dup.status, 409);
});

test("bad names and sizes get swarmkit's messages", async () => {
  let r = await docker(['secret', 'create', 'bad.', '-'], 'x');
  assert.match(r.stderr, /invalid name, only 64 \[a-zA-Z0-9-_.\] characters allowed/);
  const bad = await api('POST', '/secrets/create', { Name: 'bad name', Data: Buffer.from('x').toString('base64') });
  assert.equal(bad.status, 400);
  assert.equal(
    bad.body.message,
    'rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]',
  );
  const big = path.join(dir, 'big');
  fs.writeFileSync(big, Buffer.alloc(500 * 1024, 'a'));
  r = await docker(['secret', 'create', 'big', big]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /secret data must be larger than 0 and less than 512000 bytes/);
  fs.writeFileSync(big, Buffer.alloc(900 * 1024, 'a'));
  r = await docker(['config', 'create', 'big', big]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await docker(['config', 'rm', 'big'])).code, 0);
  assert.equal(store.list('secrets').length, 2, 'nothing half-made');
});

test("ls with filters; inspect never shows a secret's data; the store holds it sealed", async () => {
  let r = await docker(['secret', 'ls', '--format', '{{.Name}}']);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['api_key', 'db_pass']);
  r = await docker(['secret', 'ls', '--filter', 'label=tier=db', '--format', '{{.Name}}']);
  assert.equal(r.stdout.trim(), 'db_pass');
  r = await docker(['secret', 'ls', '--filter', 'name=api', '--format', '{{.Name}}']);
  assert.equal(r.stdout.trim(), 'api_key');
  const id = (await docker(['secret', 'inspect', 'db_pass', '--format', '{{.ID}}'])).stdout.trim();
  r = await docker(['secret', 'ls', '--filter', `id=${id.slice(0, 8)}`, '--format', '{{.Name}}']);
  assert.equal(r.stdout.trim(), 'db_pass');
  r = await docker(['secret', 'inspect', id.slice(0, 6)]);
  assert.equal(r.code, 0, r.stderr);
  const [obj] = JSON.parse(r.stdout);
  assert.equal(obj.Spec.Name, 'db_pass');
  assert.deepEqual(obj.Spec.Labels, { tier: 'db' });
  assert.equal(obj.Spec.Data, undefined);
  assert.ok(!r.stdout.includes(Buffer.from('hunter2-from-file').toString('base64')));
  r = await docker(['secret', 'inspect', '--pretty', 'db_pass']);
  assert.match(r.stdout, /Name:\s+db_pass/);
  assert.match(r.stdout, /tier=db/);
  const stored = store.get('secrets', id)!.Spec.Data!;
  assert.ok(!stored.includes('hunter2') && !stored.includes(Buffer.from('hunter2-from-file').toString('base64')));
  assert.equal(openSecretData(dek, stored).toString(), 'hunter2-from-file');
  r = await docker(['secret', 'inspect', 'nope']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /secret nope not found/i);
});

test('update changes labels only', async () => {
  const s = (await api('GET', '/secrets/db_pass')).body as { ID: string; Version: { Index: number } };
  const noVersion = await api('POST', `/secrets/${s.ID}/update`, { Name: 'db_pass' });
  assert.deepEqual([noVersion.status, noVersion.body.message], [400, 'invalid secret version']);
  let r = await api('POST', `/secrets/${s.ID}/update?version=${s.Version.Index}`, {
    Name: 'db_pass',
    Data: Buffer.from('other').toString('base64'),
    Labels: {},
  });
  assert.equal(r.status, 400);
  assert.equal(r.body.message, 'rpc error: code = InvalidArgument desc = only updates to Labels are allowed');
  r = await api('POST', `/secrets/${s.ID}/update?version=${s.Version.Index}`, {
    Name: 'db_pass',
    Labels: { tier: 'cache' },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(store.get('secrets', s.ID)!.Spec.Labels, { tier: 'cache' });
  assert.equal(openSecretData(dek, store.get('secrets', s.ID)!.Spec.Data!).toString(), 'hunter2-from-file');
});

test('configs: create, inspect shows the data, --pretty prints it', async () => {
  let r = await docker(['config', 'create', 'app.conf', '-'], 'listen=8080\n');
  assert.equal(r.code, 0, r.stderr);
  r = await docker(['config', 'inspect', 'app.conf', '--format', '{{json .Spec.Data}}']);
  assert.equal(JSON.parse(r.stdout), Buffer.from('listen=8080\n').toString('base64'));
  r = await docker(['config', 'inspect', '--pretty', 'app.conf']);
  assert.match(r.stdout, /listen=8080/);
  r = await docker(['config', 'ls', '--format', '{{.Name}}']);
  assert.equal(r.stdout.trim(), 'app.conf');
});

test('services reference secrets and configs; unknown ones are refused; in use cannot be removed', async () => {
  let r = await docker([
    'service',
    'create',
    '--detach',
    '--name',
    'web',
    '--secret',
    'source=db_pass,target=pw,uid=1000,gid=100,mode=0400',
    '--config',
    'app.conf',
    'busybox',
    'top',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const c = store.list('services')[0].Spec.TaskTemplate.ContainerSpec!;
  const sid = store.list('secrets').find((s) => s.Spec.Name === 'db_pass')!.ID;
  assert.deepEqual(c.Secrets, [
    { SecretID: sid, SecretName: 'db_pass', File: { Name: 'pw', UID: '1000', GID: '100', Mode: 0o400 } },
  ]);
  assert.equal(c.Configs?.[0].ConfigName, 'app.conf');
  assert.equal(c.Configs?.[0].File?.Name, 'app.conf');

  r = await docker(['service', 'create', '--detach', '--name', 'ghost', '--secret', 'ghost', 'busybox', 'top']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /secret not found: ghost/);
  const direct = await api('POST', '/services/create', {
    Name: 'ghost',
    TaskTemplate: {
      ContainerSpec: {
        Image: 'busybox',
        Secrets: [
          { SecretID: 'x'.repeat(25), SecretName: 'ghost', File: { Name: 'ghost', UID: '0', GID: '0', Mode: 292 } },
        ],
      },
    },
  });
  assert.equal(direct.status, 400);
  assert.equal(direct.body.message, 'rpc error: code = InvalidArgument desc = secret not found: ghost');
  assert.equal(store.list('services').length, 1);

  r = await docker(['secret', 'rm', 'db_pass']);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /rpc error: code = InvalidArgument desc = secret 'db_pass' is in use by the following service: web/,
  );
  r = await docker(['config', 'rm', 'app.conf']);
  assert.match(r.stderr, /config 'app.conf' is in use by the following service: web/);

  r = await docker(['service', 'update', '--detach', '--secret-rm', 'db_pass', '--config-rm', 'app.conf', 'web']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await docker(['secret', 'rm', 'db_pass'])).code, 0);
  assert.equal((await docker(['config', 'rm', 'app.conf'])).code, 0);
  r = await docker(['secret', 'ls', '--format', '{{.Name}}']);
  assert.equal(r.stdout.trim(), 'api_key');
  r = await docker(['service', 'update', '--detach', '--secret-add', 'api_key', 'web']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(store.list('services')[0].Spec.TaskTemplate.ContainerSpec!.Secrets?.[0].SecretName, 'api_key');
  const web = store.list('services')[0];
  const ghostly = structuredClone(web.Spec);
  ghostly.TaskTemplate.ContainerSpec!.Secrets!.push({
    SecretID: 'y'.repeat(25),
    SecretName: 'ghost',
    File: { Name: 'ghost', UID: '0', GID: '0', Mode: 292 },
  });
  const upd = await api('POST', `/services/${web.ID}/update?version=${web.Version.Index}`, ghostly);
  assert.deepEqual(
    [upd.status, upd.body.message],
    [400, 'rpc error: code = InvalidArgument desc = secret not found: ghost'],
  );
});

test('a node that is not a manager answers 503', async () => {
  manager = false;
  try {
    const r = await docker(['secret', 'ls']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /This node is not a swarm manager/);
    assert.equal((await api('GET', '/configs')).status, 503);
  } finally {
    manager = true;
  }
});
