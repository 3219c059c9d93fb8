import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '../../../../src/cluster/types.js';
import { SharedTaskParts, deepFreeze } from '../../../../src/manager/store/shared-parts.js';

/** A task as the store's watch decodes it: fresh objects from JSON, not frozen yet. */
function decoded(id: string, image: string, service = 'svc1', node = 'node1'): Task {
  return JSON.parse(
    JSON.stringify({
      ID: id,
      Version: { Index: 1 },
      Spec: { ContainerSpec: { Image: image } },
      ServiceID: service,
      ServiceAnnotations: { Name: 'web' },
      SpecVersion: { Index: 7 },
      Status: { Timestamp: '2026-01-01T00:00:00.000Z', State: 'running', Message: 'started' },
      DesiredState: 'running',
      Slot: 1,
      NodeID: node,
    }),
  ) as Task;
}

test('tasks with equal specs share one frozen spec; different ones keep their own', () => {
  const parts = new SharedTaskParts();
  const a = decoded('a', 'nginx:1');
  const b = decoded('b', 'nginx:1');
  const c = decoded('c', 'nginx:2');
  for (const t of [a, b, c]) {
    parts.share(t);
    deepFreeze(t);
  }
  assert.equal(a.Spec, b.Spec);
  assert.equal(a.ServiceAnnotations, b.ServiceAnnotations);
  assert.equal(a.SpecVersion, b.SpecVersion);
  assert.notEqual(a.Spec, c.Spec);
  assert.equal(c.Spec.ContainerSpec?.Image, 'nginx:2');
  assert.deepEqual(b.Spec, { ContainerSpec: { Image: 'nginx:1' } });
  // Shared and frozen: a missed copy throws instead of changing every task's spec.
  assert.ok(Object.isFrozen(a.Spec.ContainerSpec));
  assert.throws(() => {
    (b.Spec.ContainerSpec as { Image: string }).Image = 'x';
  }, TypeError);
  assert.equal(a.Spec.ContainerSpec?.Image, 'nginx:1');
});

test('a task keeps its own status, slot and IDs', () => {
  const parts = new SharedTaskParts();
  const a = decoded('a', 'nginx:1', 'svc1', 'node1');
  const b = decoded('b', 'nginx:1', 'svc2', 'node2');
  parts.share(a);
  parts.share(b);
  assert.notEqual(a.Status, b.Status);
  assert.equal(a.ServiceID, 'svc1');
  assert.equal(b.ServiceID, 'svc2');
  assert.equal(b.NodeID, 'node2');
  assert.equal(a.ID, 'a');
});
