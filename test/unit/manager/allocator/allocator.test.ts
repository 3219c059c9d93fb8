import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Network, Service, Task } from '../../../../src/cluster/types.js';
import { newSwarmId } from '../../../../src/util/ids.js';
import { allocate, VXLAN_ID_OPTION, Allocator } from '../../../../src/manager/allocator/allocator.js';
import { PortAllocator } from '../../../../src/manager/allocator/ports.js';
import { AddressPool, SubnetPool } from '../../../../src/manager/allocator/ipam.js';
import { createLogger } from '../../../../src/util/log.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode, makeService, makeTask, until } from '../../../helpers/swarm-fixtures.js';

const log = createLogger('test', 'silent');

function net(id: string, name: string, over: Partial<Network['Spec']> = {}): Network {
  const now = new Date().toISOString();
  return {
    ID: id,
    Version: { Index: 0 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: { Name: name, DriverConfiguration: { Name: 'overlay' }, ...over },
  };
}

test('published ports: given ones kept, 0 gets 30000+, sticky across updates, host mode untouched', () => {
  const a = makeService('a', {
    EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }, { TargetPort: 443 }] },
  });
  const pa = new PortAllocator([]).allocate(a);
  assert.deepEqual(
    pa.map((p) => [p.PublishedPort, p.Protocol, p.PublishMode]),
    [
      [8080, 'tcp', 'ingress'],
      [30000, 'tcp', 'ingress'],
    ],
  );
  const a2: Service = { ...a, Endpoint: { Spec: a.Spec.EndpointSpec!, Ports: pa } };
  const b = makeService('b', {
    EndpointSpec: {
      Ports: [
        { TargetPort: 80 },
        { TargetPort: 53, Protocol: 'udp' },
        { TargetPort: 22, PublishedPort: 2222, PublishMode: 'host' },
      ],
    },
  });
  const alloc = new PortAllocator([a2]);
  assert.deepEqual(
    alloc.allocate(a2).map((p) => p.PublishedPort),
    [8080, 30000],
    'sticky',
  );
  assert.deepEqual(
    alloc.allocate(b).map((p) => [p.PublishedPort, p.Protocol, p.PublishMode]),
    [
      [30001, 'tcp', 'ingress'],
      [30000, 'udp', 'ingress'],
      [2222, 'tcp', 'host'],
    ],
  );
});

test('subnets from the default pool never overlap; addresses never repeat', () => {
  const pool = new SubnetPool(['10.0.0.0/8'], 24, [
    { ...net('x', 'x'), IPAMOptions: { Configs: [{ Subnet: '10.0.0.0/24' }] } },
  ]);
  assert.equal(pool.next(), '10.0.1.0/24');
  assert.equal(pool.next(), '10.0.2.0/24');
  const small = new SubnetPool(['192.168.0.0/23'], 24, []);
  small.next();
  small.next();
  assert.throws(() => small.next(), /non-overlapping/);
  const a = new AddressPool('10.0.1.0/29');
  a.mark('10.0.1.3/29');
  assert.deepEqual(
    [a.allocate(), a.allocate(), a.allocate(), a.allocate()],
    ['10.0.1.2/29', '10.0.1.4/29', '10.0.1.5/29', '10.0.1.6/29'],
  );
  assert.throws(() => a.allocate(), /no available IPv4 addresses/);
});

