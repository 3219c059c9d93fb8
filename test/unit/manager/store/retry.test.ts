import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFLICT_ATTEMPTS, retryOnConflict } from '../../../../src/manager/store/retry.js';
import { VersionConflict } from '../../../../src/manager/store/store.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode } from '../../../helpers/swarm-fixtures.js';

/** A labelling read-modify-write that loses to another writer on its first `losses` attempts. */
function labelWrite(store: MemoryStore, losses: number) {
  let attempts = 0;
  const write = async () => {
    attempts++;
    const n = store.get('nodes', 'n1')!;
    if (attempts <= losses) {
      // Another writer commits between our read and our write: our Version is now stale.
      const other = store.get('nodes', 'n1')!;
      other.Spec.Labels = { ...other.Spec.Labels, [`other${attempts}`]: 'x' };
      await store.commit([{ kind: 'nodes', op: 'update', object: other }]);
    }
    n.Spec.Labels = { ...n.Spec.Labels, mine: 'yes' };
    await store.commit([{ kind: 'nodes', op: 'update', object: n }]);
    return n.Spec.Labels;
  };
  return { write, attempts: () => attempts };
}

async function storeWithNode(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('n1') }]);
  return store;
}

test('a write that lost to another is made again on the newer object, and its result returned', async () => {
  const store = await storeWithNode();
  const w = labelWrite(store, 2);
  const labels = await retryOnConflict(w.write);
  assert.equal(w.attempts(), 3);
  assert.deepEqual(labels, { other1: 'x', other2: 'x', mine: 'yes' });
  // Nothing the other writer wrote is lost.
  assert.deepEqual(store.get('nodes', 'n1')!.Spec.Labels, { other1: 'x', other2: 'x', mine: 'yes' });
});

test('gives up after N attempts: the last VersionConflict, or what `exhausted` says', async () => {
  const store = await storeWithNode();
  const w = labelWrite(store, 100);
  await assert.rejects(retryOnConflict(w.write, { attempts: 3 }), VersionConflict);
  assert.equal(w.attempts(), 3);
  assert.equal(store.get('nodes', 'n1')!.Spec.Labels?.mine, undefined);

  const byDefault = labelWrite(store, 100);
  await assert.rejects(retryOnConflict(byDefault.write), VersionConflict);
  assert.equal(byDefault.attempts(), CONFLICT_ATTEMPTS);

  const quiet = labelWrite(store, 100);
  const given = await retryOnConflict(quiet.write, { attempts: 2, exhausted: () => ({ gaveUp: 'yes' }) });
  assert.deepEqual(given, { gaveUp: 'yes' });
  assert.equal(quiet.attempts(), 2);
});

test('any other error is thrown at once, never retried', async () => {
  let attempts = 0;
  const boom = new Error('etcd down');
  await assert.rejects(
    retryOnConflict(async () => {
      attempts++;
      throw boom;
    }),
    (e) => e === boom,
  );
  assert.equal(attempts, 1);
});
