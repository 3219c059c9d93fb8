import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseLocalSubnet, defaultLocalPools, firstHost } from '../../../../src/engine/network/local-pools.js';
import { AddressPool } from '../../../../src/engine/network/ipam.js';

test("Docker's default local pools: 172.17-31/16, then 192.168.x.0/20", () => {
  const pools = defaultLocalPools();
  assert.equal(pools[0], '172.17.0.0/16');
  assert.equal(pools[14], '172.31.0.0/16');
  assert.equal(pools[15], '192.168.0.0/20');
  assert.equal(pools[30], '192.168.240.0/20');
  assert.equal(pools.length, 31);
});

test('the first pool overlapping nothing in use is chosen', () => {
  assert.equal(chooseLocalSubnet(['172.17.0.0/16', '172.18.0.0/16']), '172.19.0.0/16');
  assert.equal(
    chooseLocalSubnet(['172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16', '172.21.0.0/16']),
    '172.20.0.0/16',
  );
  // A small user subnet inside a pool takes the whole pool out.
  assert.equal(chooseLocalSubnet(['172.17.0.0/16', '172.18.3.0/24']), '172.19.0.0/16');
  // A big one spanning several.
  assert.equal(chooseLocalSubnet(['172.16.0.0/12']), '192.168.0.0/20');
  assert.equal(chooseLocalSubnet(['172.16.0.0/12', '192.168.0.0/19']), '192.168.32.0/20');
  assert.equal(chooseLocalSubnet(['172.16.0.0/12', '192.168.0.0/16']), undefined);
});

test("gateway is the subnet's first host; --ip claims an exact address once", () => {
  assert.equal(firstHost('172.19.0.0/16'), '172.19.0.1');
  assert.equal(firstHost('10.77.0.128/25'), '10.77.0.129');
  const pool = AddressPool.empty('10.78.0.0/24', ['10.78.0.1']);
  assert.equal(pool.claim('a', '10.78.0.50'), '10.78.0.50');
  assert.equal(pool.claim('a', '10.78.0.50'), '10.78.0.50', 'idempotent for its owner');
  assert.throws(() => pool.claim('b', '10.78.0.50'), /Address already in use/);
  assert.throws(() => pool.claim('b', '10.78.0.1'), /Address already in use/);
  assert.throws(() => pool.claim('b', '10.79.0.5'), /not in/);
  assert.equal(pool.allocate('c'), '10.78.0.2');
});

test('--ip-range: dynamic addresses only from the range, --ip anywhere in the subnet', () => {
  const pool = AddressPool.empty('10.80.0.0/24', ['10.80.0.1'], '10.80.0.128/30');
  assert.equal(pool.allocate('a'), '10.80.0.128');
  assert.equal(pool.claim('s', '10.80.0.7'), '10.80.0.7');
  assert.equal(pool.allocate('b'), '10.80.0.129');
  assert.equal(pool.allocate('c'), '10.80.0.130');
  assert.equal(pool.allocate('d'), '10.80.0.131');
  assert.throws(() => pool.allocate('e'), /no free address/);
  pool.release('b');
  assert.equal(pool.allocate('e'), '10.80.0.129');
});
