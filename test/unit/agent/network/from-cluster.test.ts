import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Network, Node, Service, Task } from '../../../../src/cluster/types.js';
import { planFromCluster, VXLAN_ID_OPTION } from '../../../../src/agent/network/from-cluster.js';

const meta = (ID: string) => ({ ID, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '' });
const node = (ID: string, Addr: string): Node => ({
  ...meta(ID),
  Spec: { Role: 'worker', Availability: 'active' },
  Status: { State: 'ready', Addr },
});
const network = (ID: string, name: string, vni: number, subnet: string, ingress = false): Network => ({
  ...meta(ID),
  Spec: { Name: name, Ingress: ingress, DriverConfiguration: { Name: 'overlay' } },
  DriverState: { Name: 'overlay', Options: { [VXLAN_ID_OPTION]: String(vni) } },
  IPAMOptions: { Configs: [{ Subnet: subnet, Gateway: subnet.replace(/0\/24$/, '1') }] },
});
const app = network('netapp', 'app', 4097, '10.0.1.0/24');
const other = network('netother', 'other', 4098, '10.0.2.0/24');
const ingress = network('netingress', 'ingress', 4096, '10.0.0.0/24', true);
const web: Service = {
  ...meta('svcweb'),
  Spec: { Name: 'web', TaskTemplate: {}, EndpointSpec: { Mode: 'vip' } },
  Endpoint: {
    Spec: { Mode: 'vip' },
    Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 30000, PublishMode: 'ingress' }],
    VirtualIPs: [
      { NetworkID: 'netapp', Addr: '10.0.1.2/24' },
      { NetworkID: 'netingress', Addr: '10.0.0.2/24' },
    ],
  },
};
const task = (
  ID: string,
  nodeId: string,
  slot: number,
  state: Task['Status']['State'],
  attachments: [Network, string][],
): Task => ({
  ...meta(ID),
  Spec: { Networks: [{ Target: 'netapp', Aliases: ['frontend'] }] },
  ServiceID: 'svcweb',
  Slot: slot,
  NodeID: nodeId,
  Status: { Timestamp: '', State: state, Message: '' },
  DesiredState: 'running',
  NetworksAttachments: attachments.map(([n, a]) => ({ Network: n, Addresses: [a] })),
});

test('planFromCluster: local endpoints, remote peers, VIPs, running backends and ingress endpoints', () => {
  const plan = planFromCluster({
    nodeId: 'n1',
    nodes: [node('n1', '192.0.2.1'), node('n2', '192.0.2.2'), node('n3', '192.0.2.3')],
    networks: [app, other, ingress],
    services: [web],
    tasks: [
      task('t1', 'n1', 1, 'running', [
        [app, '10.0.1.3/24'],
        [ingress, '10.0.0.3/24'],
      ]),
      task('t2', 'n2', 2, 'running', [
        [app, '10.0.1.4/24'],
        [ingress, '10.0.0.4/24'],
      ]),
      task('t3', 'n2', 3, 'starting', [
        [app, '10.0.1.5/24'],
        [ingress, '10.0.0.5/24'],
      ]),
      task('t4', 'n3', 4, 'failed', [[app, '10.0.1.6/24']]),
      task('t5', 'n3', 5, 'running', [[other, '10.0.2.3/24']]),
    ],
    localContainer: (t) => (t.ID === 't1' ? { containerId: 'c1', netnsPath: '/proc/42/ns/net' } : undefined),
    ingressEndpoints: { n1: '10.0.0.250/24', n2: '10.0.0.251/24', n3: '10.0.0.252/24' },
  });
  assert.equal(plan.nodeAddr, '192.0.2.1');
  assert.deepEqual(plan.overlays.map((o) => [o.name, o.vni, o.subnet, !!o.ingress]).sort(), [
    ['app', 4097, '10.0.1.0/24', false],
    ['ingress', 4096, '10.0.0.0/24', true],
  ]);
  assert.deepEqual(
    plan.endpoints.map((e) => [e.containerId, e.networkId, e.ip]),
    [
      ['c1', 'netapp', '10.0.1.3'],
      ['c1', 'netingress', '10.0.0.3'],
    ],
  );
  assert.deepEqual(plan.endpoints[0].aliases, ['web.1.t1', 'frontend']);
  const peers = plan.peers.map((p) => `${p.networkId} ${p.ip}@${p.nodeAddr}`).sort();
  assert.deepEqual(
    peers,
    [
      'netapp 10.0.1.4@192.0.2.2',
      'netapp 10.0.1.5@192.0.2.2',
      'netingress 10.0.0.251@192.0.2.2',
      'netingress 10.0.0.252@192.0.2.3',
      'netingress 10.0.0.4@192.0.2.2',
      'netingress 10.0.0.5@192.0.2.2',
    ],
    'starting tasks are reachable already; failed ones and networks not used here are left out',
  );
  const s = plan.services[0];
  assert.deepEqual(s.vips, { netapp: '10.0.1.2', netingress: '10.0.0.2' });
  assert.deepEqual(
    s.tasks.map((t) => [t.containerId, t.addresses.netapp]),
    [
      ['c1', '10.0.1.3'],
      [undefined, '10.0.1.4'],
      [undefined, undefined],
    ],
    'only running tasks receive traffic (t5 is on another network only)',
  );
  assert.deepEqual(s.ports, [{ target: 80, published: 30000, protocol: 'tcp', mode: 'ingress' }]);
  assert.deepEqual(plan.ingressEndpoint, { ip: '10.0.0.250' });
});

