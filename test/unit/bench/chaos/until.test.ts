import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../../../../bench/chaos/until.js';

test('until gives up at its deadline even while an attempt is still pending', { timeout: 10_000 }, async () => {
  const t0 = Date.now();
  // A probe that never answers, like `docker node ls` on a swarm without quorum.
  const r = await until(300, () => new Promise<boolean>(() => {}));
  assert.equal(r, undefined);
  assert.ok(Date.now() - t0 < 5000, `until took ${Date.now() - t0} ms`);
});

test('until answers the time the condition first held', async () => {
  let n = 0;
  const r = await until(5000, async () => ++n === 3, 10);
  assert.equal(typeof r, 'number');
  assert.equal(n, 3);
});
