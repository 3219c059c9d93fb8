import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { ServiceSpec, Task } from '../../../../src/cluster/types.js';
import { createService, getService, updateService } from '../../../../src/manager/control/services.js';
import {
  openRegistryAuth,
  registryAuthOf,
  withoutRegistryAuth,
} from '../../../../src/manager/secrets/registry-auth.js';
import { withRegistryCredentials } from '../../../../src/manager/dispatcher/task-credentials.js';
import { isTaskDirty, newTask } from '../../../../src/manager/orchestrator/task.js';
import { MemoryStore } from '../../../helpers/memory-store.js';

/** A service's registry credentials (`--with-registry-auth`) on the in-memory store, without HTTP. */

const dek = crypto.randomBytes(32);
const header = (user: string) =>
  Buffer.from(JSON.stringify({ username: user, password: 'pw', serveraddress: 'reg:5000' })).toString('base64url');
const spec = (image = 'reg:5000/app:1', over: Partial<ServiceSpec> = {}): ServiceSpec => ({
  Name: 'app',
  TaskTemplate: { ContainerSpec: { Image: image } },
  ...over,
});
const control = (store: MemoryStore) => ({ store, allocationWaitMs: 0, dek });
const opened = (s: ServiceSpec | undefined) => {
  const sealed = registryAuthOf(s);
  return sealed && openRegistryAuth(dek, sealed);
};

test('create keeps the header sealed with the spec; a spec cannot bring credentials of its own', async () => {
  const store = new MemoryStore();
  await createService(control(store), spec(), header('alice'));
  const s = getService(store, 'app');
  const sealed = registryAuthOf(s.Spec)!;
  assert.ok(!sealed.includes(header('alice')), 'stored in the clear');
  assert.equal(opened(s.Spec), header('alice'));
  assert.equal(withoutRegistryAuth(s.Spec).TaskTemplate.ContainerSpec?.PullOptions, undefined);

  const sneaky = spec('reg:5000/app:1', { Name: 'sneaky' });
  sneaky.TaskTemplate.ContainerSpec!.PullOptions = { RegistryAuth: header('mallory') };
  await createService(control(store), sneaky);
  assert.equal(registryAuthOf(getService(store, 'sneaky').Spec), undefined);
});

test('update: a new header replaces them; without one the current spec keeps its own, or the previous one when asked', async () => {
  const store = new MemoryStore();
  await createService(control(store), spec(), header('alice'));
  const version = () => getService(store, 'app').Version.Index;
  await updateService(control(store), 'app', version(), spec('reg:5000/app:2'));
  assert.equal(opened(getService(store, 'app').Spec), header('alice'));
  await updateService(control(store), 'app', version(), spec('reg:5000/app:3'), { registryAuth: header('bob') });
  assert.equal(opened(getService(store, 'app').Spec), header('bob'));
  await updateService(control(store), 'app', version(), spec('reg:5000/app:4'), { registryAuthFrom: 'previous-spec' });
  assert.equal(opened(getService(store, 'app').Spec), header('alice'));
  await assert.rejects(updateService(control(store), 'app', version(), spec(), { registryAuthFrom: 'other' }), {
    status: 500,
    message: 'unsupported registryAuthFrom value',
  });
  // Rollback: the previous spec comes back with its own credentials.
  await updateService(control(store), 'app', version(), spec(), { rollback: 'previous' });
  assert.equal(opened(getService(store, 'app').Spec), header('bob'));
});

test('tasks never store the credentials, which alone never make a task dirty; only their node is sent them, opened', async () => {
  const store = new MemoryStore();
  const svc = await createService(control(store), spec(), header('alice'));
  const t = newTask(getService(store, svc.ID), 1, 'node-1');
  assert.equal(t.Spec.ContainerSpec?.PullOptions, undefined);
  assert.equal(isTaskDirty({ ...getService(store, svc.ID), SpecVersion: undefined }, t), false);
  await updateService(control(store), 'app', getService(store, svc.ID).Version.Index, spec(), {
    registryAuth: header('bob'),
  });
  assert.equal(isTaskDirty({ ...getService(store, svc.ID), SpecVersion: undefined }, t), false);

  const ended: Task = { ...t, ID: 'ended', DesiredState: 'shutdown' };
  const mayRun = (x: Task) => x.DesiredState === 'running';
  const [sent, sentEnded] = withRegistryCredentials(store, dek, [t, ended], mayRun);
  assert.equal(sent.Spec.ContainerSpec?.PullOptions?.RegistryAuth, header('bob'));
  assert.equal(sentEnded.Spec.ContainerSpec?.PullOptions, undefined);
  // A key that cannot open them: the task goes without, the stream does not fail.
  const [without] = withRegistryCredentials(store, crypto.randomBytes(32), [t], mayRun);
  assert.equal(without.Spec.ContainerSpec?.PullOptions, undefined);
});
