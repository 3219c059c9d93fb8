import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Network, Task } from '../../../../src/cluster/types.js';
import { newSwarmNetwork, removeSwarmNetwork } from '../../../../src/manager/networks/swarm-networks.js';
import { allocate, Allocator } from '../../../../src/manager/allocator/allocator.js';
import { attachNetwork, detachNetwork, orphanAttachments } from '../../../../src/manager/networks/attachments.js';
import { assignedTasks } from '../../../../src/manager/dispatcher/dispatcher.js';
import { networkView } from '../../../../src/manager/dispatcher/network-view.js';
import { tasksToReap } from '../../../../src/manager/orchestrator/reaper.js';
import { createLogger } from '../../../../src/util/log.js';
import { FollowerStore } from '../../../helpers/follower-store.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode, makeService, makeTask } from '../../../helpers/swarm-fixtures.js';

const log = createLogger('test', 'silent');

async function setup(subnet?: string) {
  const store = new MemoryStore();
  const att = newSwarmNetwork(
    { Name: 'att', Driver: 'overlay', Attachable: true, ...(subnet ? { IPAM: { Config: [{ Subnet: subnet }] } } : {}) },
    [],
    ['10.0.0.0/8'],
  );
  const plain = newSwarmNetwork({ Name: 'plain', Driver: 'overlay' }, [att], ['10.0.0.0/8']);
  const r = allocate(undefined, [att, plain], [], []);
  await store.commit([
    ...r.networks.map((object: Network) => ({ kind: 'networks' as const, op: 'create' as const, object })),
    { kind: 'nodes', op: 'create', object: makeNode('n1') },
    { kind: 'nodes', op: 'create', object: makeNode('n2') },
  ]);
  return store;
}

/** The leader's allocator on `store` for the duration of `fn`. */
async function withAllocator<T>(store: MemoryStore, fn: () => Promise<T>): Promise<T> {
  const a = new Allocator(store, log);
  a.run();
  try {
    return await fn();
  } finally {
    await a.stop();
  }
}

const addr = (t: Task) => t.NetworksAttachments![0].Addresses[0];
const cid = (c: string) => c.repeat(64);

test('attachNetwork: the allocator gives the address, distinct per container, kept for the same container; the task is not an executor assignment', async () => {
  const store = await setup();
  await withAllocator(store, async () => {
    const a = await attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'att' });
    const b = await attachNetwork(store, 'n1', { containerId: cid('d'), containerName: 'c2', network: 'att' });
    assert.equal(a.Status.State, 'running');
    assert.equal(addr(a), '10.0.0.2/24');
    assert.equal(addr(b), '10.0.0.3/24');
    assert.deepEqual(a.Spec.Networks![0].Aliases, ['c1', 'cccccccccccc']);
    assert.equal(
      (await attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'att' })).ID,
      a.ID,
    );
    assert.deepEqual(assignedTasks(store.list('tasks'), 'n1'), []);
    // The NetworkView carries it, with its container ID.
    const v = networkView(store).tasks.find((t) => t.ID === a.ID)!;
    assert.deepEqual(v.Spec.NetworkAttachmentSpec, { ContainerID: cid('c') });
    await detachNetwork(store, 'n1', { containerId: cid('c') });
    assert.equal(store.get('tasks', a.ID), undefined);
    assert.equal(
      addr(await attachNetwork(store, 'n1', { containerId: cid('e'), containerName: 'c3', network: 'att' })),
      '10.0.0.2/24',
      'freed by the deletion',
    );
  });
});

test('attachNetwork refuses non-attachable networks (PermissionDenied) and unknown ones (NotFound)', async () => {
  const store = await setup();
  await assert.rejects(
    attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'plain' }),
    (e: grpc.ServiceError) =>
      e.code === grpc.status.PERMISSION_DENIED && e.details === 'network plain not manually attachable',
  );
  await assert.rejects(
    attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'nope' }),
    (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
  );
  assert.equal(store.list('tasks').length, 0);
});

test('attachNetwork without an allocator answering: DeadlineExceeded, and the waiting task is deleted', async () => {
  const store = await setup();
  await assert.rejects(
    attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'att' }, 100),
    (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED && /no address allocated/.test(e.details),
  );
  assert.deepEqual(store.list('tasks'), []);
});

test('a full network: the allocator records the error, the RPC reports it and leaves nothing behind', async () => {
  const store = await setup('10.9.0.0/30'); // one usable address after the gateway
  await withAllocator(store, async () => {
    assert.equal(
      addr(await attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'att' })),
      '10.9.0.2/30',
    );
    await assert.rejects(
      attachNetwork(store, 'n1', { containerId: cid('d'), containerName: 'c2', network: 'att' }),
      (e: grpc.ServiceError) =>
        e.code === grpc.status.RESOURCE_EXHAUSTED && e.details === 'no available IPv4 addresses on network 10.9.0.0/30',
    );
    assert.equal(store.list('tasks').length, 1);
  });
});

