import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Etcd3, Watcher } from 'etcd3';
import { ManagerDashboardToken } from '../../src/manager/dashboard-token.js';
import { dashboardToken, rotateDashboardToken } from '../../src/manager/control/dashboard-token.js';
import { createLogger } from '../../src/util/log.js';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/process.js';

// Two managers' copies of the swarm's dashboard token over a real etcd (Debian etcd-server) on
// loopback: the copy follows a rotation made by the other, by the watch and by a read when asked,
// and keeps following after etcd restarts or its watch ends.
const log = createLogger('test', 'warn');
const dek = randomBytes(32);
let etcd: TestEtcd;
let a: ManagerDashboardToken;
let b: ManagerDashboardToken;
/** The reads of the key made by b (its client counts them). */
let bReads = 0;
/** What b's listeners heard. */
const heard: (string | undefined)[] = [];

/** `client` with its `get` calls counted in bReads. */
function counted(client: Etcd3): Etcd3 {
  return new Proxy(client, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver);
      if (key !== 'get' || typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        bReads++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

before(async () => {
  etcd = await startTestEtcd('dashtok', log);
  a = new ManagerDashboardToken(etcd.client(), () => dek, log);
  b = new ManagerDashboardToken(counted(etcd.client()), () => dek, log);
  await a.start();
  await b.start();
  b.onChange((t) => heard.push(t));
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await etcd?.stop();
});

test('one token: made by one manager, read by the other at once (confirmed) and followed by its watch', async () => {
  const t = await dashboardToken(a);
  assert.equal(await b.confirmed(), t, 'a read begun after the write sees it');
  await waitFor('b holds the token', () => b.current() === t, 10_000, 50);
  assert.equal(await dashboardToken(b), t, 'the other manager makes no second token');
  const r = await rotateDashboardToken(a);
  assert.notEqual(r, t);
  assert.equal(await b.confirmed(), r);
  assert.equal(b.current(), r);
  assert.equal(heard.at(-1), r, "b's listeners heard the rotation");
});

test('confirmed() is shared and rate-limited: 50 askers at once cost at most two reads', async () => {
  await new Promise((r) => setTimeout(r, 300));
  const before = bReads;
  const got = await Promise.all(Array.from({ length: 50 }, () => b.confirmed()));
  assert.ok(got.every((t) => t === a.current()));
  assert.ok(bReads - before <= 2, `${bReads - before} reads`);
});

test('a watch that ends unasked is made again, and a rotation after it still reaches the copy', async () => {
  // What etcd's cancel of a watch does to the client (a compacted revision): the watch ends.
  const w = (b as unknown as { watcher: Watcher }).watcher;
  await w.cancel();
  await waitFor(
    'a new watch',
    () => {
      const now = (b as unknown as { watcher?: Watcher }).watcher;
      return !!now && now !== w;
    },
    10_000,
    50,
  );
  const r = await rotateDashboardToken(a);
  await waitFor('b follows the rotation', () => b.current() === r, 10_000, 50);
});

test('etcd restarted: the copy follows a rotation made after (the watch reattaches, a read backs it)', async () => {
  await etcd.member.stop();
  await etcd.member.start();
  let r = '';
  await waitFor(
    'a rotation once etcd answers',
    async () => {
      try {
        r = await rotateDashboardToken(a);
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    250,
  );
  await waitFor('b follows the rotation', () => b.current() === r, 20_000, 100);
  assert.equal(heard.at(-1), r);
});
