import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayBridgeCommands } from '../../../../src/agent/network/reconciler.js';
import { networksWithName } from '../../../../src/net/dns-zone.js';

// The gateway bridge's MAC is the containers' next hop to the resolver and out: it must not follow its ports'.

test('gateway bridge: made with a MAC of its own, so containers coming and going never change it', () => {
  assert.deepEqual(gatewayBridgeCommands(undefined), [
    'link add shoal_gwbridge address 02:42:ac:12:00:01 type bridge',
    'addr add 172.18.0.1/16 dev shoal_gwbridge',
    'link set shoal_gwbridge up',
  ]);
});

test('gateway bridge found in place: pinned to the MAC its containers already know, address and state kept', () => {
  const found = {
    ifname: 'shoal_gwbridge',
    address: '02:11:22:33:44:55',
    flags: ['BROADCAST', 'UP'],
    addr_info: [{ family: 'inet', local: '172.18.0.1', prefixlen: 16 }],
  };
  assert.deepEqual(gatewayBridgeCommands(found), ['link set dev shoal_gwbridge address 02:11:22:33:44:55']);
  assert.deepEqual(gatewayBridgeCommands({ ...found, flags: [], addr_info: [] }), [
    'link set dev shoal_gwbridge address 02:11:22:33:44:55',
    'addr add 172.18.0.1/16 dev shoal_gwbridge',
    'link set shoal_gwbridge up',
  ]);
});

test('resolver log: the networks a forwarded name exists on, whoever asked', () => {
  const zone = {
    askers: { '172.18.0.3': ['a'] },
    names: { a: { back: ['10.0.1.2'] }, b: { rr: ['10.0.2.5'], 'tasks.rr': [] } },
  };
  assert.deepEqual(networksWithName(zone, 'RR.'), ['b']);
  assert.deepEqual(networksWithName(zone, 'tasks.rr'), ['b']);
  assert.deepEqual(networksWithName(zone, 'example.com'), []);
});
