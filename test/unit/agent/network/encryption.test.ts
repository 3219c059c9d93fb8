import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Network, Node, NodeTunnel } from '../../../../src/cluster/types.js';
import { VXLAN_ID_OPTION } from '../../../../src/agent/network/from-cluster.js';
import { emptyPlan, type NodeNetworkPlan } from '../../../../src/agent/network/plan.js';
import { encryptionGuardScript, encryptPlan, isEncrypted } from '../../../../src/agent/network/encryption.js';
import { ENCRYPTED_OVERLAY_MTU, newKeyPair, tunnelAddress } from '../../../../src/agent/network/wireguard.js';
import { checkTunnel } from '../../../../src/manager/dispatcher/tunnel-report.js';
import {
  nextRotationAt,
  rotationPeriodMs,
  DEFAULT_ROTATION_MS,
} from '../../../../src/manager/networks/overlay-keys.js';
import type { Cluster } from '../../../../src/cluster/types.js';

const meta = (ID: string) => ({ ID, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '' });
const KEY_B = newKeyPair().publicKey;
const tunnelOf = (addr: string, state: NodeTunnel['State'] = 'ready', PublicKey = KEY_B): NodeTunnel => ({
  PublicKey,
  Address: tunnelAddress(addr),
  Port: 51820,
  Epoch: 1,
  State: state,
});
const node = (ID: string, Addr: string, Tunnel?: NodeTunnel): Node => ({
  ...meta(ID),
  Spec: { Role: 'worker', Availability: 'active' },
  Status: { State: 'ready', Addr },
  ...(Tunnel ? { Tunnel } : {}),
});
const network = (ID: string, vni: number, encrypted: boolean): Network => ({
  ...meta(ID),
  Spec: { Name: ID, DriverConfiguration: { Name: 'overlay', Options: encrypted ? { encrypted: '' } : {} } },
  DriverState: { Name: 'overlay', Options: { [VXLAN_ID_OPTION]: String(vni) } },
  IPAMOptions: { Configs: [{ Subnet: '10.0.9.0/24' }] },
});
const sec = network('sec', 4100, true);
const plain = network('plain', 4101, false);

function plan(): NodeNetworkPlan {
  return {
    ...emptyPlan('192.168.50.2'),
    overlays: [
      { id: 'sec', name: 'sec', vni: 4100, subnet: '10.0.9.0/24', gateway: '' },
      { id: 'plain', name: 'plain', vni: 4101, subnet: '10.0.8.0/24', gateway: '' },
    ],
    endpoints: [
      { containerId: 'c1', netnsPath: '/proc/1/ns/net', networkId: 'sec', ip: '10.0.9.2', aliases: [] },
      { containerId: 'c1', netnsPath: '/proc/1/ns/net', networkId: 'plain', ip: '10.0.8.2', aliases: [] },
    ],
    peers: [
      { networkId: 'sec', nodeAddr: '192.168.50.3', ip: '10.0.9.3' },
      { networkId: 'sec', nodeAddr: '192.168.50.4', ip: '10.0.9.4' },
      { networkId: 'plain', nodeAddr: '192.168.50.3', ip: '10.0.8.3' },
    ],
  };
}

test('the encrypted option is present-or-not, whatever its value (as Docker reads it)', () => {
  assert.equal(isEncrypted(sec), true);
  assert.equal(isEncrypted(plain), false);
  assert.equal(
    isEncrypted({ Spec: { DriverConfiguration: { Name: 'overlay', Options: { encrypted: 'false' } } } }),
    true,
  );
});

test("tunnel addresses: 100.64/10 with the underlay address's low 22 bits", () => {
  assert.equal(tunnelAddress('192.168.50.3'), '100.104.50.3');
  assert.equal(tunnelAddress('10.0.0.1'), '100.64.0.1');
  assert.notEqual(tunnelAddress('172.30.1.2'), tunnelAddress('172.30.1.3'));
  assert.throws(() => tunnelAddress('nope'));
});

test('key pairs are WireGuard keys: 32 bytes base64, fresh each time', () => {
  const a = newKeyPair();
  const b = newKeyPair();
  for (const k of [a.privateKey, a.publicKey]) assert.equal(Buffer.from(k, 'base64').length, 32);
  assert.notEqual(a.publicKey, b.publicKey);
  assert.doesNotThrow(() =>
    checkTunnel({ PublicKey: a.publicKey, Address: '100.64.0.1', Port: 51820, Epoch: 1, State: 'ready' }),
  );
});

test('a ready tunnel: encrypted VXLAN runs between tunnel addresses; peers without a key are left out; plain networks untouched', () => {
  const nodes = [
    node('self', '192.168.50.2'),
    node('b', '192.168.50.3', tunnelOf('192.168.50.3')),
    node('c', '192.168.50.4'),
  ];
  const out = encryptPlan(plan(), [sec, plain], nodes, 'self', { ready: true, address: tunnelAddress('192.168.50.2') });
  const o = out.plan.overlays.find((x) => x.id === 'sec')!;
  assert.equal(o.vxlanLocal, tunnelAddress('192.168.50.2'));
  assert.equal(o.mtu, ENCRYPTED_OVERLAY_MTU);
  assert.equal(out.plan.overlays.find((x) => x.id === 'plain')!.vxlanLocal, undefined);
  assert.deepEqual(out.plan.peers, [
    { networkId: 'sec', nodeAddr: tunnelAddress('192.168.50.3'), ip: '10.0.9.3' },
    { networkId: 'plain', nodeAddr: '192.168.50.3', ip: '10.0.8.3' },
  ]);
  assert.deepEqual(out.peers, [
    { publicKey: KEY_B, endpoint: '192.168.50.3:51820', address: tunnelAddress('192.168.50.3') },
  ]);
  assert.deepEqual(out.vnis, [4100]);
  assert.deepEqual(out.refused, []);
});

