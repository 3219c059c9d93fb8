import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalIp6,
  contains6,
  formatSubnet6,
  overlaps6,
  parseIp6,
  parseSubnet6,
} from '../../../../src/engine/network/ipv6.js';
import { AddressPool6 } from '../../../../src/engine/network/ipam6.js';
import { mediaType } from '../../../../src/api/check-json.js';

test('IPv6 text: parsed and printed as Go prints it (RFC 5952)', () => {
  assert.equal(canonicalIp6('2001:0389:0000:0000:0000:0000:0000:F00D'), '2001:389::f00d');
  assert.equal(canonicalIp6('fd00:0:0:1:0:0:0:1'), 'fd00:0:0:1::1', 'the longest zero run is the one folded');
  assert.equal(canonicalIp6('1:0:1:0:1:0:1:0'), '1:0:1:0:1:0:1:0', 'a single zero group is not folded');
  assert.equal(canonicalIp6('::'), '::');
  assert.equal(canonicalIp6('::ffff:10.0.0.1'), '::ffff:a00:1');
  assert.equal(parseIp6('::1'), 1n);
  assert.throws(() => parseIp6('fe80::1%eth0'));
  assert.throws(() => parseIp6('10.0.0.1'));
});

test('IPv6 subnets: masked, contained, overlapping', () => {
  const s = parseSubnet6('2001:389::5/64');
  assert.equal(formatSubnet6(s), '2001:389::/64');
  assert.ok(contains6(s, '2001:389::ffff:1'));
  assert.ok(!contains6(s, '2001:389:0:1::1'));
  assert.ok(!contains6(s, '10.0.0.1'));
  assert.ok(overlaps6(s, parseSubnet6('2001:389::/96')));
  assert.ok(!overlaps6(s, parseSubnet6('2001:389:0:1::/64')));
});

test('IPv6 pool: in order from the range, gateway and network address skipped, claims checked, released ones reused later', () => {
  const p = AddressPool6.empty('2001:389::/64', ['2001:389::FFFF'], '2001:389::/96');
  assert.equal(p.allocate('a'), '2001:389::1');
  assert.equal(p.allocate('a'), '2001:389::1', 'an owner keeps its address');
  assert.equal(p.claim('b', '2001:389::F00D'), '2001:389::f00d');
  assert.throws(() => p.claim('c', '2001:389::f00d'), /Address already in use/);
  assert.throws(() => p.claim('c', '2001:389::ffff'), /Address already in use/, 'the gateway');
  assert.throws(() => p.claim('c', '2001:38a::1'), /is not in/);
  assert.equal(p.allocate('c'), '2001:389::2');
  assert.ok(p.release('a'));
  assert.equal(p.allocate('d'), '2001:389::3', 'round the pool, not the address just freed');
  const again = new AddressPool6(p.toJSON());
  assert.equal(again.allocate('e'), '2001:389::4', 'the state survives a restart');
});

test("Content-Type media types as Go's mime.ParseMediaType reads them", () => {
  assert.equal(mediaType('application/json'), 'application/json');
  assert.equal(mediaType(' Application/JSON ; charset=UTF-8'), 'application/json');
  assert.equal(mediaType('application/json;'), 'application/json', 'a trailing semicolon is allowed');
  assert.equal(mediaType('application/json; charset="utf-8"'), 'application/json');
  assert.equal(mediaType('text/plain'), 'text/plain');
  assert.equal(mediaType('application/json; charset'), undefined, 'a parameter without a value');
  assert.equal(mediaType('application/json/x'), undefined);
  assert.equal(mediaType(''), undefined);
});
