import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  containerScript,
  containerVipTargets,
  ingressReplyMark,
  ingressScript,
  nodeScript,
} from '../../../../src/agent/network/rules.js';
import { lookup } from '../../../../src/net/dns-zone.js';
import { buildZone } from '../../../../src/agent/network/dns-records.js';
import type { NodeNetworkPlan, ServicePlan } from '../../../../src/agent/network/plan.js';

const web: ServicePlan = {
  id: 's1',
  name: 'Web',
  endpointMode: 'vip',
  vips: { app: '10.0.1.2', ingress: '10.255.0.2' },
  tasks: [
    { containerId: 'c1', addresses: { app: '10.0.1.3', ingress: '10.255.0.3' } },
    { addresses: { app: '10.0.1.4', ingress: '10.255.0.4' } },
  ],
  ports: [{ target: 80, published: 30000, protocol: 'tcp', mode: 'ingress' }],
};
const rr: ServicePlan = {
  id: 's2',
  name: 'rr',
  endpointMode: 'dnsrr',
  vips: {},
  tasks: [{ addresses: { app: '10.0.1.9' } }],
  ports: [],
};

test('container rules: a VIP per attached network, round robin over its tasks there', () => {
  const targets = containerVipTargets([web, rr], new Set(['app']));
  assert.deepEqual(targets, [{ vip: '10.0.1.2', backends: ['10.0.1.3', '10.0.1.4'] }]);
  const script = containerScript(targets);
  assert.match(script, /^add table ip shoal_lb\ndelete table ip shoal_lb\ntable ip shoal_lb \{/);
  assert.match(
    script,
    /ip daddr 10\.0\.1\.2 meta l4proto \{ tcp, udp \} dnat ip to numgen inc mod 2 map \{ 0 : 10\.0\.1\.3, 1 : 10\.0\.1\.4 \}/,
  );
  assert.match(script, /ip daddr \{ 10\.0\.1\.2 \} meta l4proto tcp reject with tcp reset/);
});

test('container rules: a VIP without tasks gets no DNAT, only the reject', () => {
  const script = containerScript([{ vip: '10.0.1.2', backends: [] }]);
  assert.doesNotMatch(script, /dnat ip to/);
  assert.match(script, /reject/);
});

test('node and ingress rules: published ports to the ingress sandbox, then to task addresses with their target port', () => {
  const node = nodeScript([
    { protocol: 'tcp', published: 30000, backends: [{ ip: '172.18.0.2' }] },
    {
      protocol: 'udp',
      published: 30001,
      backends: [
        { ip: '172.18.0.5', port: 53 },
        { ip: '172.18.0.6', port: 53 },
      ],
    },
    { protocol: 'tcp', published: 30002, backends: [] },
  ]);
  assert.match(node, /fib daddr type local tcp dport 30000 dnat ip to 172\.18\.0\.2\n/);
  assert.match(
    node,
    /fib daddr type local udp dport 30001 dnat ip to numgen inc mod 2 map \{ 0 : 172\.18\.0\.5 \. 53, 1 : 172\.18\.0\.6 \. 53 \}/,
  );
  assert.doesNotMatch(node, /30002/);
  assert.match(node, /ip saddr 172\.18\.0\.0\/16 oifname != "shoal_gwbridge" masquerade/);
  const ingress = ingressScript([
    {
      protocol: 'tcp',
      published: 30000,
      backends: [
        { ip: '10.255.0.3', port: 80 },
        { ip: '10.255.0.4', port: 80 },
      ],
    },
  ]);
  assert.match(
    ingress,
    /iifname "gw0" tcp dport 30000 dnat ip to numgen inc mod 2 map \{ 0 : 10\.255\.0\.3 \. 80, 1 : 10\.255\.0\.4 \. 80 \}/,
  );
  // The client's address is kept: only ports that ask for Docker's masquerade are masqueraded.
  assert.doesNotMatch(ingress, /meta mark set/);
  assert.match(ingress, /oifname "br0" meta mark 0x1 ct status dnat masquerade/);
  const masq = ingressScript([
    { protocol: 'udp', published: 30001, backends: [{ ip: '10.255.0.3', port: 53 }], masquerade: true },
  ]);
  assert.match(masq, /iifname "gw0" udp dport 30001 meta mark set 0x1 dnat ip to 10\.255\.0\.3:53/);
});

test("container rules: routing-mesh connections are marked by the ingress node's MAC, replies routed by the mark", () => {
  assert.equal(ingressReplyMark('10.0.0.2'), 0x53480002);
  assert.equal(ingressReplyMark('10.0.1.2'), 0x53480102);
  const script = containerScript([], {
    ifname: 'eth0',
    nodes: [
      { mac: '02:42:0a:00:00:02', mark: 0x53480002 },
      { mac: '02:42:0a:00:00:03', mark: 0x53480003 },
    ],
  });
  assert.match(
    script,
    /type filter hook prerouting priority mangle;[^}]*iifname "eth0" ct state new ct mark set ether saddr map \{ 02:42:0a:00:00:02 : 0x53480002, 02:42:0a:00:00:03 : 0x53480003 \}/,
  );
  assert.match(script, /type route hook output priority mangle;[^}]*ct mark != 0 meta mark set ct mark/);
  assert.doesNotMatch(containerScript([]), /mesh_mark/);
});