test('planFromCluster: draining tasks stay reachable but get no new connections; starting containers are no backends; masquerade switch; ingress nodes', () => {
  const view = (labels: Record<string, string> | undefined, ingressOptions?: Record<string, string>) =>
    planFromCluster({
      nodeId: 'n1',
      nodes: [node('n1', '192.0.2.1'), node('n2', '192.0.2.2')],
      networks: [
        app,
        { ...ingress, Spec: { ...ingress.Spec, DriverConfiguration: { Name: 'overlay', Options: ingressOptions } } },
      ],
      services: [{ ...web, Spec: { ...web.Spec, Labels: labels } }],
      tasks: [
        task('t1', 'n1', 1, 'running', [
          [app, '10.0.1.3/24'],
          [ingress, '10.0.0.3/24'],
        ]),
        {
          ...task('t2', 'n2', 2, 'running', [
            [app, '10.0.1.4/24'],
            [ingress, '10.0.0.4/24'],
          ]),
          DesiredState: 'shutdown',
        },
        task('t3', 'n2', 3, 'running', [
          [app, '10.0.1.5/24'],
          [ingress, '10.0.0.5/24'],
        ]),
      ],
      // t1's container is between create and start: wired, but its process does not listen yet.
      localContainer: (t) =>
        t.ID === 't1' ? { containerId: 'c1', netnsPath: '/proc/42/ns/net', starting: true } : undefined,
      ingressEndpoints: { n1: '10.0.0.250/24', n2: '10.0.0.251/24' },
    });
  const plan = view(undefined);
  assert.deepEqual(
    plan.endpoints.map((e) => e.ip),
    ['10.0.1.3', '10.0.0.3'],
  );
  assert.ok(
    plan.peers.some((p) => p.ip === '10.0.1.4'),
    'the draining task is still reachable',
  );
  assert.deepEqual(
    plan.services[0].tasks.map((t) => t.addresses.netapp),
    ['10.0.1.5'],
    'only the running task desired running that listens is a backend',
  );
  assert.equal(plan.services[0].masquerade, undefined, 'client address kept by default');
  assert.deepEqual(plan.ingressNodes?.map((n) => n.ip).sort(), ['10.0.0.250', '10.0.0.251']);
  assert.equal(view({ 'shoal.mesh.masquerade': 'true' }).services[0].masquerade, true, 'service label');
  assert.equal(
    view(undefined, { 'shoal.mesh.masquerade': 'true' }).services[0].masquerade,
    true,
    'ingress network option',
  );
});
