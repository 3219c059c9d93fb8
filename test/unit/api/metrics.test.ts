import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMetricsAddr } from '../../../src/api/metrics.js';

test('--metrics-addr takes HOST:PORT, IPv6 in brackets, and refuses anything else', () => {
  assert.deepEqual(parseMetricsAddr('127.0.0.1:9323'), { host: '127.0.0.1', port: 9323 });
  assert.deepEqual(parseMetricsAddr('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
  assert.deepEqual(parseMetricsAddr('[::1]:9323'), { host: '::1', port: 9323 });
  for (const bad of ['nonsense', ':9323', '127.0.0.1:', '127.0.0.1:x', '127.0.0.1:70000'])
    assert.throws(() => parseMetricsAddr(bad), /--metrics-addr .*: want HOST:PORT/, bad);
});
