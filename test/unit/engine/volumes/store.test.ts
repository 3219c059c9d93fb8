import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../../../src/util/log.js';
import { ANONYMOUS_LABEL, VolumeStore } from '../../../../src/engine/volumes/store.js';

// The volume store's bookkeeping on a scratch directory (no mounts: only plain local volumes).
const log = createLogger('test', 'silent');

function scratch(): { store: VolumeStore; root: string; done: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-vol-'));
  return { store: VolumeStore.open(root, log), root, done: () => fs.rmSync(root, { recursive: true, force: true }) };
}

test('prune: API 1.41 removes every unused volume; 1.42 only anonymous ones unless all=true', async () => {
  const { store, done } = scratch();
  try {
    const make = () => {
      store.create({ name: 'named1' });
      store.create({ name: 'inuse' });
      return store.create({}).Name;
    };
    store.setRefs((n) => (n === 'inuse' ? ['c1'] : []));
    let anon = make();
    assert.deepEqual((await store.prune(new Map(), '1.42')).VolumesDeleted, [anon]);
    assert.deepEqual(
      store
        .list()
        .map((v) => v.Name)
        .sort(),
      ['inuse', 'named1'],
    );
    anon = make();
    assert.deepEqual(
      (await store.prune(new Map([['all', ['true']]]), '1.42')).VolumesDeleted.sort(),
      [anon, 'named1'].sort(),
    );
    anon = make();
    assert.deepEqual((await store.prune(new Map(), '1.41')).VolumesDeleted.sort(), [anon, 'named1'].sort());
    assert.deepEqual(
      store.list().map((v) => v.Name),
      ['inuse'],
    );
    await assert.rejects(store.prune(new Map([['dangling', ['true']]]), '1.41'), /invalid filter 'dangling'/);
  } finally {
    done();
  }
});

test('list filters; anonymous label; in-use refusal; metadata survives reopening', async () => {
  const { store, root, done } = scratch();
  try {
    store.create({ name: 'web-data', labels: { app: 'web' } });
    store.create({ name: 'db-data', labels: { app: 'db' } });
    const anon = store.create({});
    assert.deepEqual(anon.Labels, { [ANONYMOUS_LABEL]: '' });
    store.setRefs((n) => (n === 'db-data' ? ['abc'] : []));
    assert.deepEqual(
      store.list(new Map([['label', ['app=web']]])).map((v) => v.Name),
      ['web-data'],
    );
    assert.deepEqual(
      store
        .list(new Map([['label', ['app']]]))
        .map((v) => v.Name)
        .sort(),
      ['db-data', 'web-data'],
    );
    assert.deepEqual(
      store.list(new Map([['dangling', ['false']]])).map((v) => v.Name),
      ['db-data'],
    );
    assert.deepEqual(
      store.list(new Map([['name', ['^web']]])).map((v) => v.Name),
      ['web-data'],
    );
    assert.throws(() => store.list(new Map([['bogus', ['x']]])), /invalid filter 'bogus'/);
    await assert.rejects(
      store.remove('db-data'),
      (e: Error & { status?: number }) => e.status === 409 && e.message === 'remove db-data: volume is in use - [abc]',
    );
    await assert.rejects(store.remove('db-data', true), /volume is in use/);
    await assert.rejects(
      store.remove('nope'),
      (e: Error & { status?: number }) => e.status === 404 && e.message === 'get nope: no such volume',
    );
    await store.remove('nope', true);
    assert.equal(
      store.create({ name: 'web-data', labels: { other: 'x' } }).Labels?.app,
      'web',
      'create of an existing name returns it as it is',
    );
    const again = VolumeStore.open(root, log);
    assert.deepEqual(again.get('web-data'), store.get('web-data'));
    assert.equal(again.list().length, 3);
  } finally {
    done();
  }
});
