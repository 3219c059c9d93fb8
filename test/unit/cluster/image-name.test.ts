import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullImageName, namesImage } from '../../../src/cluster/image-name.js';

const D = `sha256:${'d'.repeat(64)}`;
const ID = `sha256:${'1'.repeat(64)}`;

test('references in the full form nodes report them', () => {
  assert.deepEqual(fullImageName('busybox'), { name: 'docker.io/library/busybox', tag: 'latest' });
  assert.deepEqual(fullImageName('me/app:2'), { name: 'docker.io/me/app', tag: '2' });
  assert.deepEqual(fullImageName('reg:5000/app'), { name: 'reg:5000/app', tag: 'latest' });
  assert.deepEqual(fullImageName('localhost/app:1'), { name: 'localhost/app', tag: '1' });
  assert.deepEqual(fullImageName(`10.0.0.1:5000/a/b:1@${D}`), { name: '10.0.0.1:5000/a/b', tag: '1', digest: D });
  assert.deepEqual(fullImageName(`app@${D}`), { name: 'docker.io/library/app', digest: D });
});

test('a service image names a held image by digest (image ID or manifest), else by tag', () => {
  const refs = ['reg:5000/app:1', `reg:5000/app@${D}`];
  assert.ok(namesImage(`reg:5000/app:1@${D}`, ID, refs));
  assert.ok(namesImage(`reg:5000/app:9@${ID}`, ID, []));
  assert.ok(namesImage('reg:5000/app:1', ID, refs));
  assert.ok(!namesImage('reg:5000/app:2', ID, refs));
  assert.ok(!namesImage(`reg:5000/app:1@sha256:${'e'.repeat(64)}`, ID, refs));
});
