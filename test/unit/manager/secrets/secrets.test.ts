import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Config, Secret, Task, TaskStatus } from '../../../../src/cluster/types.js';
import type { AgentLink } from '../../../../src/agent/link.js';
import { Worker } from '../../../../src/agent/worker/worker.js';
import { status } from '../../../../src/cluster/task-state.js';
import { createLogger } from '../../../../src/util/log.js';
import {
  checkNotInUse,
  checkReferencesExist,
  validateFileSpec,
  validateReferences,
} from '../../../../src/manager/secrets/spec.js';
import { validateSpec } from '../../../../src/manager/orchestrator/service-spec.js';
import { openSecretData, sealSecretData } from '../../../../src/manager/secrets/seal.js';
import { assignedFiles } from '../../../../src/manager/dispatcher/task-files.js';
import { taskFiles, type TaskFile } from '../../../../src/agent/executor/task-files.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeService, makeTask, until } from '../../../helpers/swarm-fixtures.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const rpc = (code: string, desc: string) => ({ message: `rpc error: code = ${code} desc = ${desc}` });
const now = new Date().toISOString();
const secret = (id: string, name: string, data: string): Secret => ({
  ID: id,
  Version: { Index: 0 },
  CreatedAt: now,
  UpdatedAt: now,
  Spec: { Name: name, Data: data },
});
const config = (id: string, name: string, data: string): Config => ({
  ID: id,
  Version: { Index: 0 },
  CreatedAt: now,
  UpdatedAt: now,
  Spec: { Name: name, Data: data },
});
const file = (Name: string, Mode = 0o444) => ({ Name, UID: '0', GID: '0', Mode });

test("secret and config names follow swarmkit's rule", () => {
  const bad = rpc(
    'InvalidArgument',
    'invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]',
  );
  assert.throws(() => validateFileSpec('secret', { Data: b64('x') }), rpc('InvalidArgument', 'name must be provided'));
  for (const n of ['-a', 'a-', 'a b', 'a/b', 'x'.repeat(65), '.x'])
    assert.throws(() => validateFileSpec('secret', { Name: n, Data: b64('x') }), bad, n);
  for (const n of ['a', 'db.password', 'A_b-c.9', 'x'.repeat(64)])
    validateFileSpec('secret', { Name: n, Data: b64('x') });
});

test('secrets hold 1 byte to under 500 KiB, configs under 1000 KiB', () => {
  assert.throws(
    () => validateFileSpec('secret', { Name: 's', Data: '' }),
    rpc('InvalidArgument', 'secret data must be larger than 0 and less than 512000 bytes'),
  );
  assert.throws(
    () => validateFileSpec('secret', { Name: 's', Data: b64(Buffer.alloc(512000)) }),
    rpc('InvalidArgument', 'secret data must be larger than 0 and less than 512000 bytes'),
  );
  validateFileSpec('secret', { Name: 's', Data: b64(Buffer.alloc(511999)) });
  validateFileSpec('config', { Name: 'c', Data: b64(Buffer.alloc(600 * 1024)) });
  assert.throws(
    () => validateFileSpec('config', { Name: 'c', Data: b64(Buffer.alloc(1024000)) }),
    rpc('InvalidArgument', 'config data must be larger than 0 and less than 1024000 bytes'),
  );
});

test("data that is not base64 is a 400, as Go's JSON decoding of []byte answers", () => {
  assert.throws(() => validateFileSpec('secret', { Name: 's', Data: 'ab!c' }), {
    status: 400,
    message: 'invalid JSON: illegal base64 data at input byte 2',
  });
  assert.throws(() => validateFileSpec('secret', { Name: 's', Data: 'abcde' }), {
    status: 400,
    message: 'invalid JSON: illegal base64 data at input byte 4',
  });
  validateFileSpec('secret', { Name: 's', Data: 'YQ==' });
});

