import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Network } from '../../../../src/cluster/types.js';
import { allocate } from '../../../../src/manager/allocator/allocator.js';
import {
  allocateVnis,
  checkRequestedVnis,
  requestedVnis,
  VniPool,
  VXLAN_ID_OPTION,
} from '../../../../src/manager/allocator/vxlan-ids.js';
import { newSwarmNetwork } from '../../../../src/manager/networks/swarm-networks.js';
import { ApiError } from '../../../../src/util/errors.js';

function overlay(id: string, opts: { vnis?: string; subnets?: string[]; held?: string } = {}): Network {
  const now = new Date().toISOString();
  const n: Network = {
    ID: id,
    Version: { Index: 0 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: {
      Name: id,
      DriverConfiguration: {
        Name: 'overlay',
        Options: opts.vnis !== undefined ? { [VXLAN_ID_OPTION]: opts.vnis } : {},
      },
      ...(opts.subnets ? { IPAMOptions: { Configs: opts.subnets.map((Subnet) => ({ Subnet })) } } : {}),
    },
  };
  if (opts.held !== undefined) {
    n.IPAMOptions = { Configs: (opts.subnets ?? ['10.0.9.0/24']).map((Subnet) => ({ Subnet })) };
    n.DriverState = { Name: 'overlay', Options: { [VXLAN_ID_OPTION]: opts.held } };
  }
  return n;
}

const vniOf = (n: Network | undefined) => n?.DriverState?.Options?.[VXLAN_ID_OPTION];

test('vxlanid_list parses as strconv.Atoi does: signs and digits, nothing else', () => {
  assert.deepEqual(requestedVnis(undefined), []);
  assert.deepEqual(requestedVnis({ [VXLAN_ID_OPTION]: '4097' }), [4097]);
  assert.deepEqual(requestedVnis({ [VXLAN_ID_OPTION]: '+5,0,-1' }), [5, 0, -1]);
  for (const bad of ['abc', '4097,', ' 4097', '0x10', '1.5', ''])
    assert.throws(
      () => requestedVnis({ [VXLAN_ID_OPTION]: bad }),
      new RegExp(`^Error: invalid vxlan id value "${bad.split(',').find((s) => !/^\d+$/.test(s)) ?? ''}" passed$`),
      bad,
    );
});

test('allocation: the network gets the VNIs it asks for, one per subnet; automatic ones skip them', () => {
  const asked = overlay('a', { vnis: '4096' });
  const auto = overlay('b');
  const low = overlay('c', { vnis: '42' });
  const two = overlay('d', { vnis: '5000,0,7,8', subnets: ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24'] });
  // Auto first in the list: it must still keep off 4096, which `a` asks for.
  const r = allocate(undefined, [auto, asked, low, two], [], []);
  const byId = new Map(r.networks.map((n) => [n.ID, n]));
  assert.equal(vniOf(byId.get('a')), '4096');
  assert.equal(vniOf(byId.get('b')), '4097');
  assert.equal(vniOf(byId.get('c')), '42', 'below 4096 is a valid ID: only automatic ones start there');
  assert.equal(vniOf(byId.get('d')), '5000,4098,7', 'one per subnet, 0 = automatic, extra entries ignored');
  assert.equal(byId.get('a')!.DriverState!.Name, 'overlay');
  assert.deepEqual(r.failedNetworks, []);
});

test('allocation: a taken or out-of-range VNI leaves the network unallocated with libnetwork’s words, the rest go on', () => {
  const holder = overlay('h', { held: '4097' });
  const clash = overlay('x', { vnis: '4097' });
  const huge = overlay('y', { vnis: '16777216' });
  const neg = overlay('z', { vnis: '-1' });
  const dup = overlay('w', { vnis: '6000,6000', subnets: ['10.5.0.0/24', '10.6.0.0/24'] });
  const fine = overlay('f');
  const r = allocate(undefined, [holder, clash, huge, neg, dup, fine], [], []);
  assert.deepEqual(
    r.networks.map((n) => n.ID),
    ['f'],
  );
  assert.equal(vniOf(r.networks[0]), '4096');
  const errs = new Map(r.failedNetworks.map((f) => [f.id, f.error]));
  assert.match(
    errs.get('x')!,
    /^failed while allocating driver state for network x: could not obtain vxlan id for pool 10\.0\.\d+\.0\/24: requested bit is already allocated$/,
  );
  assert.match(errs.get('y')!, /: Requested id does not belong to the set$/);
  assert.match(errs.get('z')!, /: Requested id does not belong to the set$/);
  assert.match(errs.get('w')!, /for pool 10\.6\.0\.0\/24: requested bit is already allocated$/);
  // Freed once the holder is gone: the waiting network gets it on the next pass.
  const again = allocate(undefined, [clash, fine], [], []);
  assert.equal(vniOf(again.networks.find((n) => n.ID === 'x')), '4097');
});

test('two networks asking for one VNI in one pass: the first gets it, the second waits', () => {
  const r = allocate(undefined, [overlay('p', { vnis: '9000' }), overlay('q', { vnis: '9000' })], [], []);
  assert.deepEqual(
    r.networks.map((n) => [n.ID, vniOf(n)]),
    [['p', '9000']],
  );
  assert.deepEqual(
    r.failedNetworks.map((f) => f.id),
    ['q'],
  );
});

test('VniPool: all or none for one network; released VNIs are free again', () => {
  const pool = new VniPool([overlay('h', { held: '4096,4098' })]);
  const n = overlay('n', { vnis: '0,4098', subnets: ['10.1.0.0/24', '10.2.0.0/24'] });
  assert.throws(
    () => allocateVnis(n, ['10.1.0.0/24', '10.2.0.0/24'], pool),
    /could not obtain vxlan id for pool 10\.2\.0\.0\/24: requested bit is already allocated/,
  );
  assert.equal(pool.allocate(), 4097, 'the automatic 4097 of the failed network went back');
  pool.release(4098);
  assert.equal(pool.claim(4098), undefined);
});

test('network create refuses a taken, out-of-range or malformed VNI with 400 and stores nothing', () => {
  const existing = [overlay('h', { held: '4097' }), overlay('waiting', { vnis: '5005' })];
  const status = (e: unknown) => (e instanceof ApiError ? `${e.status} ${e.message}` : String(e));
  const create = (vnis: string, subnets: string[] = []) =>
    newSwarmNetwork(
      {
        Name: 'new',
        Driver: 'overlay',
        Options: { [VXLAN_ID_OPTION]: vnis },
        IPAM: { Config: subnets.map((Subnet) => ({ Subnet })) },
      },
      existing,
      ['10.0.0.0/8'],
    );
  const desc = 'rpc error: code = InvalidArgument desc = ';
  const cases: [string, string[], string][] = [
    ['4097', [], 'could not obtain vxlan id 4097: requested bit is already allocated'],
    ['5005', [], 'could not obtain vxlan id 5005: requested bit is already allocated'],
    ['16777216', [], 'could not obtain vxlan id 16777216: Requested id does not belong to the set'],
    ['-3', [], 'could not obtain vxlan id -3: Requested id does not belong to the set'],
    ['abc', [], 'invalid vxlan id value "abc" passed'],
    [
      '7000,7000',
      ['10.7.0.0/24', '10.8.0.0/24'],
      'could not obtain vxlan id 7000 for pool 10.8.0.0/24: requested bit is already allocated',
    ],
  ];
  for (const [vnis, subnets, message] of cases)
    assert.throws(
      () => create(vnis, subnets),
      (e) => status(e) === `400 ${desc}${message}`,
      vnis,
    );
  // Fine: a free one, 0 (automatic), an extra entry past the subnets that is never used.
  assert.equal(create('4098').Spec.DriverConfiguration?.Options?.[VXLAN_ID_OPTION], '4098');
  create('0');
  create('4098,4097');
  assert.doesNotThrow(() => checkRequestedVnis({ [VXLAN_ID_OPTION]: '1' }, [], existing));
});
