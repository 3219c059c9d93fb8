import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service, Task, TaskState } from '../../../../src/cluster/types.js';
import { mayHavePrivateImage } from '../../../../src/manager/dispatcher/image-access.js';

const ID = `sha256:${'a'.repeat(64)}`;
const MANIFEST = `sha256:${'b'.repeat(64)}`;
const REFS = ['reg:5000/app:1', `reg:5000/app@${MANIFEST}`];

const service = (id: string, auth: boolean): Service =>
  ({
    ID: id,
    Spec: {
      Name: id,
      TaskTemplate: {
        ContainerSpec: { Image: 'reg:5000/app:1', ...(auth ? { PullOptions: { RegistryAuth: 'sealed' } } : {}) },
      },
    },
  }) as Service;
const task = (node: string, svc: string, image: string, state: TaskState = 'running', desired: TaskState = 'running') =>
  ({
    ID: `${node}-${svc}`,
    NodeID: node,
    ServiceID: svc,
    DesiredState: desired,
    Status: { State: state },
    Spec: { ContainerSpec: { Image: image } },
  }) as Task;
const services = new Map([
  ['with', service('with', true)],
  ['without', service('without', false)],
]);
const may = (tasks: Task[], node = 'n1') => mayHavePrivateImage(tasks, (id) => services.get(id), node, ID, REFS);

test('a node may have a private image for a task of its own, to run, of that image, given credentials', () => {
  const pinned = `reg:5000/app:1@${MANIFEST}`;
  assert.ok(may([task('n1', 'with', pinned)]));
  assert.ok(may([task('n1', 'with', 'reg:5000/app:1', 'preparing')]));
  assert.ok(may([task('n1', 'with', `other:1@${ID}`, 'assigned')]));
  // Another node's task, an ended or ending one, another image, a service without credentials: no.
  assert.ok(!may([task('n2', 'with', pinned)]));
  assert.ok(!may([task('n1', 'with', pinned, 'failed')]));
  assert.ok(!may([task('n1', 'with', pinned, 'running', 'shutdown')]));
  assert.ok(!may([task('n1', 'with', 'reg:5000/app:2')]));
  assert.ok(!may([task('n1', 'without', pinned)]));
  assert.ok(!may([task('n1', 'gone', pinned)]));
  assert.ok(!may([]));
});