test('service references: well formed, distinct targets', () => {
  assert.throws(
    () => validateReferences({ Image: 'x', Secrets: [{ SecretID: '', SecretName: 'a', File: file('a') }] }),
    rpc('InvalidArgument', 'malformed secret reference'),
  );
  assert.throws(
    () => validateReferences({ Image: 'x', Secrets: [{ SecretID: 'i', SecretName: 'a' }] }),
    rpc('InvalidArgument', 'malformed secret reference, no target provided'),
  );
  assert.throws(
    () => validateReferences({ Image: 'x', Secrets: [{ SecretID: 'i', SecretName: 'a', File: file('') }] }),
    rpc('InvalidArgument', 'malformed file secret reference, invalid target file name provided'),
  );
  assert.throws(
    () =>
      validateReferences({
        Image: 'x',
        Secrets: [
          { SecretID: 'i', SecretName: 'a', File: file('t') },
          { SecretID: 'j', SecretName: 'b', File: file('t') },
        ],
      }),
    rpc('InvalidArgument', "secret references 'a' and 'b' have a conflicting target: 't'"),
  );
  assert.throws(
    () => validateReferences({ Image: 'x', Configs: [{ ConfigID: 'i', ConfigName: '', File: file('a') }] }),
    rpc('InvalidArgument', 'malformed config reference'),
  );
  // validateSpec runs them (create and update both call it).
  assert.throws(
    () =>
      validateSpec({
        Name: 's',
        TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: [{ SecretID: 'i', SecretName: 'a' }] } },
      }),
    rpc('InvalidArgument', 'malformed secret reference, no target provided'),
  );
});

test('references to unknown secrets or configs are refused, by name', async () => {
  const store = new MemoryStore();
  await store.commit([
    { kind: 'secrets', op: 'create', object: secret('s1', 'one', b64('x')) },
    { kind: 'configs', op: 'create', object: config('c1', 'cfg', b64('y')) },
  ]);
  const spec = (secrets: [string, string][], configs: [string, string][] = []) =>
    makeService('svc', {
      TaskTemplate: {
        ContainerSpec: {
          Image: 'x',
          Secrets: secrets.map(([SecretID, SecretName]) => ({ SecretID, SecretName, File: file(SecretName) })),
          Configs: configs.map(([ConfigID, ConfigName]) => ({ ConfigID, ConfigName, File: file(ConfigName) })),
        },
      },
    }).Spec;
  checkReferencesExist(spec([['s1', 'one']], [['c1', 'cfg']]), store);
  assert.throws(
    () => checkReferencesExist(spec([['nope', 'ghost']]), store),
    rpc('InvalidArgument', 'secret not found: ghost'),
  );
  assert.throws(
    () =>
      checkReferencesExist(
        spec([
          ['nope', 'a'],
          ['s1', 'renamed'],
        ]),
        store,
      ),
    rpc('InvalidArgument', 'secrets not found: a, renamed'),
  );
  assert.throws(
    () => checkReferencesExist(spec([], [['x', 'gone']]), store),
    rpc('InvalidArgument', 'config not found: gone'),
  );
});

test('a secret in use cannot be removed', () => {
  const s = secret('s1', 'db', '');
  const user = (name: string) =>
    makeService(name, {
      TaskTemplate: {
        ContainerSpec: { Image: 'x', Secrets: [{ SecretID: 's1', SecretName: 'db', File: file('db') }] },
      },
    });
  checkNotInUse('secret', s, [makeService('other')]);
  assert.throws(
    () => checkNotInUse('secret', s, [user('web')]),
    rpc('InvalidArgument', "secret 'db' is in use by the following service: web"),
  );
  assert.throws(
    () => checkNotInUse('secret', s, [user('web'), user('api')]),
    rpc('InvalidArgument', "secret 'db' is in use by the following services: web, api"),
  );
});

test('sealed secret data holds no plaintext and opens with the key only', () => {
  const dek = crypto.randomBytes(32);
  const plain = 'hunter2-very-secret';
  const stored = sealSecretData(dek, b64(plain));
  assert.ok(!stored.includes(plain) && !stored.includes(b64(plain)));
  assert.equal(openSecretData(dek, stored).toString(), plain);
  assert.throws(() => openSecretData(crypto.randomBytes(32), stored));
  // A swarm from before the DEK: base64 as given.
  assert.equal(openSecretData(undefined, sealSecretData(undefined, b64(plain))).toString(), plain);
});

test('the dispatcher sends a node only the secrets and configs its tasks reference', async () => {
  const dek = crypto.randomBytes(32);
  const store = new MemoryStore();
  await store.commit([
    { kind: 'secrets', op: 'create', object: secret('s1', 'mine', sealSecretData(dek, b64('p1'))) },
    { kind: 'secrets', op: 'create', object: secret('s2', 'theirs', sealSecretData(dek, b64('p2'))) },
    { kind: 'configs', op: 'create', object: config('c1', 'cfg', b64('conf')) },
  ]);
  const svc = makeService('web', {
    TaskTemplate: {
      ContainerSpec: {
        Image: 'x',
        Secrets: [{ SecretID: 's1', SecretName: 'mine', File: file('mine') }],
        Configs: [{ ConfigID: 'c1', ConfigName: 'cfg', File: file('/etc/cfg') }],
      },
    },
  });
  const out = assignedFiles(store, dek, [makeTask(svc)]);
  assert.deepEqual(out.secrets, [{ ID: 's1', Name: 'mine', Data: b64('p1') }]);
  assert.deepEqual(out.configs, [{ ID: 'c1', Name: 'cfg', Data: b64('conf') }]);
  assert.deepEqual(assignedFiles(store, dek, [makeTask(makeService('plain'))]), {});
});

