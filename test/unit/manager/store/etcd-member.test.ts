import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { waitForEtcd } from '../../../../src/manager/store/etcd-member.js';

/** A client whose reads fail after a short while, as one to a member that is not up. */
function unreachable(): Pick<Etcd3, 'get'> {
  const get = () => ({
    string: () => new Promise<string>((_, reject) => setTimeout(() => reject(new Error('14 UNAVAILABLE')), 50)),
  });
  // A stand-in for the one call waitForEtcd makes; the real builder has far more than it reads.
  return { get } as unknown as Pick<Etcd3, 'get'>;
}

test('a member that exits and is started again during the wait fails the start at once, not at the timeout', async () => {
  // The supervisor starts a dead member again within 0.5-10 s: at every check it looks running.
  const member = { running: true, exits: 0 };
  const t = setTimeout(() => member.exits++, 300);
  const t0 = Date.now();
  await assert.rejects(waitForEtcd(unreachable(), 20_000, member), /etcd exited during start/);
  clearTimeout(t);
  assert.ok(Date.now() - t0 < 10_000, `rejected after ${Date.now() - t0} ms`);
});

test('a member that is not running fails the start', async () => {
  await assert.rejects(waitForEtcd(unreachable(), 20_000, { running: false, exits: 1 }), /etcd exited during start/);
});

test('a member that never answers fails at the timeout with the last error', async () => {
  await assert.rejects(
    waitForEtcd(unreachable(), 500, { running: true, exits: 0 }),
    /did not become ready: 14 UNAVAILABLE/,
  );
});

test('a member that answers resolves', async () => {
  const client = { get: () => ({ string: () => Promise.resolve('') }) } as unknown as Pick<Etcd3, 'get'>;
  await waitForEtcd(client, 1000, { running: true, exits: 2 });
});
