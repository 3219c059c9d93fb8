import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Network } from '../../src/cluster/types.js';
import { newSwarmNetwork } from '../../src/manager/networks/swarm-networks.js';
import { allocate } from '../../src/manager/allocator/allocator.js';
import { attachNetwork, detachNetwork, orphanAttachments } from '../../src/manager/networks/attachments.js';
import { assignedTasks } from '../../src/manager/dispatcher/dispatcher.js';
import { networkView } from '../../src/manager/dispatcher/network-view.js';
import { tasksToReap } from '../../src/manager/orchestrator/reaper.js';
import { MemoryStore } from '../helpers/memory-store.js';
import { makeNode } from '../helpers/swarm-fixtures.js';

async function setup() {
  const store = new MemoryStore();
  const att = newSwarmNetwork({ Name: 'att', Driver: 'overlay', Attachable: true }, [], ['10.0.0.0/8']);
  const plain = newSwarmNetwork({ Name: 'plain', Driver: 'overlay' }, [att], ['10.0.0.0/8']);
  const r = allocate(undefined, [att, plain], [], []);
  await store.commit([
    ...r.networks.map((object: Network) => ({ kind: 'networks' as const, op: 'create' as const, object })),
    { kind: 'nodes', op: 'create', object: makeNode('n1') },
  ]);
  return store;
}

test('attachNetwork: an address from the network, distinct per container, kept for the same container; the task is not an executor assignment', async () => {
  const store = await setup();
  const a = await attachNetwork(store, 'n1', { containerId: 'c'.repeat(64), containerName: 'c1', network: 'att' });
  const b = await attachNetwork(store, 'n1', { containerId: 'd'.repeat(64), containerName: 'c2', network: 'att' });
  assert.equal(a.NetworksAttachments![0].Addresses[0], '10.0.0.2/24');
  assert.equal(b.NetworksAttachments![0].Addresses[0], '10.0.0.3/24');
  assert.deepEqual(a.Spec.Networks![0].Aliases, ['c1', 'cccccccccccc']);
  assert.equal((await attachNetwork(store, 'n1', { containerId: 'c'.repeat(64), containerName: 'c1', network: 'att' })).ID, a.ID);
  assert.deepEqual(assignedTasks(store.list('tasks'), 'n1'), []);
  // The NetworkView carries it, with its container ID.
  const v = networkView(store).tasks.find((t) => t.ID === a.ID)!;
  assert.deepEqual(v.Spec.NetworkAttachmentSpec, { ContainerID: 'c'.repeat(64) });
  // The allocator counts it as used.
  assert.equal(allocate(undefined, store.list('networks'), [], store.list('tasks')).tasks.length, 0);
  await detachNetwork(store, 'n1', { containerId: 'c'.repeat(64) });
  assert.equal(store.get('tasks', a.ID), undefined);
  assert.equal((await attachNetwork(store, 'n1', { containerId: 'e'.repeat(64), containerName: 'c3', network: 'att' })).NetworksAttachments![0].Addresses[0], '10.0.0.2/24');
});

test('attachNetwork refuses non-attachable networks (PermissionDenied) and unknown ones (NotFound)', async () => {
  const store = await setup();
  await assert.rejects(attachNetwork(store, 'n1', { containerId: 'c'.repeat(64), containerName: 'c1', network: 'plain' }),
    (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED && e.details === 'network plain not manually attachable');
  await assert.rejects(attachNetwork(store, 'n1', { containerId: 'c'.repeat(64), containerName: 'c1', network: 'nope' }),
    (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  assert.equal(store.list('tasks').length, 0);
});

test('a removed node\'s attachments are orphaned, then reaped', async () => {
  const store = await setup();
  const a = await attachNetwork(store, 'n1', { containerId: 'c'.repeat(64), containerName: 'c1', network: 'att' });
  assert.deepEqual(tasksToReap(store.list('tasks'), new Map(), 5), [], 'a live attachment is kept without a service');
  const orphans = orphanAttachments(store.list('tasks'), 'n1');
  assert.equal(orphans.length, 1);
  assert.equal(orphans[0].Status.State, 'orphaned');
  assert.deepEqual(tasksToReap(orphans, new Map(), 5), [a.ID]);
});
