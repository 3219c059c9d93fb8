import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Runc } from '../../../../src/engine/containers/runtime.js';

/** A runc state root with one container's exec.fifo, as `runc create` leaves it. */
function fifoRoot(id: string): { root: string; fifo: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-runc-'));
  fs.mkdirSync(path.join(root, id));
  const fifo = path.join(root, id, 'exec.fifo');
  const r = spawnSync('mkfifo', [fifo]);
  assert.equal(r.status, 0, String(r.stderr));
  return { root, fifo };
}

test('start: a program that ran and ended between the fifo read and the liveness check started (docker run --rm … cat)', async () => {
  const { root, fifo } = fifoRoot('c1');
  try {
    let writer: number | undefined;
    // The init's whole life in the window: its byte is written, then it is gone.
    const lives = () => {
      writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.writeSync(writer, Buffer.from([0]));
      fs.closeSync(writer);
      return false;
    };
    await new Runc(root).start('c1', 4_000_000, lives);
    assert.ok(writer !== undefined, 'the liveness check ran');
    assert.equal(fs.existsSync(fifo), false, 'the fifo is removed, as runc start does');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('start: an init that died without writing its byte is an error', async () => {
  const { root } = fifoRoot('c2');
  try {
    await assert.rejects(
      new Runc(root).start('c2', 4_000_000, () => false),
      /container process is already dead/,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
