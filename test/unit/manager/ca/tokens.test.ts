import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  generateJoinToken,
  parseJoinToken,
  rootDigest,
  tokensEqual,
  InvalidTokenError,
} from '../../../../src/manager/ca/tokens.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

test('join token is SWMTKN-1-<50 char digest>-<25 char secret>', () => {
  const t = generateJoinToken(PEM);
  assert.match(t, /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
  const p = parseJoinToken(t);
  assert.equal(p.digest, rootDigest(PEM));
  assert.notEqual(generateJoinToken(PEM), t);
});

test('digest is the base-36 sha256 of the root certificate, zero padded', () => {
  const d = rootDigest(PEM);
  assert.equal(d.length, 50);
  const hex = BigInt('0x' + require_sha256(PEM));
  assert.equal(BigInt(parseBase36(d)), hex);
});

test('malformed tokens are refused', () => {
  for (const t of [
    '',
    'SWMTKN-1-abc-def',
    'SWMTKN-2-' + 'a'.repeat(50) + '-' + 'b'.repeat(25),
    'XXX-1-' + 'a'.repeat(50) + '-' + 'b'.repeat(25),
  ]) {
    assert.throws(() => parseJoinToken(t), InvalidTokenError);
  }
});

test('token comparison', () => {
  assert.ok(tokensEqual('abc', 'abc'));
  assert.ok(!tokensEqual('abc', 'abd'));
  assert.ok(!tokensEqual('abc', 'abcd'));
});

import { createHash } from 'node:crypto';
function require_sha256(s: string) {
  return createHash('sha256').update(s).digest('hex');
}
function parseBase36(s: string): bigint {
  let n = 0n;
  for (const ch of s) n = n * 36n + BigInt(parseInt(ch, 36));
  return n;
}