test('dns zone: names scoped by the asking container networks; services win over aliases', () => {
  const plan: NodeNetworkPlan = {
    nodeAddr: '192.0.2.1',
    overlays: [],
    endpoints: [
      {
        containerId: 'c1',
        netnsPath: '/proc/1/ns/net',
        networkId: 'app',
        ip: '10.0.1.3',
        aliases: ['web.1.abc', 'db'],
      },
      { containerId: 'c2', netnsPath: '/proc/2/ns/net', networkId: 'other', ip: '10.0.2.3', aliases: ['lonely'] },
    ],
    peers: [{ networkId: 'app', nodeAddr: '192.0.2.2', ip: '10.0.1.4', aliases: ['web.2.def', 'web'] }],
    services: [web, rr],
  };
  const gw: Record<string, string> = { c1: '172.18.0.3', c2: '172.18.0.4' };
  const zone = buildZone(plan, (id) => gw[id]);
  assert.deepEqual(
    lookup(zone, '172.18.0.3', 'web'),
    ['10.0.1.2'],
    'the VIP, not the alias, and case-insensitive service names',
  );
  assert.deepEqual(lookup(zone, '172.18.0.3', 'WEB.'), ['10.0.1.2']);
  assert.deepEqual(lookup(zone, '172.18.0.3', 'tasks.web'), ['10.0.1.3', '10.0.1.4']);
  assert.deepEqual(lookup(zone, '172.18.0.3', 'rr'), ['10.0.1.9']);
  assert.deepEqual(lookup(zone, '172.18.0.3', 'web.2.def'), ['10.0.1.4']);
  assert.deepEqual(lookup(zone, '172.18.0.3', 'db'), ['10.0.1.3']);
  assert.equal(lookup(zone, '172.18.0.3', 'lonely'), undefined, 'on a network c1 is not attached to');
  assert.equal(lookup(zone, '172.18.0.4', 'web'), undefined);
  assert.equal(lookup(zone, '172.18.0.99', 'web'), undefined, 'unknown askers only get forwarding');
});

test('dns zone: tasks.<service> and the service name never answer ingress addresses, even to a task on ingress', () => {
  const plan: NodeNetworkPlan = {
    nodeAddr: '192.0.2.1',
    overlays: [
      { id: 'app', name: 'app', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
      { id: 'ingress', name: 'ingress', vni: 4096, subnet: '10.255.0.0/16', gateway: '10.255.0.1', ingress: true },
    ],
    endpoints: [
      { containerId: 'c1', netnsPath: '/proc/1/ns/net', networkId: 'app', ip: '10.0.1.3', aliases: ['web.1.abc'] },
      {
        containerId: 'c1',
        netnsPath: '/proc/1/ns/net',
        networkId: 'ingress',
        ip: '10.255.0.3',
        aliases: ['web.1.abc'],
      },
      {
        containerId: 'c3',
        netnsPath: '/proc/3/ns/net',
        networkId: 'ingress',
        ip: '10.255.0.9',
        aliases: ['only.1.xyz'],
      },
    ],
    peers: [{ networkId: 'ingress', nodeAddr: '192.0.2.2', ip: '10.255.0.4', aliases: ['web.2.def'] }],
    services: [web],
  };
  const gw: Record<string, string> = { c1: '172.18.0.3', c3: '172.18.0.9' };
  const zone = buildZone(plan, (id) => gw[id]);
  assert.deepEqual(lookup(zone, '172.18.0.3', 'tasks.web'), ['10.0.1.3', '10.0.1.4']);
  assert.deepEqual(lookup(zone, '172.18.0.3', 'web'), ['10.0.1.2']);
  assert.deepEqual(lookup(zone, '172.18.0.3', 'web.1.abc'), ['10.0.1.3']);
  assert.equal(lookup(zone, '172.18.0.3', 'web.2.def'), undefined, 'known only on ingress');
  assert.equal(
    lookup(zone, '172.18.0.9', 'tasks.web'),
    undefined,
    'a container only on ingress resolves no swarm names',
  );
});
