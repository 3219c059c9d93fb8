import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  loadRecord,
  saveRecord,
  saveRecordAsync,
  type ContainerRecord,
} from '../../../../src/engine/containers/record.js';

const rec = (name: string) => ({ id: 'a'.repeat(64), name }) as unknown as ContainerRecord;

test('record writes: an older async write never replaces a newer one, and no temp file is left', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'record-test-'));
  try {
    const file = path.join(dir, 'config.json');
    const older = saveRecordAsync(file, rec('/first'));
    saveRecord(file, rec('/second'));
    await older;
    assert.equal(loadRecord(file)?.name, '/second');
    await Promise.all([saveRecordAsync(file, rec('/third')), saveRecordAsync(file, rec('/fourth'))]);
    assert.equal(loadRecord(file)?.name, '/fourth');
    assert.deepEqual(fs.readdirSync(dir), ['config.json']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
