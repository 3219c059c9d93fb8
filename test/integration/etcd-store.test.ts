import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { EtcdStore } from '../../src/manager/store/etcd-store.js';
import {
  LeaderLost,
  StoreUnavailable,
  VersionConflict,
  WriteTimeout,
  type StoreEvent,
} from '../../src/manager/store/store.js';
import { createLogger } from '../../src/util/log.js';
import { ETCD_GOMEMLIMIT, etcdEnv } from '../../src/manager/store/etcd-member.js';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { makeNode } from '../helpers/swarm-fixtures.js';

// A real etcd (Debian etcd-server) on loopback with TLS from a fresh swarm CA.
const log = createLogger('test', 'warn');
let etcd: TestEtcd;
let client: Etcd3;
let store: EtcdStore;
let leaderRev: string | undefined;

before(async () => {
  etcd = await startTestEtcd('etcdstore', log);
  client = etcd.client();
  store = new EtcdStore(client, log, { key: '/shoal/leader', createRevision: () => leaderRev });
  await store.start();
});

after(async () => {
  await store?.close();
  await etcd?.stop();
});

test('create, read back with Version.Index = mod_revision, update with the right version only', async () => {
  await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('n1') }]);
  const n = store.get('nodes', 'n1')!;
  assert.ok(n.Version.Index > 0);
  const kv = await client.get('/shoal/v1/nodes/n1').exec();
  assert.equal(Number(kv.kvs[0].mod_revision), n.Version.Index);
  await assert.rejects(store.commit([{ kind: 'nodes', op: 'create', object: makeNode('n1') }]), VersionConflict);
  await assert.rejects(
    store.commit([{ kind: 'nodes', op: 'update', object: { ...n, Version: { Index: n.Version.Index - 1 } } }]),
    VersionConflict,
  );
  n.Spec.Availability = 'drain';
  await store.commit([{ kind: 'nodes', op: 'update', object: n }]);
  assert.equal(store.get('nodes', 'n1')!.Spec.Availability, 'drain');
  assert.ok(store.get('nodes', 'n1')!.Version.Index > n.Version.Index);
});

test("etcd runs under Go's soft memory limit unless the operator set GOMEMLIMIT or GOGC", () => {
  const pid = fs.readFileSync(path.join(etcd.dir, 'etcd.pid'), 'utf8').trim();
  const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const want = etcdEnv(process.env).GOMEMLIMIT;
  if (want === undefined) assert.ok(!environ.some((e) => e.startsWith('GOMEMLIMIT=')));
  else assert.ok(environ.includes(`GOMEMLIMIT=${want}`), `etcd's environment: ${environ.join(' ')}`);
  assert.equal(etcdEnv({ PATH: '/bin' }).GOMEMLIMIT, ETCD_GOMEMLIMIT);
  assert.equal(etcdEnv({ GOMEMLIMIT: '1GiB' }).GOMEMLIMIT, '1GiB');
  assert.equal(etcdEnv({ GOGC: '50' }).GOMEMLIMIT, undefined);
});

test('view() shares the frozen cached objects; get() and list() return private copies', async () => {
  const shared = store.view('nodes').find((x) => x.ID === 'n1')!;
  assert.ok(Object.isFrozen(shared) && Object.isFrozen(shared.Spec));
  assert.throws(() => {
    shared.Spec.Availability = 'pause';
  }, TypeError);
  assert.equal(
    store.view('nodes').find((x) => x.ID === 'n1'),
    shared,
  );
  const copy = store.get('nodes', 'n1')!;
  copy.Spec.Availability = 'pause';
  assert.equal(shared.Spec.Availability, 'drain');
  assert.ok(!Object.isFrozen(store.list('nodes')[0]));
});

test('a failed batch writes nothing', async () => {
  const n1 = store.get('nodes', 'n1')!;
  await assert.rejects(
    store.commit([
      { kind: 'nodes', op: 'create', object: makeNode('n2') },
      { kind: 'nodes', op: 'update', object: { ...n1, Version: { Index: 1 } } },
    ]),
    VersionConflict,
  );
  assert.equal(store.get('nodes', 'n2'), undefined);
});

test('watchers see batches of events in commit order', async () => {
  const seen: StoreEvent[] = [];
  const stop = store.watch((evs) => seen.push(...evs));
  await store.commit([
    { kind: 'nodes', op: 'create', object: makeNode('w1') },
    { kind: 'nodes', op: 'create', object: makeNode('w2') },
  ]);
  await store.commit([{ kind: 'nodes', op: 'delete', id: 'w1' }]);
  stop();
  assert.deepEqual(
    seen.map((e) => `${e.action}:${e.object.ID}`),
    ['create:w1', 'create:w2', 'delete:w1'],
  );
});

test('fenced writes need the leader key this node created', async () => {
  leaderRev = undefined;
  await assert.rejects(
    store.commit([{ kind: 'nodes', op: 'create', object: makeNode('f1') }], { fenced: true }),
    LeaderLost,
  );
  const put = await client.put('/shoal/leader').value('m1').exec();
  leaderRev = put.header.revision;
  await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('f1') }], { fenced: true });
  await client.delete().key('/shoal/leader').exec();
  await client.put('/shoal/leader').value('other').exec();
  await assert.rejects(
    store.commit([{ kind: 'nodes', op: 'create', object: makeNode('f2') }], { fenced: true }),
    LeaderLost,
  );
  assert.equal(store.get('nodes', 'f2'), undefined);
});

test('a large batch is split into several transactions and fully applied', async () => {
  const changes = Array.from({ length: 2500 }, (_, i) => ({
    kind: 'tasks' as const,
    op: 'create' as const,
    object: {
      ID: `t${i}`,
      Version: { Index: 0 },
      CreatedAt: '',
      UpdatedAt: '',
      Spec: {},
      ServiceID: 's',
      Status: { Timestamp: '', State: 'new' as const, Message: '' },
      DesiredState: 'running' as const,
    },
  }));
  await store.commit(changes);
  assert.equal(store.list('tasks').length, 2500);
});

