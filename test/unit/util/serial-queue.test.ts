import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedLock, SerialQueue } from '../../../src/util/serial-queue.js';

/** A promise and the function that settles it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

test('SerialQueue runs jobs one at a time in order', async () => {
  const q = new SerialQueue();
  const seen: string[] = [];
  const g = gate();
  const a = q.run(async () => {
    seen.push('a start');
    await g.wait;
    seen.push('a end');
    return 1;
  });
  const b = q.run(async () => {
    seen.push('b');
    return 2;
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['a start'], 'b waits for a');
  g.open();
  assert.deepEqual(await Promise.all([a, b]), [1, 2]);
  assert.deepEqual(seen, ['a start', 'a end', 'b']);
});

test('SerialQueue: a failed job rejects its own caller only and the next job still runs', async () => {
  const q = new SerialQueue();
  const failed = q.run(async () => {
    throw new Error('boom');
  });
  const next = q.run(async () => 'ran');
  await assert.rejects(failed, /boom/);
  assert.equal(await next, 'ran');
  await q.idle(); // never rejects
});

test('SerialQueue.idle waits for the jobs queued before it', async () => {
  const q = new SerialQueue();
  const g = gate();
  let done = false;
  const job = q.run(async () => {
    await g.wait;
    done = true;
  });
  const idle = q.idle().then(() => done);
  g.open();
  assert.equal(await idle, true);
  await job;
});

test('KeyedLock serializes one key and lets other keys run side by side', async () => {
  const lock = new KeyedLock();
  const seen: string[] = [];
  const g = gate();
  const a1 = lock.run('a', async () => {
    seen.push('a1 start');
    await g.wait;
    seen.push('a1 end');
  });
  const a2 = lock.run('a', async () => void seen.push('a2'));
  const b = lock.run('b', async () => void seen.push('b'));
  await b;
  assert.deepEqual(seen, ['a1 start', 'b'], 'b ran while a1 held key a; a2 waits');
  assert.equal(lock.busy('a'), true);
  g.open();
  await Promise.all([a1, a2]);
  assert.deepEqual(seen, ['a1 start', 'b', 'a1 end', 'a2']);
});

test('KeyedLock forgets a key once its last job is done, also after a failure', async () => {
  const lock = new KeyedLock();
  await assert.rejects(
    lock.run('k', async () => {
      throw new Error('no');
    }),
    /no/,
  );
  assert.equal(await lock.run('k', async () => 'after'), 'after');
  await lock.idle();
  await new Promise((r) => setImmediate(r));
  assert.equal(lock.busy('k'), false);
});

test('KeyedLock.idle waits for every key', async () => {
  const lock = new KeyedLock();
  const g = gate();
  let finished = 0;
  const jobs = ['x', 'y'].map((k) =>
    lock.run(k, async () => {
      await g.wait;
      finished++;
    }),
  );
  const idle = lock.idle().then(() => finished);
  g.open();
  assert.equal(await idle, 2);
  await Promise.all(jobs);
});
