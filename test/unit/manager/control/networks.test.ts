import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNetwork, getNetwork, listNetworks, removeNetwork } from '../../../../src/manager/control/networks.js';
import { createService } from '../../../../src/manager/control/services.js';
import { MemoryStore } from '../../../helpers/memory-store.js';

/** Swarm networks through the control API: create checks, lookup, removal guarded by users. */

test('create: overlay only, names unique, one ingress, subnets must not overlap', async () => {
  const store = new MemoryStore();
  const a = await createNetwork(store, {
    Name: 'a',
    Driver: 'overlay',
    IPAM: { Config: [{ Subnet: '10.10.0.0/24' }] },
  });
  assert.equal(getNetwork(store, 'a').ID, a.ID);
  await assert.rejects(createNetwork(store, { Name: 'a', Driver: 'overlay' }), {
    status: 409,
    message: 'network with name a already exists',
  });
  await assert.rejects(createNetwork(store, { Name: 'b', Driver: 'macvlan' }), {
    status: 400,
    message: 'rpc error: code = InvalidArgument desc = network driver macvlan is not supported for swarm networks',
  });
  await assert.rejects(
    createNetwork(store, { Name: 'c', Driver: 'overlay', IPAM: { Config: [{ Subnet: '10.10.0.0/16' }] } }),
    { status: 400, message: /Pool overlaps/ },
  );
  const i = await createNetwork(store, { Name: 'ing', Driver: 'overlay', Ingress: true });
  await assert.rejects(createNetwork(store, { Name: 'ing2', Driver: 'overlay', Ingress: true }), {
    status: 403,
    message: `rpc error: code = AlreadyExists desc = ingress network (${i.ID}) is already present`,
  });
  assert.deepEqual(
    listNetworks(store)
      .map((n) => n.Spec.Name)
      .sort(),
    ['a', 'ing'],
  );
});

test('remove: refused while a service uses it; by name once free; unknown is 404', async () => {
  const store = new MemoryStore();
  const n = await createNetwork(store, { Name: 'net', Driver: 'overlay' });
  const s = await createService(
    { store, allocationWaitMs: 0 },
    { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'net' }] } },
  );
  await assert.rejects(removeNetwork(store, 'net'), {
    status: 400,
    message: `rpc error: code = FailedPrecondition desc = network ${n.ID} is in use by service ${s.ID}`,
  });
  await store.commit([{ kind: 'services', op: 'delete', id: s.ID }]);
  await removeNetwork(store, 'net');
  assert.equal(listNetworks(store).length, 0);
  await assert.rejects(removeNetwork(store, 'net'), { status: 404, message: 'network net not found' });
});
