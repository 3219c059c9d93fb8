import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StoreLoop } from '../../../src/manager/loop.js';
import { VersionConflict, type StoreEvent } from '../../../src/manager/store/store.js';
import { createLogger } from '../../../src/util/log.js';
import { MemoryStore } from '../../helpers/memory-store.js';
import { makeNode, until } from '../../helpers/swarm-fixtures.js';

const log = createLogger('test', 'silent');

class Probe extends StoreLoop {
  passes = 0;
  conflicts = 0;
  wakeIn?: number;
  constructor(store: MemoryStore, debounce: number) {
    super(store, log, debounce, 1000);
  }
  protected observe(events: StoreEvent[]): boolean {
    return events.some((e) => e.kind === 'nodes');
  }
  protected async tick(): Promise<void> {
    this.passes++;
    if (this.conflicts > 0) {
      this.conflicts--;
      throw new VersionConflict('raced');
    }
    if (this.wakeIn !== undefined) {
      const at = Date.now() + this.wakeIn;
      this.wakeIn = undefined;
      this.kickAt(at);
    }
  }
  wakeUpAt(ms: number) {
    this.kickAt(ms);
  }
}

test('a burst of events costs one debounced pass', async () => {
  const store = new MemoryStore();
  const p = new Probe(store, 50);
  p.run();
  await p.idle();
  const first = p.passes;
  for (let i = 0; i < 20; i++) await store.commit([{ kind: 'nodes', op: 'create', object: makeNode(`n${i}`) }]);
  await until('a pass', () => p.passes > first);
  await p.idle();
  assert.equal(p.passes, first + 1);
  await p.stop();
});

test('a pass that lost a version race runs again; irrelevant events do not wake it', async () => {
  const store = new MemoryStore();
  const p = new Probe(store, 0);
  p.conflicts = 2;
  p.run();
  await until('three passes', () => p.passes === 3);
  await p.idle();
  assert.equal(p.passes, 3);
  await store.commit([
    {
      kind: 'cluster',
      op: 'create',
      object: { ID: 'c', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: {} } as never,
    },
  ]);
  await p.idle();
  assert.equal(p.passes, 3);
  await p.stop();
});

test('kickAt: the earliest wake-up wins, and stop cancels it', async () => {
  const store = new MemoryStore();
  const p = new Probe(store, 0);
  p.run();
  await p.idle();
  const n = p.passes;
  p.wakeUpAt(Date.now() + 10_000);
  p.wakeUpAt(Date.now() + 30);
  await until('woken', () => p.passes === n + 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(p.passes, n + 1, 'one wake-up, not two');
  p.wakeUpAt(Date.now() + 20);
  await p.stop();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(p.passes, n + 1);
});

test('a pass that asks for another before its first await still runs alone, then once more', async () => {
  class Chunked extends StoreLoop {
    passes = 0;
    running = 0;
    maxRunning = 0;
    left = 3;
    constructor(store: MemoryStore) {
      super(store, log, 0, 1000);
    }
    protected observe(): boolean {
      return false;
    }
    protected async tick(): Promise<void> {
      this.passes++;
      this.running++;
      this.maxRunning = Math.max(this.maxRunning, this.running);
      // Part of the work done, more to come: ask for the next pass synchronously.
      if (--this.left > 0) this.kick(0);
      await new Promise((r) => setTimeout(r, 20));
      this.running--;
    }
  }
  const p = new Chunked(new MemoryStore());
  p.run();
  try {
    await until('all chunks', () => p.left === 0);
    await p.idle();
    assert.equal(p.maxRunning, 1);
    assert.equal(p.passes, 3);
  } finally {
    await p.stop();
  }
});
