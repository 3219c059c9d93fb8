import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiError, errorText, withFile } from '../../../src/util/errors.js';

/** What a real failed fs call throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('the call did not throw');
}

test("a Node.js system error reads as Go's os.PathError, as dockerd's answers do", () => {
  const missing = path.join(os.tmpdir(), 'shoal-error-text-missing', 'x');
  const e = thrown(() => fs.openSync(missing, 'r'));
  assert.match((e as Error).message, /^ENOENT: no such file or directory, open '/);
  assert.equal(errorText(e), `open ${missing}: no such file or directory`);
});

test('a write through a file descriptor names the file it was given', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-error-text-'));
  try {
    fs.writeFileSync(path.join(dir, 'f'), '');
    const fd = fs.openSync(path.join(dir, 'f'), 'r');
    // Writing to a read-only descriptor: EBADF from write(2), which names no file.
    const e = thrown(() => fs.writeFileSync(fd, 'x'));
    fs.closeSync(fd);
    assert.equal(errorText(e), 'write: bad file descriptor');
    assert.equal(errorText(withFile(e, '/data/metadata.json')), 'write /data/metadata.json: bad file descriptor');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('other errors keep their message', () => {
  assert.equal(errorText(new ApiError(404, 'No such container: x')), 'No such container: x');
  assert.equal(errorText(new Error('plain')), 'plain');
  assert.equal(errorText('text'), 'text');
});