test('the agent places secrets under /run/secrets and configs at their target, with owner and mode', () => {
  const svc = makeService('web', {
    TaskTemplate: {
      ContainerSpec: {
        Image: 'x',
        Secrets: [{ SecretID: 's1', SecretName: 'db', File: { Name: 'pw', UID: '1000', GID: '100', Mode: 0o400 } }],
        Configs: [
          { ConfigID: 'c1', ConfigName: 'cfg', File: file('cfg') },
          { ConfigID: 'c1', ConfigName: 'cfg', File: file('/etc/app.conf', 0o440) },
        ],
      },
    },
  });
  const files = taskFiles(makeTask(svc), {
    secrets: [{ ID: 's1', Name: 'db', Data: b64('p') }],
    configs: [{ ID: 'c1', Name: 'cfg', Data: b64('c') }],
  });
  assert.deepEqual(
    files.map((f) => [f.kind, f.target, f.data.toString(), f.uid, f.gid, f.mode]),
    [
      ['secret', '/run/secrets/pw', 'p', 1000, 100, 0o400],
      ['config', '/cfg', 'c', 0, 0, 0o444],
      ['config', '/etc/app.conf', 'c', 0, 0, 0o440],
    ],
  );
  assert.throws(() => taskFiles(makeTask(svc), { configs: [] }), { message: 'secret db not found' });
});

test('the worker hands a task the files that came with its assignment; a missing one rejects the task', async () => {
  type Files = TaskFile[];
  const prepared = new Map<string, Files>();
  const containers: { containerId: string; taskId: string; running: boolean }[] = [];
  const exec = {
    list: () => containers,
    find: (id: string) => containers.find((c) => c.taskId === id),
    async prepare(task: Task, _node: string, files: Files = []) {
      prepared.set(task.ID, files);
      const c = { containerId: `c-${task.ID}`, taskId: task.ID, running: false };
      containers.push(c);
      return c;
    },
    async start(id: string) {
      const c = containers.find((x) => x.containerId === id)!;
      c.running = true;
      return c;
    },
    async stop() {},
    async remove() {},
    onExit: () => () => {},
  };
  const reports: { taskId: string; status: TaskStatus }[] = [];
  let push: Parameters<AgentLink['onAssignments']>[0] = () => {};
  const w = new Worker(
    {
      onAssignments: (fn) => {
        push = fn;
      },
      reportStatus: async (u) => {
        reports.push(...u);
      },
    },
    exec,
    () => 'node1',
    createLogger('test', 'silent'),
  );
  w.start();
  const ref = { SecretID: 's1', SecretName: 'db', File: file('db') };
  const svc = makeService('web', { TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: [ref] } } });
  const good = {
    ...makeTask(svc),
    NodeID: 'node1',
    DesiredState: 'running' as const,
    Status: status('assigned', 'assigned'),
  };
  const bad = {
    ...makeTask(
      makeService('api', {
        TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: [{ ...ref, SecretID: 's9', SecretName: 'gone' }] } },
      }),
    ),
    NodeID: 'node1',
    DesiredState: 'running' as const,
    Status: status('assigned', 'assigned'),
  };
  push([good, bad], { secrets: [{ ID: 's1', Name: 'db', Data: b64('pw') }] });
  await until(
    'good running, bad rejected',
    () =>
      reports.some((r) => r.taskId === good.ID && r.status.State === 'running') &&
      reports.some((r) => r.taskId === bad.ID && r.status.State === 'rejected'),
  );
  assert.equal(prepared.get(good.ID)?.[0].data.toString(), 'pw');
  assert.equal(prepared.get(good.ID)?.[0].target, '/run/secrets/db');
  assert.equal(
    reports.find((r) => r.taskId === bad.ID && r.status.State === 'rejected')?.status.Err,
    'secret gone not found',
  );
  w.stop();
});