test('the task indexes follow the watch, and a store started later builds them from its first read', async () => {
  assert.equal(store.tasksBy('service', 's').length, 2500);
  assert.equal(store.tasksBy('state', 'new').length, 2500);
  const t = store.viewOne('tasks', 't7')!;
  await store.commit([
    { kind: 'tasks', op: 'update', object: { ...t, NodeID: 'n1', Status: { ...t.Status, State: 'assigned' } } },
  ]);
  assert.deepEqual(
    store.tasksBy('node', 'n1').map((x) => x.ID),
    ['t7'],
  );
  assert.equal(store.tasksBy('state', 'new').length, 2499);
  assert.equal(store.tasksBy('state', 'assigned')[0], store.viewOne('tasks', 't7'));
});

test('a second store started later loads everything', async () => {
  const s2 = new EtcdStore(client, log);
  await s2.start();
  assert.equal(s2.list('tasks').length, 2500);
  assert.deepEqual(
    s2.tasksBy('state', 'assigned').map((x) => x.ID),
    ['t7'],
  );
  assert.equal(s2.get('nodes', 'n1')!.Spec.Availability, 'drain');
  await s2.close();
});

test('a canceled watch (its revision compacted away) makes the cache read everything again and report the differences', async () => {
  const s3 = new EtcdStore(client, log);
  await s3.start();
  const seen: StoreEvent[] = [];
  s3.watch((evs) => seen.push(...evs));
  // The watch is gone (as when etcd cancels it): changes made now reach s3 only by a resync.
  const w = (s3 as unknown as { watcher: { cancel(): Promise<void>; emit(e: string, err: Error): void } }).watcher;
  await w.cancel();
  await client
    .put('/shoal/v1/nodes/late')
    .value(JSON.stringify(makeNode('late')))
    .exec();
  await client.delete().key('/shoal/v1/nodes/w2').exec();
  const n1 = s3.viewOne('nodes', 'n1')!;
  await client
    .put('/shoal/v1/nodes/n1')
    .value(JSON.stringify({ ...n1, Spec: { ...n1.Spec, Availability: 'pause' } }))
    .exec();
  const rev = (await client.get('/shoal/v1/nodes/n1').exec()).header.revision;
  await client.kv.compact({ revision: rev, physical: true });
  assert.equal(s3.viewOne('nodes', 'late'), undefined, 'stale until the resync');
  // What etcd sends when a watch's revision was compacted.
  w.emit('error', new Error('Watcher canceled: mvcc: required revision has been compacted'));
  const deadline = Date.now() + 10_000;
  while (!s3.viewOne('nodes', 'late') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(s3.viewOne('nodes', 'late'));
  assert.equal(s3.viewOne('nodes', 'w2'), undefined);
  assert.equal(s3.viewOne('nodes', 'n1')!.Spec.Availability, 'pause');
  assert.deepEqual(seen.map((e) => `${e.action}:${e.object.ID}`).sort(), ['create:late', 'delete:w2', 'update:n1']);
  // And it watches on from there.
  await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('after') }]);
  while (!s3.viewOne('nodes', 'after') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(s3.viewOne('nodes', 'after'));
  await s3.close();
});

test('a write answers by its deadline while etcd does not: an ambiguous timeout, never half applied', async () => {
  const pid = Number(fs.readFileSync(path.join(etcd.dir, 'etcd.pid'), 'utf8'));
  // A member that holds the request and never answers, as one without a raft leader does.
  process.kill(pid, 'SIGSTOP');
  let took: number;
  try {
    const t0 = Date.now();
    await assert.rejects(
      store.commit(
        [
          { kind: 'nodes', op: 'create', object: makeNode('dl1') },
          { kind: 'nodes', op: 'create', object: makeNode('dl2') },
        ],
        { deadlineMs: 3000 },
      ),
      (e: unknown) =>
        e instanceof WriteTimeout &&
        e.status === 500 &&
        e.message === 'rpc error: code = DeadlineExceeded desc = context deadline exceeded',
    );
    took = Date.now() - t0;
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  assert.ok(took < 3000 + 2000, `answered after ${took} ms with a 3 s deadline`);
  // Both objects or neither: a transaction is whole.
  const [a, b] = await Promise.all(['dl1', 'dl2'].map((id) => client.get(`/shoal/v1/nodes/${id}`).string()));
  assert.equal(a === null, b === null, 'one object of the transaction without the other');
  await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('dl3') }]);
  assert.ok(store.get('nodes', 'dl3'), 'writes work again');
});

test('a member killed under the store is started again, and writes work again', async () => {
  const pid = Number(fs.readFileSync(path.join(etcd.dir, 'etcd.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await store.commit([{ kind: 'nodes', op: 'create', object: makeNode('after-kill') }], { deadlineMs: 2000 });
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  assert.notEqual(Number(fs.readFileSync(path.join(etcd.dir, 'etcd.pid'), 'utf8')), pid, 'a new etcd process');
  assert.ok(store.get('nodes', 'after-kill'));
});

// Last: it stops the member.
test("with the member gone a write fails at once with Docker's no-leader error, writing nothing", async () => {
  await etcd.member.stop();
  const t0 = Date.now();
  await assert.rejects(
    store.commit([{ kind: 'nodes', op: 'create', object: makeNode('gone1') }]),
    (e: unknown) => e instanceof StoreUnavailable && /The swarm does not have a leader/.test((e as Error).message),
  );
  assert.ok(Date.now() - t0 < 10_000);
});