test('concurrent attachments served by two managers (lagging caches) against one leader allocator never share an address', async () => {
  const store = await setup();
  // A service with a VIP and a task on the same network: their addresses are in the same books.
  const svc = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'att' }] },
  });
  await store.commit([
    { kind: 'services', op: 'create', object: svc },
    {
      kind: 'tasks',
      op: 'create',
      object: makeTask(svc, { Status: { State: 'new', Message: 'created', Timestamp: '' } }),
    },
  ]);
  const m1 = new FollowerStore(store, 3);
  const m2 = new FollowerStore(store, 11);
  try {
    const got = await withAllocator(store, () =>
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          attachNetwork(i % 2 ? m1 : m2, i % 3 ? 'n1' : 'n2', {
            containerId: cid(i.toString(36)),
            containerName: `c${i}`,
            network: 'att',
          }),
        ),
      ),
    );
    const all = [
      ...got.map(addr),
      ...store.list('services').flatMap((s) => (s.Endpoint?.VirtualIPs ?? []).map((v) => v.Addr)),
      ...store
        .list('tasks')
        .filter((t) => t.ServiceID)
        .flatMap((t) => (t.NetworksAttachments ?? []).map((a) => a.Addresses[0])),
    ];
    assert.equal(all.length, 32, 'every attachment, the VIP and the service task hold an address');
    assert.equal(new Set(all).size, all.length, `no address twice: ${all.join(' ')}`);
  } finally {
    m1.close();
    m2.close();
  }
});

test("a removed node's attachments are orphaned, keep their address until reaped, then the address is free again", async () => {
  const store = await setup();
  await withAllocator(store, async () => {
    const a = await attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'att' });
    assert.deepEqual(tasksToReap(store.list('tasks'), new Map(), 5), [], 'a live attachment is kept without a service');
    const orphans = orphanAttachments(store.list('tasks'), 'n1');
    assert.equal(orphans.length, 1);
    assert.equal(orphans[0].Status.State, 'orphaned');
    await store.commit(orphans.map((object) => ({ kind: 'tasks' as const, op: 'update' as const, object })));
    const b = await attachNetwork(store, 'n2', { containerId: cid('d'), containerName: 'c2', network: 'att' });
    assert.notEqual(addr(b), addr(a), 'not reusable while the orphaned task exists');
    assert.deepEqual(tasksToReap(store.list('tasks'), new Map(), 5), [a.ID]);
    await store.commit([{ kind: 'tasks', op: 'delete', id: a.ID }]);
    const c = await attachNetwork(store, 'n2', { containerId: cid('e'), containerName: 'c3', network: 'att' });
    assert.equal(addr(c), addr(a), 'reusable once the task is gone');
  });
});

test('an attachment waiting for its address is not reaped, and its network cannot be removed meanwhile', async () => {
  const store = await setup();
  const waiting = attachNetwork(store, 'n1', { containerId: cid('c'), containerName: 'c1', network: 'att' }, 2000);
  await new Promise((r) => setTimeout(r, 20));
  const t = store.list('tasks')[0];
  assert.equal(t.Status.State, 'new');
  assert.deepEqual(tasksToReap(store.list('tasks'), new Map(), 5), []);
  await assert.rejects(
    removeSwarmNetwork(
      store,
      store.list('networks').find((n) => n.Spec.Name === 'att')!,
    ),
    /is in use by task/,
  );
  await withAllocator(store, async () => {
    assert.equal(addr(await waiting), '10.0.0.2/24');
  });
});

test("a new leader's allocator (fresh books) never hands out an address an attachment of the old leader holds", async () => {
  const store = await setup();
  const before = await withAllocator(store, () =>
    Promise.all(
      ['a', 'b', 'c'].map((c, i) =>
        attachNetwork(store, 'n1', { containerId: cid(c), containerName: `c${i}`, network: 'att' }),
      ),
    ),
  );
  // The old leader's allocator is gone; the next one starts from the store alone.
  const follower = new FollowerStore(store, 5);
  try {
    const after = await withAllocator(store, () =>
      Promise.all(
        ['d', 'e'].map((c, i) =>
          attachNetwork(follower, 'n2', { containerId: cid(c), containerName: `d${i}`, network: 'att' }),
        ),
      ),
    );
    const all = [...before, ...after].map(addr);
    assert.equal(new Set(all).size, 5, `no address twice: ${all.join(' ')}`);
  } finally {
    follower.close();
  }
});
