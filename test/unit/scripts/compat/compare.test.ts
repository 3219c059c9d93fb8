import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerdOnly, parseArgs, type FileResult } from '../../../../scripts/compat/compare.js';
import { SUITE_FILES } from '../../../../scripts/compat/lists.js';

const P = 'tests/integration/api_network_test.py::TestNetworks::';

test('compat arguments: shoal by default, --daemon dockerd|both, stored results replace a run', () => {
  assert.deepEqual(parseArgs([]), {
    daemons: ['shoal'],
    files: [...SUITE_FILES],
    shoalResults: undefined,
    dockerdResults: undefined,
  });
  assert.deepEqual(parseArgs(['--daemon', 'both', 'api_network']).daemons, ['shoal', 'dockerd']);
  assert.deepEqual(parseArgs(['--daemon', 'both', 'api_network']).files, ['api_network']);
  const r = parseArgs(['--daemon', 'dockerd', '--shoal-results', '/tmp/x']);
  assert.deepEqual(r.daemons, ['dockerd']);
  assert.equal(r.shoalResults, '/tmp/x');
  assert.deepEqual(parseArgs(['--daemon', 'both', '--dockerd-results', '/tmp/y']).daemons, ['shoal']);
  assert.throws(() => parseArgs(['--daemon', 'podman']), /one of shoal, dockerd, both/);
  assert.throws(() => parseArgs(['api_nope']), /unknown suite file api_nope/);
});

test('compat comparison: what passes on dockerd and not on shoal, with shoal outcome', () => {
  const file = (cases: FileResult['cases']): FileResult[] => [
    { file: 'api_network', cases, deselected: 0, seconds: 1 },
  ];
  const shoal = file([
    { id: `${P}a`, outcome: 'passed', message: '' },
    { id: `${P}b`, outcome: 'failed', message: 'AssertionError' },
    { id: `${P}c`, outcome: 'skipped', message: 'no ipv6' },
    { id: `${P}e`, outcome: 'failed', message: 'x' },
  ]);
  const dockerd = file([
    { id: `${P}a`, outcome: 'passed', message: '' },
    { id: `${P}b`, outcome: 'passed', message: '' },
    { id: `${P}c`, outcome: 'passed', message: '' },
    { id: `${P}d`, outcome: 'passed', message: '' },
    { id: `${P}e`, outcome: 'failed', message: 'x' },
  ]);
  assert.deepEqual(dockerdOnly(shoal, dockerd), [
    { id: `${P}b`, shoal: 'failed: AssertionError' },
    { id: `${P}c`, shoal: 'skipped: no ipv6' },
    { id: `${P}d`, shoal: 'not run on shoal' },
  ]);
  assert.deepEqual(dockerdOnly(dockerd, dockerd), []);
});
