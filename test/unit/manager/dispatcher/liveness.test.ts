import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Node } from '../../../../src/cluster/types.js';
import { LIVENESS_PREFIX, livenessLoop, type LivenessKeys } from '../../../../src/manager/dispatcher/liveness.js';
import { createLogger } from '../../../../src/util/log.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { waitFor } from '../../../helpers/process.js';

/**
 * Liveness keys as etcd keeps them, in memory: puts and deletes reach the watcher in order.
 * `afterSnapshot` runs once the sweep has read the keys: the test orders a registration there.
 */
class Keys {
  readonly keys = new Set<string>();
  readonly watcher = Object.assign(new EventEmitter(), { cancel: async () => undefined });
  afterSnapshot?: () => void;

  put(id: string): void {
    this.keys.add(LIVENESS_PREFIX + id);
    this.watcher.emit('put', { key: Buffer.from(LIVENESS_PREFIX + id) });
  }

  client(): LivenessKeys {
    const client = {
      watch: () => ({ prefix: () => ({ create: async () => this.watcher }) }),
      getAll: () => ({
        prefix: () => ({
          keys: async () => {
            const snapshot = [...this.keys];
            this.afterSnapshot?.();
            return snapshot;
          },
        }),
      }),
      get: (key: string) => ({ string: async () => (this.keys.has(key) ? 'session' : null) }),
    };
    // The loop's reads only: the three calls it makes, with etcd3's chained builders.
    return client as unknown as LivenessKeys;
  }
}

const node = (id: string): Node => ({
  ID: id,
  Version: { Index: 0 },
  CreatedAt: '',
  UpdatedAt: '',
  Spec: { Role: 'manager', Availability: 'active' },
  Status: { State: 'ready' },
});

async function runSweep(keys: Keys, store: MemoryStore): Promise<AbortController> {
  const signal = new AbortController();
  const loop = livenessLoop(keys.client(), () => 10);
  Promise.resolve(loop({ store, log: createLogger('test', 'silent'), signal: signal.signal, nodeId: 'leader' })).catch(
    (e: unknown) => assert.fail(`the loop failed: ${String(e)}`),
  );
  return signal;
}

test("a new leader's sweep leaves Ready a node whose session registered between the sweep's read and its mark", async () => {
  const store = new MemoryStore();
  await store.commit([
    { kind: 'nodes', op: 'create', object: node('restarted') },
    { kind: 'nodes', op: 'create', object: node('gone') },
  ]);
  const keys = new Keys();
  // The killed leader's daemon, restarted, registers just after the new leader read the keys.
  keys.afterSnapshot = () => keys.put('restarted');
  const signal = await runSweep(keys, store);
  try {
    await waitFor(
      'the silent node marked Down',
      async () => store.get('nodes', 'gone')?.Status.State === 'down',
      5000,
      5,
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(store.get('nodes', 'restarted')?.Status.State, 'ready');
  } finally {
    signal.abort();
  }
});

test('a node marked Down by the sweep comes back Ready when its key is put afterwards', async () => {
  const store = new MemoryStore();
  await store.commit([{ kind: 'nodes', op: 'create', object: node('late') }]);
  const keys = new Keys();
  const signal = await runSweep(keys, store);
  try {
    await waitFor('Down', async () => store.get('nodes', 'late')?.Status.State === 'down', 5000, 5);
    keys.put('late');
    await waitFor('Ready again', async () => store.get('nodes', 'late')?.Status.State === 'ready', 5000, 5);
  } finally {
    signal.abort();
  }
});
