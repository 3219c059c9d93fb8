import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPool, PoolExhaustedError } from '../../../../src/engine/network/ipam.js';
import { contains, formatSubnet, hostAt, macFromIp, overlaps, parseIp, parseSubnet } from '../../../../src/net/ipv4.js';

test('IPv4 parsing and formatting', () => {
  assert.equal(parseIp('172.17.0.2'), 0xac110002);
  assert.equal(formatSubnet(parseSubnet('192.168.99.77/24')), '192.168.99.0/24');
  assert.equal(hostAt(parseSubnet('10.1.0.0/16'), 258), '10.1.1.2');
  assert.ok(contains(parseSubnet('172.17.0.0/16'), '172.17.255.254'));
  assert.ok(!contains(parseSubnet('172.17.0.0/16'), '172.18.0.1'));
  assert.ok(overlaps(parseSubnet('10.0.0.0/8'), parseSubnet('10.99.0.0/24')));
  assert.ok(!overlaps(parseSubnet('192.168.99.0/24'), parseSubnet('172.17.0.0/16')));
  assert.throws(() => parseIp('1.2.3.256'));
  assert.throws(() => parseSubnet('1.2.3.0/33'));
  assert.throws(() => parseSubnet('1.2.3.0'));
});

test('MAC derived from the address as Docker does', () => {
  assert.equal(macFromIp('172.17.0.2'), '02:42:ac:11:00:02');
  assert.equal(macFromIp('10.0.1.255'), '02:42:0a:00:01:ff');
});

test('pool skips network, gateway and broadcast, and is idempotent per owner', () => {
  const pool = AddressPool.empty('172.17.0.0/16', ['172.17.0.1']);
  assert.equal(pool.allocate('a'), '172.17.0.2');
  assert.equal(pool.allocate('b'), '172.17.0.3');
  assert.equal(pool.allocate('a'), '172.17.0.2');
  assert.deepEqual(pool.owners().sort(), ['a', 'b']);
});

test('a freed address is not handed out again before the pool wraps round', () => {
  const pool = AddressPool.empty('10.9.0.0/29', ['10.9.0.1']); // hosts .2 … .6
  assert.equal(pool.allocate('a'), '10.9.0.2');
  assert.equal(pool.allocate('b'), '10.9.0.3');
  assert.ok(pool.release('a'));
  assert.ok(!pool.release('a'));
  assert.equal(pool.allocate('c'), '10.9.0.4');
  assert.equal(pool.allocate('d'), '10.9.0.5');
  assert.equal(pool.allocate('e'), '10.9.0.6');
  assert.equal(
    pool.allocate('f'),
    '10.9.0.2',
    'wraps round to the freed address, never .7 (broadcast) or .1 (gateway)',
  );
  assert.throws(() => pool.allocate('g'), PoolExhaustedError);
});

test('pool state survives a JSON round trip (a daemon restart)', () => {
  const pool = AddressPool.empty('172.17.0.0/16', ['172.17.0.1']);
  pool.allocate('a');
  pool.allocate('b');
  pool.release('a');
  const again = new AddressPool(JSON.parse(JSON.stringify(pool.toJSON())));
  assert.equal(again.addressOf('b'), '172.17.0.3');
  assert.equal(again.addressOf('a'), undefined);
  assert.equal(again.allocate('c'), '172.17.0.4');
});