test('allocation: networks get subnet + VNI, services VIPs, NEW tasks addresses and PENDING', () => {
  const n1 = net('n1', 'front');
  const n2 = net('n2', 'back');
  const ingress = net('ing', 'ingress', { Ingress: true, IPAMOptions: { Configs: [{ Subnet: '10.255.0.0/16' }] } });
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'front' }, { Target: 'n2' }] },
    EndpointSpec: { Ports: [{ TargetPort: 80 }] },
  });
  const t1 = makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } });
  const t2 = makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } });
  const r = allocate(undefined, [n1, n2, ingress], [s], [t1, t2]);
  const nets = new Map(r.networks.map((n) => [n.ID, n]));
  assert.equal(nets.get('n1')!.IPAMOptions!.Configs![0].Subnet, '10.0.0.0/24');
  assert.equal(nets.get('n1')!.IPAMOptions!.Configs![0].Gateway, '10.0.0.1');
  assert.equal(nets.get('n2')!.IPAMOptions!.Configs![0].Subnet, '10.0.1.0/24');
  const vnis = r.networks.map((n) => n.DriverState!.Options![VXLAN_ID_OPTION]);
  assert.equal(new Set(vnis).size, 3);
  assert.ok(vnis.every((v) => Number(v) >= 4096));
  const svc = r.services[0];
  assert.deepEqual(
    svc.Endpoint!.VirtualIPs!.map((v) => [v.NetworkID, v.Addr]),
    [
      ['n1', '10.0.0.2/24'],
      ['n2', '10.0.1.2/24'],
      ['ing', '10.255.0.2/16'],
    ],
  );
  assert.equal(svc.Endpoint!.Ports![0].PublishedPort, 30000);
  assert.equal(r.tasks.length, 2);
  for (const t of r.tasks) {
    assert.equal(t.Status.State, 'pending');
    assert.equal(t.Status.Message, 'pending task scheduling');
    assert.equal(t.NetworksAttachments!.length, 3);
  }
  const addrs = r.tasks.flatMap((t) => t.NetworksAttachments!.map((a) => a.Addresses[0]));
  assert.equal(new Set(addrs).size, addrs.length, 'no address twice');
  assert.ok(addrs.includes('10.0.0.3/24') && addrs.includes('10.0.0.4/24'));
});

test('allocation is idempotent and dnsrr services get no VIP', () => {
  const n1 = {
    ...net('n1', 'front'),
    IPAMOptions: { Configs: [{ Subnet: '10.0.5.0/24', Gateway: '10.0.5.1' }] },
    DriverState: { Name: 'overlay', Options: { [VXLAN_ID_OPTION]: '4096' } },
  };
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'n1' }] },
    EndpointSpec: { Mode: 'dnsrr' },
  });
  const r = allocate(undefined, [n1], [s], []);
  assert.equal(r.networks.length, 0);
  assert.deepEqual(r.services[0].Endpoint!.VirtualIPs, []);
  const again = allocate(undefined, [n1], [r.services[0]], []);
  assert.equal(again.services.length, 0);
});

test('allocator loop moves NEW tasks to PENDING', async () => {
  const store = new MemoryStore();
  const a = new Allocator(store, log);
  a.run();
  try {
    const s = makeService('web');
    await store.commit([
      { kind: 'services', op: 'create', object: s },
      {
        kind: 'tasks',
        op: 'create',
        object: makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } }),
      },
    ]);
    const created = store.get('services', s.ID)!;
    await until('pending', () => store.list('tasks')[0].Status.State === 'pending');
    // Nothing to allocate for a service without networks or endpoint spec: no write, no version bump.
    assert.deepEqual(store.get('services', s.ID)!.Endpoint, created.Endpoint);
    assert.equal(store.get('services', s.ID)!.Version.Index, created.Version.Index);
  } finally {
    await a.stop();
  }
});

test('the ingress network gets 10.0.0.0/24 and VNI 4096 first, and every node an address on it', () => {
  const cluster = { DefaultAddrPool: ['10.0.0.0/8'], SubnetSize: 24 } as unknown as Parameters<typeof allocate>[0];
  const ingressSpec = net('ing', 'ingress', { Ingress: true, Labels: { 'com.docker.swarm.internal': 'true' } });
  const nodes = [makeNode('n1'), makeNode('n2')];
  const r = allocate(cluster, [ingressSpec], [], [], nodes);
  const ing = r.networks[0];
  assert.equal(ing.IPAMOptions!.Configs![0].Subnet, '10.0.0.0/24');
  assert.equal(ing.DriverState!.Options![VXLAN_ID_OPTION], '4096');
  assert.deepEqual(
    r.nodes.map((n) => n.Attachments![0].Addresses[0]),
    ['10.0.0.2/24', '10.0.0.3/24'],
  );
  // Next pass: nothing more to do; a service's VIP avoids the nodes' addresses.
  const s = makeService('web', { EndpointSpec: { Ports: [{ TargetPort: 80 }] } });
  const again = allocate(cluster, [ing], [s], [], r.nodes);
  assert.equal(again.nodes.length + again.networks.length, 0);
  assert.equal(again.services[0].Endpoint!.VirtualIPs![0].Addr, '10.0.0.4/24');
});

