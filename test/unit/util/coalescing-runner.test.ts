import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescingRunner } from '../../../src/util/coalescing-runner.js';

/** Settles after `n` turns of the microtask queue. */
const ticks = async (n: number) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

test('kicks during a pass make one more pass, not one each', async () => {
  let passes = 0;
  let release!: () => void;
  const runner = new CoalescingRunner(async () => {
    passes++;
    if (passes === 1) await new Promise<void>((r) => (release = r));
  });
  const first = runner.kick();
  await ticks(1);
  const waits = [runner.kick(), runner.kick(), runner.kick()];
  release();
  await Promise.all([first, ...waits]);
  assert.equal(passes, 2);
});

test('a kick at any microtask after the last pass ends is served by a pass that starts after it', async () => {
  // The start hook's case: its kick lands while the previous run is finishing; the pass it waits
  // for must still be one that sees its container.
  for (let delay = 0; delay < 12; delay++) {
    let passes = 0;
    const runner = new CoalescingRunner(async () => {
      passes++;
    });
    const first = runner.kick();
    let kicked: Promise<void> | undefined;
    let passesAtKick = -1;
    const kickLater = ticks(delay).then(() => {
      passesAtKick = passes;
      kicked = runner.kick();
    });
    await first;
    await ticks(20);
    await kickLater;
    await kicked;
    assert.ok(
      passes > passesAtKick,
      `kick after ${delay} microtasks: ${passes} passes, ${passesAtKick} before the kick`,
    );
  }
});

test('a failing pass ends the run; the next kick starts a new one', async () => {
  let passes = 0;
  const runner = new CoalescingRunner(async () => {
    passes++;
    if (passes === 1) throw new Error('boom');
  });
  await assert.rejects(runner.kick(), /boom/);
  await runner.kick();
  assert.equal(passes, 2);
  await runner.idle();
});
