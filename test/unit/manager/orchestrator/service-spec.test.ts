import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeSpec } from '../../../../src/manager/orchestrator/service-spec.js';

test("normalizeSpec: an empty update/rollback order or failure action becomes SwarmKit's zero value; given ones stay", () => {
  const s = normalizeSpec({
    Name: 'web',
    TaskTemplate: { ContainerSpec: { Image: 'micro' } },
    // What `docker stack deploy` sends when the compose file sets only parallelism.
    UpdateConfig: { Parallelism: 2, FailureAction: 'rollback', Order: 'start-first' },
    RollbackConfig: { Parallelism: 1, FailureAction: '' as 'pause', Order: '' as 'stop-first' },
  });
  assert.deepEqual(s.UpdateConfig, { Parallelism: 2, FailureAction: 'rollback', Order: 'start-first' });
  assert.deepEqual(s.RollbackConfig, { Parallelism: 1, FailureAction: 'pause', Order: 'stop-first' });
  assert.equal(normalizeSpec({ Name: 'x', TaskTemplate: {} }).UpdateConfig, undefined, 'absent stays absent');
});
