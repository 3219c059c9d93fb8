import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EtcdStore } from '../../src/manager/store/etcd-store.js';
import { HOLDER_CHECK_MS, LEADER_KEY, LeaderElection } from '../../src/manager/leader/election.js';
import { managerPortGone } from '../../src/manager/leader/holder-probe.js';
import { LeaderLost } from '../../src/manager/store/store.js';
import { createLogger } from '../../src/util/log.js';
import { waitFor } from '../helpers/process.js';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { makeNode } from '../helpers/swarm-fixtures.js';

// A leader whose manager is certainly gone is replaced without waiting out its lease, and its
// writes are refused from then on (fencing). A real etcd (Debian etcd-server) on loopback.
const log = createLogger('test', 'warn');
let etcd: TestEtcd;

before(async () => {
  etcd = await startTestEtcd('takeover', log);
});

after(async () => {
  await etcd?.stop();
});

test('a leader whose manager is gone loses its key at once, and its fenced writes are refused', async () => {
  // The old leader: its key on a lease that stays alive (as etcd extends a dead leader's lease).
  const oldClient = etcd.client();
  const oldLease = oldClient.lease(30);
  const put = await oldLease.put(LEADER_KEY).value('old').exec();
  const oldRev = put.header.revision;
  const oldStore = new EtcdStore(oldClient, log, { key: LEADER_KEY, createRevision: () => oldRev });
  await oldStore.start();
  await oldStore.commit([{ kind: 'nodes', op: 'create', object: makeNode('by-old-1') }], { fenced: true });

  let oldGone = false;
  const probed: string[] = [];
  const newManagerClient = etcd.client();
  const e = new LeaderElection(newManagerClient, 'new', log, async (id) => {
    probed.push(id);
    return id === 'old' && oldGone;
  });
  const newStore = new EtcdStore(newManagerClient, log, e);
  await newStore.start();
  e.start();
  try {
    // Alive (its port answers): the key stays its own, whatever the raft leader thinks.
    await waitFor('the holder probed a few times', async () => probed.length >= 3, 30_000, 50);
    assert.equal(e.isLeader, false);
    assert.equal(e.leaderId, 'old');
    assert.equal((await oldClient.get(LEADER_KEY).exec()).kvs[0]?.create_revision, oldRev);

    oldGone = true;
    await waitFor('the new manager leads', async () => e.isLeader, 30_000, HOLDER_CHECK_MS);
    assert.equal(e.leaderId, 'new');
    await assert.rejects(
      oldStore.commit([{ kind: 'nodes', op: 'create', object: makeNode('by-old-2') }], { fenced: true }),
      LeaderLost,
    );
    await newStore.commit([{ kind: 'nodes', op: 'create', object: makeNode('by-new') }], { fenced: true });
    assert.equal(await oldClient.get('/shoal/v1/nodes/by-old-2').string(), null, 'the old leader wrote');
    assert.ok(await oldClient.get('/shoal/v1/nodes/by-new').string());
  } finally {
    await e.stop();
    await oldLease.revoke().catch(() => undefined);
    await oldStore.close();
    await newStore.close();
  }
});

test("a manager's port: refused means gone, a listener means alive", async () => {
  const srv = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  assert.equal(await managerPortGone(`127.0.0.1:${port}`), false);
  await new Promise<void>((r) => srv.close(() => r()));
  assert.equal(await managerPortGone(`127.0.0.1:${port}`), true);
  assert.equal(await managerPortGone('not-an-address'), false);
});
