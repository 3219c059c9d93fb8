import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newHexId, newSwarmId } from '../../../src/util/ids.js';

test('swarm IDs are 25 base-36 characters, as SwarmKit makes them, and do not repeat (pooled randomness included)', () => {
  const seen = new Set<string>();
  // More than one 4 KiB pool's worth (256 IDs each).
  for (let i = 0; i < 2000; i++) {
    const id = newSwarmId();
    assert.match(id, /^[0-9a-z]{25}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 2000);
  assert.match(newHexId(), /^[0-9a-f]{64}$/);
});