test('a node that cannot encrypt programs nothing of the encrypted network and says why per container', () => {
  const out = encryptPlan(plan(), [sec, plain], [], 'self', {
    ready: false,
    reason: 'the kernel has no WireGuard and wireguard-go is not installed',
  });
  assert.deepEqual(
    out.plan.overlays.map((o) => o.id),
    ['plain'],
  );
  assert.deepEqual(
    out.plan.endpoints.map((e) => e.networkId),
    ['plain'],
  );
  assert.deepEqual(
    out.plan.peers.map((p) => p.networkId),
    ['plain'],
  );
  assert.equal(out.refused.length, 1);
  assert.match(
    out.refused[0].message,
    /network sec is encrypted .* cannot encrypt .* wireguard-go is not installed; refusing to send it in cleartext/,
  );
  // The guard still holds the VNI: nothing leaves in the clear even if something else programmed it.
  assert.deepEqual(out.vnis, [4100]);
});

test("this node's tunnel down for a while: sandboxes and endpoints stay, no encrypted peer is programmed", () => {
  const nodes = [node('b', '192.168.50.3', tunnelOf('192.168.50.3'))];
  const out = encryptPlan(plan(), [sec, plain], nodes, 'self', {
    ready: false,
    reason: 'tunnel down',
    address: '100.104.50.2',
  });
  assert.deepEqual(
    out.plan.overlays.map((o) => [o.id, o.vxlanLocal]),
    [
      ['sec', '100.104.50.2'],
      ['plain', undefined],
    ],
  );
  assert.equal(out.plan.endpoints.length, 2);
  assert.deepEqual(
    out.plan.peers.map((p) => p.networkId),
    ['plain'],
  );
  assert.deepEqual(out.peers, []);
  assert.deepEqual(out.refused, []);
});

test('removed or down nodes are no peers', () => {
  const nodes = [node('b', '192.168.50.3', tunnelOf('192.168.50.3', 'down', ''))];
  const out = encryptPlan(plan(), [sec], nodes, 'self', { ready: true, address: '100.104.50.2' });
  assert.deepEqual(out.peers, []);
  assert.deepEqual(
    out.plan.peers.filter((p) => p.networkId === 'sec'),
    [],
  );
});

test('the guard drops encrypted VNIs off the tunnel in both directions; with none, the table goes', () => {
  const s = encryptionGuardScript('wgabc', [4101, 4100]);
  assert.match(s, /oifname != "wgabc" udp dport 4789 @th,96,24 \{ 4100, 4101 \} drop/);
  assert.match(s, /iifname != "wgabc" udp dport 4789 @th,96,24 \{ 4100, 4101 \} drop/);
  assert.equal(
    encryptionGuardScript('wgabc', []),
    'table inet shoal_encrypted {}\ndelete table inet shoal_encrypted\n',
  );
});

test('tunnel reports: only well-formed keys and states are stored', () => {
  assert.throws(
    () => checkTunnel({ PublicKey: 'x', Address: '100.64.0.1', Port: 1, Epoch: 1, State: 'ready' }),
    /public key/,
  );
  assert.throws(
    () => checkTunnel({ PublicKey: '', Address: '', Port: 0, Epoch: 0, State: 'weird' as NodeTunnel['State'] }),
    /state/,
  );
  const t = checkTunnel({
    PublicKey: '',
    Address: '',
    Port: 0,
    Epoch: 2,
    State: 'unavailable',
    Message: 'no tun',
    extra: 1,
  } as NodeTunnel);
  assert.deepEqual(t, { PublicKey: '', Address: '', Port: 0, Epoch: 2, State: 'unavailable', Message: 'no tun' });
});

test('rotation period: 12 h unless SHOAL_OVERLAY_KEY_ROTATION_MS says otherwise; due from the last rotation', () => {
  assert.equal(rotationPeriodMs({}), DEFAULT_ROTATION_MS);
  assert.equal(rotationPeriodMs({ SHOAL_OVERLAY_KEY_ROTATION_MS: '5000' }), 5000);
  assert.equal(rotationPeriodMs({ SHOAL_OVERLAY_KEY_ROTATION_MS: 'x' }), DEFAULT_ROTATION_MS);
  const c = { OverlayKeys: { Epoch: 3, RotatedAt: '2026-01-01T00:00:00.000Z' } } as Cluster;
  assert.equal(nextRotationAt(c, 1000), Date.parse('2026-01-01T00:00:01.000Z'));
  assert.equal(nextRotationAt({} as Cluster, 1000), 0);
});