function attachmentTask(node: string, container: string, network: string, over: Partial<Task> = {}): Task {
  const now = new Date().toISOString();
  return {
    ID: newSwarmId(),
    Version: { Index: 0 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: { NetworkAttachmentSpec: { ContainerID: container }, Networks: [{ Target: network }] },
    ServiceID: '',
    NodeID: node,
    DesiredState: 'running',
    Status: { State: 'new', Message: 'network attachment', Timestamp: now },
    ...over,
  };
}

test('attachment tasks (no service, no address) get addresses in the same books as VIPs and service tasks; RUNNING, never scheduled', () => {
  const n1 = net('n1', 'att', { Attachable: true });
  const s = makeService('web', { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'n1' }] } });
  const tasks = [
    makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } }),
    attachmentTask('node1', 'c'.repeat(64), 'n1'),
    makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } }),
    attachmentTask('node2', 'd'.repeat(64), 'att'), // by name, as the RPC may be given it
  ];
  const r = allocate(undefined, [n1], [s], tasks);
  const vip = r.services[0].Endpoint!.VirtualIPs![0].Addr;
  assert.equal(r.tasks.length, 4);
  const att = r.tasks.filter((t) => !t.ServiceID);
  for (const t of att) {
    assert.equal(t.Status.State, 'running');
    assert.equal(t.NetworksAttachments![0].Network.ID, 'n1');
  }
  const addrs = [vip, ...r.tasks.map((t) => t.NetworksAttachments![0].Addresses[0])];
  assert.equal(new Set(addrs).size, 5, `no address twice: ${addrs.join(' ')}`);
  // Idempotent: a second pass over the result changes nothing.
  const again = allocate(undefined, r.networks, r.services, r.tasks);
  assert.deepEqual([again.services.length, again.tasks.length], [0, 0]);
});

test('a restarted allocator (new leader) rebuilds its books from the store, attachments included', () => {
  const n1 = net('n1', 'att', { Attachable: true });
  const first = allocate(
    undefined,
    [n1],
    [],
    [attachmentTask('node1', 'c'.repeat(64), 'n1'), attachmentTask('node1', 'd'.repeat(64), 'n1')],
  );
  const held = first.tasks.map((t) => t.NetworksAttachments![0].Addresses[0]);
  // Nothing kept between passes: the next pass only sees the store's objects.
  const s = makeService('web', { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'n1' }] } });
  const second = allocate(
    undefined,
    first.networks,
    [s],
    [
      ...first.tasks,
      makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } }),
      attachmentTask('node2', 'e'.repeat(64), 'n1'),
    ],
  );
  const fresh = [
    second.services[0].Endpoint!.VirtualIPs![0].Addr,
    ...second.tasks.map((t) => t.NetworksAttachments![0].Addresses[0]),
  ];
  assert.equal(fresh.length, 3);
  for (const a of fresh) assert.ok(!held.includes(a), `${a} is held by an attachment`);
  assert.equal(new Set(fresh).size, 3);
});

test('an attachment task keeps its address while it exists in any state; the address is free once the task is deleted', () => {
  const n1 = net('n1', 'att', { Attachable: true });
  const r = allocate(undefined, [n1], [], [attachmentTask('node1', 'c'.repeat(64), 'n1')]);
  const a = r.tasks[0];
  const orphaned: Task = { ...a, Status: { ...a.Status, State: 'orphaned' } };
  const next = allocate(undefined, r.networks, [], [orphaned, attachmentTask('node2', 'd'.repeat(64), 'n1')]);
  assert.notEqual(next.tasks[0].NetworksAttachments![0].Addresses[0], a.NetworksAttachments![0].Addresses[0]);
  const afterDelete = allocate(undefined, r.networks, [], [attachmentTask('node2', 'd'.repeat(64), 'n1')]);
  assert.equal(afterDelete.tasks[0].NetworksAttachments![0].Addresses[0], a.NetworksAttachments![0].Addresses[0]);
});

