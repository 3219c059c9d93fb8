import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Network, ServiceSpec } from '../../../../src/cluster/types.js';
import { createService, getService, removeService, updateService } from '../../../../src/manager/control/services.js';
import { createNetwork } from '../../../../src/manager/control/networks.js';
import { Allocator } from '../../../../src/manager/allocator/allocator.js';
import { createLogger } from '../../../../src/util/log.js';
import { MemoryStore } from '../../../helpers/memory-store.js';

/** The services control API on the in-memory store, without HTTP. */

const spec = (name: string, over: Partial<ServiceSpec> = {}): ServiceSpec => ({
  Name: name,
  TaskTemplate: { ContainerSpec: { Image: 'busybox' } },
  ...over,
});
const rpc = (code: string, desc: string) => ({ message: `rpc error: code = ${code} desc = ${desc}` });
const noWait = (store: MemoryStore) => ({ store, allocationWaitMs: 0 });

test('create: validated, defaults filled, name conflicts refused, nothing stored on error', async () => {
  const store = new MemoryStore();
  const s = await createService(noWait(store), spec('web'));
  assert.equal(getService(store, 'web').ID, s.ID);
  assert.equal(getService(store, 'web').Spec.Mode?.Replicated?.Replicas, 1);
  await assert.rejects(createService(noWait(store), spec('web')), {
    status: 409,
    ...rpc('AlreadyExists', 'name conflicts with an existing object: service web already exists'),
  });
  await assert.rejects(createService(noWait(store), spec('bad name')), {
    status: 400,
    ...rpc('InvalidArgument', 'name must be valid as a DNS name component'),
  });
  assert.equal(store.list('services').length, 1);
});

test('update: only at the current version ("update out of sequence" otherwise); mode and name are fixed', async () => {
  const store = new MemoryStore();
  const s = await createService(noWait(store), spec('web'));
  const v = getService(store, s.ID).Version.Index;
  await assert.rejects(updateService(noWait(store), 'web', v + 7, spec('web')), {
    status: 500,
    ...rpc('Unknown', 'update out of sequence'),
  });
  await assert.rejects(updateService(noWait(store), 'web', v, spec('web', { Mode: { Global: {} } })), {
    status: 501,
    ...rpc('Unimplemented', 'service mode change is not allowed'),
  });
  await assert.rejects(
    updateService(noWait(store), 'web', v, spec('other')),
    rpc('Unimplemented', 'renaming services is not supported'),
  );
  await updateService(noWait(store), 'web', v, spec('web', { Labels: { a: 'b' } }));
  const after = getService(store, 'web');
  assert.deepEqual(after.Spec.Labels, { a: 'b' });
  assert.equal(after.PreviousSpec?.Labels, undefined);
  assert.equal(after.SpecVersion?.Index, v);
  // The version it had is now stale.
  await assert.rejects(updateService(noWait(store), 'web', v, spec('web')), rpc('Unknown', 'update out of sequence'));
});

test('rollback: back to the previous spec, refused when there is none', async () => {
  const store = new MemoryStore();
  await createService(noWait(store), spec('web'));
  const v0 = getService(store, 'web').Version.Index;
  await assert.rejects(updateService(noWait(store), 'web', v0, spec('web'), { rollback: 'previous' }), {
    status: 400,
    message: /code = FailedPrecondition desc = service \w+ does not have a previous spec/,
  });
  await updateService(
    noWait(store),
    'web',
    v0,
    spec('web', { TaskTemplate: { ContainerSpec: { Image: 'busybox:2' } } }),
  );
  const v1 = getService(store, 'web').Version.Index;
  await updateService(noWait(store), 'web', v1, spec('web'), { rollback: 'previous' });
  const s = getService(store, 'web');
  assert.equal(s.Spec.TaskTemplate.ContainerSpec?.Image, 'busybox');
  assert.equal(s.PreviousSpec?.TaskTemplate.ContainerSpec?.Image, 'busybox:2');
  assert.equal(s.UpdateStatus?.State, 'rollback_started');
});

test('remove: by name; an unknown service is 404', async () => {
  const store = new MemoryStore();
  await createService(noWait(store), spec('web'));
  await removeService(store, 'web');
  assert.equal(store.list('services').length, 0);
  await assert.rejects(removeService(store, 'web'), { status: 404, message: 'service web not found' });
});

test('issue 13: after a create or a network change answers, the allocator has nothing left to write (the version read next is the one to update with)', async () => {
  const store = new MemoryStore();
  const allocator = new Allocator(store, createLogger('test', 'silent'));
  allocator.run();
  try {
    const c = { store, allocationWaitMs: 5000 };
    const net1 = await createNetwork(store, { Name: 'net1', Driver: 'overlay' });
    const net2 = await createNetwork(store, { Name: 'net2', Driver: 'overlay' });
    const s = await createService(
      c,
      spec('web', { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: net1.ID }] } }),
    );
    const afterCreate = getService(store, s.ID);
    assert.deepEqual(
      afterCreate.Endpoint?.VirtualIPs?.map((x) => x.NetworkID),
      [net1.ID],
      'the VIP is there when create answers',
    );
    await updateService(
      c,
      s.ID,
      afterCreate.Version.Index,
      spec('web', { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: net2.ID }] } }),
    );
    const afterUpdate = getService(store, s.ID);
    assert.deepEqual(
      afterUpdate.Endpoint?.VirtualIPs?.map((x) => x.NetworkID),
      [net2.ID],
      'the new VIP is there when update answers',
    );
    // Let the allocator look again: it writes nothing more, so the version read stays valid.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(getService(store, s.ID).Version.Index, afterUpdate.Version.Index);
    await updateService(
      c,
      s.ID,
      afterUpdate.Version.Index,
      spec('web', {
        Labels: { x: 'y' },
        TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: net2.ID }] },
      }),
    );
    const n: Network | undefined = store.get('networks', net2.ID);
    assert.ok(n?.IPAMOptions?.Configs?.[0]?.Subnet, 'the allocator gave the network its subnet');
  } finally {
    await allocator.stop();
  }
});

test('without an allocator, a write still answers once its wait ends', async () => {
  const store = new MemoryStore();
  const net = await createNetwork(store, { Name: 'n', Driver: 'overlay' });
  const t0 = Date.now();
  await createService(
    { store, allocationWaitMs: 50 },
    spec('web', { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: net.ID }] } }),
  );
  assert.ok(Date.now() - t0 >= 40);
  assert.equal(store.list('services').length, 1);
});
