import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Network, Task } from '../../../../src/cluster/types.js';
import {
  newSwarmNetwork,
  removeSwarmNetwork,
  requireSwarmNetwork,
} from '../../../../src/manager/networks/swarm-networks.js';
import { networkView } from '../../../../src/manager/dispatcher/network-view.js';
import { allocate, VXLAN_ID_OPTION } from '../../../../src/manager/allocator/allocator.js';
import { swarmNetworkResource } from '../../../../src/api/routes/networks.js';
import { ApiError } from '../../../../src/util/errors.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeService, makeTask } from '../../../helpers/swarm-fixtures.js';

const POOL = ['10.0.0.0/8'];

function allocated(n: Network, subnet: string, vni: number): Network {
  return {
    ...n,
    IPAMOptions: {
      Driver: { Name: 'default' },
      Configs: [{ Subnet: subnet, Gateway: subnet.replace(/0\/\d+$/, '1') }],
    },
    DriverState: { Name: 'overlay', Options: { [VXLAN_ID_OPTION]: String(vni) } },
  };
}

const status = (e: unknown) => (e instanceof ApiError ? `${e.status} ${e.message}` : String(e));

test('network create: Docker errors for a taken name, a predefined name, an overlapping subnet', () => {
  const a = allocated(newSwarmNetwork({ Name: 'a', Driver: 'overlay' }, [], POOL), '10.0.1.0/24', 4097);
  assert.throws(
    () => newSwarmNetwork({ Name: 'a', Driver: 'overlay' }, [a], POOL),
    (e) => status(e) === '409 network with name a already exists',
  );
  assert.throws(
    () => newSwarmNetwork({ Name: 'host', Driver: 'overlay' }, [a], POOL),
    (e) => status(e) === '403 host is a pre-defined network and cannot be created',
  );
  assert.throws(
    () => newSwarmNetwork({ Name: 'b', Driver: 'overlay', IPAM: { Config: [{ Subnet: '10.0.1.128/25' }] } }, [a], POOL),
    (e) =>
      status(e) ===
      '400 rpc error: code = InvalidArgument desc = invalid pool request: Pool overlaps with other one on this address space',
  );
  const c = newSwarmNetwork(
    {
      Name: 'c',
      Driver: 'overlay',
      Attachable: true,
      Labels: { k: 'v' },
      IPAM: { Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.254' }] },
    },
    [a],
    POOL,
  );
  assert.deepEqual(c.Spec.IPAMOptions?.Configs, [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.254' }]);
  const r = swarmNetworkResource(allocate(undefined, [c], [], []).networks[0]);
  assert.equal(r.Scope, 'swarm');
  assert.equal(r.Attachable, true);
  assert.deepEqual(r.Labels, { k: 'v' });
  assert.deepEqual(r.IPAM.Config, [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.254' }]);
  assert.ok(Number(r.Options[VXLAN_ID_OPTION]) >= 4096);
});

test('network rm: refused while a service or a live task uses it, with swarmkit messages', async () => {
  const store = new MemoryStore();
  const n = allocated(newSwarmNetwork({ Name: 'net', Driver: 'overlay' }, [], POOL), '10.0.1.0/24', 4097);
  await store.commit([{ kind: 'networks', op: 'create', object: n }]);
  const svc = makeService('svc', { TaskTemplate: { Networks: [{ Target: n.ID }] } });
  await store.commit([{ kind: 'services', op: 'create', object: svc }]);
  await assert.rejects(
    removeSwarmNetwork(store, n),
    (e) =>
      status(e) === `400 rpc error: code = FailedPrecondition desc = network ${n.ID} is in use by service ${svc.ID}`,
  );
  // The service no longer names the network, but its old task still runs on it.
  await store.commit([
    {
      kind: 'services',
      op: 'update',
      object: { ...store.get('services', svc.ID)!, Spec: { ...svc.Spec, TaskTemplate: {} } },
    },
  ]);
  const t: Task = { ...makeTask(svc, { Slot: 1 }), NetworksAttachments: [{ Network: n, Addresses: ['10.0.1.3/24'] }] };
  t.Status.State = 'running';
  await store.commit([{ kind: 'tasks', op: 'create', object: t }]);
  await assert.rejects(
    removeSwarmNetwork(store, n),
    (e) => status(e) === `400 rpc error: code = FailedPrecondition desc = network ${n.ID} is in use by task ${t.ID}`,
  );
  const done = store.get('tasks', t.ID)!;
  done.Status.State = 'shutdown';
  done.DesiredState = 'shutdown';
  await store.commit([{ kind: 'tasks', op: 'update', object: done }]);
  await removeSwarmNetwork(store, n);
});

test("network rm right after its service is deleted (docker stack rm): the deleted service's running tasks do not hold it", async () => {
  const store = new MemoryStore();
  const n = allocated(newSwarmNetwork({ Name: 'stack_default', Driver: 'overlay' }, [], POOL), '10.0.1.0/24', 4097);
  const svc = makeService('stack_web', { TaskTemplate: { Networks: [{ Target: n.ID }] } });
  const t: Task = { ...makeTask(svc, { Slot: 1 }), NetworksAttachments: [{ Network: n, Addresses: ['10.0.1.3/24'] }] };
  t.Status.State = 'running';
  await store.commit([
    { kind: 'networks', op: 'create', object: n },
    { kind: 'services', op: 'create', object: svc },
    { kind: 'tasks', op: 'create', object: t },
  ]);
  await store.commit([{ kind: 'services', op: 'delete', id: svc.ID }]);
  await removeSwarmNetwork(store, n);
  assert.equal(store.get('networks', n.ID), undefined);
  assert.throws(
    () => requireSwarmNetwork(store.list('networks'), 'net'),
    (e) => status(e) === '404 network net not found',
  );
});

test('network view: allocated networks only, tasks that hold addresses, attachments slimmed', async () => {
  const store = new MemoryStore();
  const n = allocated(newSwarmNetwork({ Name: 'net', Driver: 'overlay' }, [], POOL), '10.0.1.0/24', 4097);
  const pending = newSwarmNetwork({ Name: 'pending', Driver: 'overlay' }, [n], POOL);
  await store.commit([
    { kind: 'networks', op: 'create', object: n },
    { kind: 'networks', op: 'create', object: pending },
  ]);
  const svc = makeService('svc', { TaskTemplate: { Networks: [{ Target: n.ID }] } });
  const running: Task = {
    ...makeTask(svc, { Slot: 1 }),
    NodeID: 'n1',
    NetworksAttachments: [{ Network: n, Addresses: ['10.0.1.3/24'] }],
  };
  running.Status.State = 'running';
  const old: Task = {
    ...makeTask(svc, { Slot: 2 }),
    NodeID: 'n1',
    DesiredState: 'shutdown',
    NetworksAttachments: [{ Network: n, Addresses: ['10.0.1.4/24'] }],
  };
  old.Status.State = 'running';
  const stopping: Task = {
    ...makeTask(svc, { Slot: 3 }),
    NodeID: 'n1',
    DesiredState: 'shutdown',
    NetworksAttachments: [{ Network: n, Addresses: ['10.0.1.5/24'] }],
  };
  stopping.Status.State = 'starting';
  await store.commit([
    { kind: 'tasks', op: 'create', object: running },
    { kind: 'tasks', op: 'create', object: old },
    { kind: 'tasks', op: 'create', object: stopping },
  ]);
  const v = networkView(store);
  assert.deepEqual(
    v.networks.map((x) => x.Spec.Name),
    ['net'],
  );
  // Mesh drain: a task desired down that still runs stays in the view (its agent keeps it
  // reachable, out of the load balancers) until it reports stopped; one not yet running goes.
  assert.deepEqual(
    v.tasks.map((t) => t.ID).sort(),
    [running.ID, old.ID].sort(),
    'a draining task stays until it stops; one not running goes',
  );
  await store.commit([
    {
      kind: 'tasks',
      op: 'update',
      object: { ...store.get('tasks', old.ID)!, Status: { ...old.Status, State: 'shutdown' } },
    },
  ]);
  assert.deepEqual(
    networkView(store).tasks.map((t) => t.ID),
    [running.ID],
    'a stopped task is no backend any more',
  );
  assert.deepEqual(v.tasks[0].NetworksAttachments, [{ Network: { ID: n.ID }, Addresses: ['10.0.1.3/24'] }]);
});

test("network create -d bridge --scope swarm: accepted as a node-local swarm network; subnets are each node's; never ingress", () => {
  const a = allocated(newSwarmNetwork({ Name: 'a', Driver: 'overlay' }, [], POOL), '10.0.1.0/24', 4097);
  const br = newSwarmNetwork(
    { Name: 'br', Driver: 'bridge', Scope: 'swarm', Attachable: true, IPAM: { Config: [{ Subnet: '10.0.1.0/24' }] } },
    [a],
    POOL,
  );
  assert.equal(br.Spec.DriverConfiguration?.Name, 'bridge');
  assert.equal(br.Spec.Scope, 'swarm');
  assert.equal(br.Spec.Attachable, true);
  // Its subnet is no swarm pool: an overlay may have it.
  newSwarmNetwork(
    { Name: 'o', Driver: 'overlay', IPAM: { Config: [{ Subnet: '10.0.2.0/24' }] } },
    [
      a,
      newSwarmNetwork(
        { Name: 'b2', Driver: 'bridge', Scope: 'swarm', IPAM: { Config: [{ Subnet: '10.0.2.0/24' }] } },
        [],
        POOL,
      ),
    ],
    POOL,
  );
  assert.throws(
    () => newSwarmNetwork({ Name: 'i', Driver: 'bridge', Scope: 'swarm', Ingress: true }, [a], POOL),
    (e) =>
      status(e) ===
      '501 rpc error: code = Unimplemented desc = only overlay driver is currently supported for ingress network',
  );
  assert.throws(
    () => newSwarmNetwork({ Name: 'm', Driver: 'macvlan', Scope: 'swarm' }, [a], POOL),
    (e) =>
      status(e) ===
      '400 rpc error: code = InvalidArgument desc = network driver macvlan is not supported for swarm networks',
  );
});
