import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getNode, removeNode, updateNode } from '../../../../src/manager/control/nodes.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode } from '../../../helpers/swarm-fixtures.js';

/** The nodes control API on the in-memory store: role changes and removal rules. */

async function swarm(...nodes: ReturnType<typeof makeNode>[]): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.commit(nodes.map((object) => ({ kind: 'nodes' as const, op: 'create' as const, object })));
  return store;
}

test('promote and demote; the last manager cannot be demoted; a stale version is out of sequence', async () => {
  const store = await swarm(makeNode('m1', { role: 'manager', hostname: 'mgr' }), makeNode('w1', { hostname: 'wrk' }));
  const w = getNode(store, 'wrk');
  await assert.rejects(updateNode(store, 'wrk', w.Version.Index + 1, { Role: 'manager', Availability: 'active' }), {
    status: 500,
    message: 'rpc error: code = Unknown desc = update out of sequence',
  });
  await updateNode(store, 'wrk', w.Version.Index, { Role: 'manager', Availability: 'active' });
  assert.equal(getNode(store, 'w1').Spec.Role, 'manager');
  assert.equal(getNode(store, 'w1').ManagerStatus?.Reachability, 'unknown');
  // Two managers: one can go.
  await updateNode(store, 'w1', getNode(store, 'w1').Version.Index, { Role: 'worker', Availability: 'active' });
  assert.equal(getNode(store, 'w1').ManagerStatus, undefined);
  const m = getNode(store, 'm1');
  await assert.rejects(updateNode(store, 'm1', m.Version.Index, { Role: 'worker', Availability: 'active' }), {
    status: 400,
    message: 'rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm',
  });
  assert.equal(getNode(store, 'm1').Spec.Role, 'manager');
});

test('bad role or availability: 400, nothing written; an empty field keeps the current value', async () => {
  const store = await swarm(makeNode('n1', { availability: 'drain' }));
  const v = getNode(store, 'n1').Version.Index;
  await assert.rejects(updateNode(store, 'n1', v, { Role: 'boss' as 'worker', Availability: 'active' }), {
    status: 400,
    message: 'invalid role "boss", only worker and manager are supported',
  });
  await assert.rejects(updateNode(store, 'n1', v, { Role: 'worker', Availability: 'off' as 'active' }), {
    status: 400,
  });
  assert.equal(getNode(store, 'n1').Version.Index, v);
  await updateNode(store, 'n1', v, { Labels: { zone: 'a' } } as never);
  assert.equal(getNode(store, 'n1').Spec.Availability, 'drain');
  assert.deepEqual(getNode(store, 'n1').Spec.Labels, { zone: 'a' });
});

test('remove: a manager never, a ready worker only with force, a down worker at once', async () => {
  const store = await swarm(makeNode('m1', { role: 'manager' }), makeNode('w1'), makeNode('w2', { state: 'down' }));
  await assert.rejects(removeNode(store, 'm1', true), {
    status: 400,
    message: /code = FailedPrecondition desc = node m1 is a cluster manager/,
  });
  await assert.rejects(removeNode(store, 'w1', false), {
    status: 400,
    message: "rpc error: code = FailedPrecondition desc = node w1 is not down and can't be removed",
  });
  await removeNode(store, 'w2', false);
  await removeNode(store, 'w1', true);
  assert.deepEqual(
    store.list('nodes').map((n) => n.ID),
    ['m1'],
  );
  assert.throws(() => getNode(store, 'w1'), { status: 404, message: 'node w1 not found' });
});