test('an attachment whose network is not allocated yet waits NEW; a vanished network is recorded in Status.Err, once', () => {
  const pending = net('p', 'pending'); // no subnet yet: allocated in the same pass, then the task
  const r = allocate(undefined, [pending], [], [attachmentTask('node1', 'c'.repeat(64), 'p')]);
  assert.equal(r.tasks[0].Status.State, 'running');
  const gone = allocate(undefined, r.networks, [], [attachmentTask('node1', 'd'.repeat(64), 'nope')]);
  assert.equal(gone.tasks[0].Status.State, 'new');
  assert.equal(gone.tasks[0].Status.Err, 'network nope not found');
  assert.equal(allocate(undefined, r.networks, [], gone.tasks).tasks.length, 0, 'the same error is not written again');
});

test('a full network holds back only what needs it: attachments on other networks are still allocated in the same pass', () => {
  const small = net('s', 'small', { IPAMOptions: { Configs: [{ Subnet: '10.8.0.0/30' }] } }); // one address: the VIP takes it
  const att = net('a', 'att', { Attachable: true });
  const s = makeService('web', { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 's' }] } });
  const r = allocate(
    undefined,
    [small, att],
    [s],
    [
      makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } }),
      attachmentTask('node1', 'c'.repeat(64), 'a'),
    ],
  );
  assert.equal(r.services[0].Endpoint!.VirtualIPs![0].Addr, '10.8.0.2/30');
  assert.deepEqual(
    r.tasks.map((t) => [t.ServiceID, t.Status.State]),
    [['', 'running']],
    'the service task waits NEW; the attachment is allocated',
  );
});

test('a service with an endpoint spec but no networks and no ports has nothing to allocate: no write (its version stays)', () => {
  // docker-py and the CLI send EndpointSpec {Mode: vip} with every update: writing the service
  // for it moved the version a client had just read (its next update was "out of sequence").
  const s: Service = { ...makeService('plain', { EndpointSpec: { Mode: 'vip' } }), Endpoint: { Spec: {} } };
  const t = makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: new Date().toISOString() } });
  const r = allocate(undefined, [], [s], [t]);
  assert.deepEqual(r.services, []);
  assert.equal(r.tasks.length, 1, 'its NEW task is still allocated');
  assert.equal(r.tasks[0].Status.State, 'pending');
  // Ports, though, are allocation: that write stays.
  const p: Service = {
    ...makeService('ports', { EndpointSpec: { Mode: 'vip', Ports: [{ TargetPort: 80, PublishMode: 'host' }] } }),
    Endpoint: { Spec: {} },
  };
  assert.equal(allocate(undefined, [], [p], []).services.length, 1);
});

test('a node-local swarm network (bridge --scope swarm): only its driver recorded; Addr-less VIP, address-less attachments, as swarmkit', () => {
  const br = net('br', 'swbr', { DriverConfiguration: { Name: 'bridge' }, Scope: 'swarm' });
  const s = makeService('web', {
    TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'swbr' }] },
  });
  const t = makeTask(s, { Status: { State: 'new', Message: 'created', Timestamp: '' } });
  const r = allocate(undefined, [br], [s], [t, attachmentTask('node1', 'c'.repeat(64), 'br')]);
  assert.equal(r.networks.length, 1);
  assert.deepEqual(r.networks[0].DriverState, { Name: 'bridge' });
  assert.deepEqual(r.networks[0].IPAMOptions, { Driver: { Name: '' } });
  assert.deepEqual(r.failedNetworks, []);
  assert.deepEqual(r.services[0].Endpoint!.VirtualIPs, [{ NetworkID: 'br', Addr: '' }]);
  const task = r.tasks.find((x) => x.ServiceID)!;
  assert.equal(task.Status.State, 'pending');
  assert.deepEqual(
    task.NetworksAttachments!.map((a) => [a.Network.ID, a.Addresses]),
    [['br', []]],
  );
  const att = r.tasks.find((x) => !x.ServiceID)!;
  assert.equal(att.Status.Err, 'network swbr is node-local: only service tasks can join it');
  // Allocated: the next pass writes nothing for it.
  const again = allocate(undefined, r.networks, r.services, []);
  assert.equal(again.networks.length + again.services.length, 0);
});
