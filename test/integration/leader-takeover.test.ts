import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import type { Etcd3 } from 'etcd3';
import { createRootCA, signNodeCert } from '../../src/manager/ca/root-ca.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/cluster/pki.js';
import { EtcdMember, etcdClient, waitForEtcd, type EtcdClientTls } from '../../src/manager/store/etcd-member.js';
import { EtcdStore } from '../../src/manager/store/etcd-store.js';
import { HOLDER_CHECK_MS, LEADER_KEY, LeaderElection } from '../../src/manager/leader/election.js';
import { managerPortGone } from '../../src/manager/leader/holder-probe.js';
import { LeaderLost } from '../../src/manager/store/store.js';
import type { Node } from '../../src/cluster/types.js';
import { createLogger } from '../../src/util/log.js';
import { uniqueName } from '../helpers/netns.js';
import { TEST_ROOT } from '../helpers/daemon.js';
import { waitFor } from '../helpers/process.js';

// A leader whose manager is certainly gone is replaced without waiting out its lease, and its
// writes are refused from then on (fencing). A real etcd (Debian etcd-server) on loopback.
const log = createLogger('test', 'warn');
const dir = path.join(TEST_ROOT, uniqueName('takeover'));
let member: EtcdMember;
let tls: EtcdClientTls;
let clientPort: number;
const clients: Etcd3[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

const newClient = () => {
  const c = etcdClient([`https://127.0.0.1:${clientPort}`], tls);
  clients.push(c);
  return c;
};

const node = (id: string): Node => ({
  ID: id,
  Version: { Index: 0 },
  CreatedAt: '',
  UpdatedAt: '',
  Spec: { Role: 'worker', Availability: 'active' },
  Status: { State: 'ready' },
});

before(async () => {
  fs.mkdirSync(dir, { recursive: true });
  const ca = await createRootCA();
  const keys = await generateKeyPair();
  const cert = await signNodeCert(ca, {
    csrPem: await createCsr(keys),
    nodeId: 'm1',
    role: 'manager',
    clusterId: 'c1',
  });
  for (const [f, v] of [
    ['ca.crt', ca.certPem],
    ['node.crt', cert],
    ['node.key', await privateKeyToPem(keys.privateKey)],
  ])
    fs.writeFileSync(path.join(dir, f), v);
  clientPort = await freePort();
  member = new EtcdMember(
    {
      name: 'm1',
      dataDir: path.join(dir, 'etcd'),
      advertiseAddr: '127.0.0.1',
      certFile: path.join(dir, 'node.crt'),
      keyFile: path.join(dir, 'node.key'),
      caFile: path.join(dir, 'ca.crt'),
      clusterToken: 'c1',
      logFile: path.join(dir, 'etcd.log'),
      pidFile: path.join(dir, 'etcd.pid'),
      clientPort,
      peerPort: await freePort(),
    },
    log,
  );
  await member.start();
  tls = {
    ca: Buffer.from(ca.certPem),
    cert: Buffer.from(cert),
    key: Buffer.from(await privateKeyToPem(keys.privateKey)),
  };
  await waitForEtcd(newClient(), 20_000, member);
});

after(async () => {
  for (const c of clients) c.close();
  await member?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a leader whose manager is gone loses its key at once, and its fenced writes are refused', async () => {
  // The old leader: its key on a lease that stays alive (as etcd extends a dead leader's lease).
  const oldClient = newClient();
  const oldLease = oldClient.lease(30);
  const put = await oldLease.put(LEADER_KEY).value('old').exec();
  const oldRev = put.header.revision;
  const oldStore = new EtcdStore(oldClient, log, { key: LEADER_KEY, createRevision: () => oldRev });
  await oldStore.start();
  await oldStore.commit([{ kind: 'nodes', op: 'create', object: node('by-old-1') }], { fenced: true });

  let oldGone = false;
  const probed: string[] = [];
  const e = new LeaderElection(newClient(), 'new', log, async (id) => {
    probed.push(id);
    return id === 'old' && oldGone;
  });
  const newStore = new EtcdStore(clients[clients.length - 1], log, e);
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
      oldStore.commit([{ kind: 'nodes', op: 'create', object: node('by-old-2') }], { fenced: true }),
      LeaderLost,
    );
    await newStore.commit([{ kind: 'nodes', op: 'create', object: node('by-new') }], { fenced: true });
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
