import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Etcd3 } from 'etcd3';
import { EtcdStore } from '../../src/manager/store/etcd-store.js';
import { createLogger } from '../../src/util/log.js';
import { waitFor } from '../helpers/process.js';
import { startTestEtcdCluster, type TestEtcdCluster } from '../helpers/etcd.js';
import { makeNode } from '../helpers/swarm-fixtures.js';

// Writes go on while etcd's raft leader dies (kill -9 of its member): each one is answered
// within its deadline, and each lands exactly once. A real 3-member etcd (Debian etcd-server)
// on loopback. The deadline is shorter than etcd's own request timeout (5 s + 2 × election):
// a proposal lost with the dead leader would otherwise be answered only then, too late.
const log = createLogger('test', 'warn');
const DEADLINE_MS = 5000;
let etcd: TestEtcdCluster;
/** One client per member, for status and leadership calls. */
let clients: Etcd3[] = [];

before(async () => {
  etcd = await startTestEtcdCluster('raftlead', log, 3);
  clients = etcd.members.map((_, i) => etcd.client(i));
});

after(async () => {
  await etcd?.stop();
});

/** The member that leads raft now, as member `via` sees it. */
async function raftLeader(via: number): Promise<number | undefined> {
  const c = clients[via];
  const [st, list] = [await c.maintenance.status(), await c.cluster.memberList({})];
  const name = list.members.find((m) => m.ID === st.leader)?.name;
  const i = etcd.members.findIndex((m) => m.name === name);
  return i < 0 ? undefined : i;
}

/** Every member answers (a killed one was started again and caught up). */
async function allHealthy(): Promise<boolean> {
  for (let i = 0; i < etcd.members.length; i++) {
    const ok = await clients[i].maintenance
      .status({ deadline: new Date(Date.now() + 1000) })
      .then((st) => st.leader !== '0')
      .catch(() => false);
    if (!ok) return false;
  }
  return true;
}

/** Makes `to` lead raft (asked of the current leader), so the member the writes go through survives a kill. */
async function moveLeader(from: number, to: number): Promise<void> {
  const list = await clients[from].cluster.memberList({});
  const targetID = list.members.find((m) => m.name === etcd.members[to].name)!.ID;
  await clients[from].maintenance.moveLeader({ targetID });
}

test('writes in flight while etcd raft leader changes succeed within their deadline, each exactly once', async () => {
  // Writes go through member 0, as a manager's go through its own member.
  const via = 0;
  const store = new EtcdStore(etcd.client(via), log);
  await store.start();
  try {
    const written: string[] = [];
    const spans: { start: number; end: number }[] = [];
    const kills: number[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const id = `n${String(i).padStart(5, '0')}`;
        const start = Date.now();
        await store.commit([{ kind: 'nodes', op: 'create', object: makeNode(id) }], { deadlineMs: DEADLINE_MS });
        spans.push({ start, end: Date.now() });
        written.push(id);
      }
    })();
    const flowing = async () => {
      const n = written.length;
      await waitFor('writes flow', async () => written.length >= n + 20, 30_000, 20);
    };
    // Three leader changes, a kill -9 of the raft leader each (a graceful transfer first when the
    // writer's own member leads); the killed member is started again by its supervisor.
    for (let round = 0; round < 3; round++) {
      await waitFor('every member healthy', allHealthy, 60_000, 200);
      await flowing();
      let leader = await raftLeader(via);
      assert.notEqual(leader, undefined);
      if (leader === via) {
        await moveLeader(via, 1);
        await waitFor('member 1 leads', async () => (await raftLeader(via).catch(() => undefined)) === 1, 30_000, 50);
        leader = 1;
        await flowing();
      }
      const victim = leader!;
      const term = BigInt((await clients[via].maintenance.status()).raftTerm);
      kills.push(Date.now());
      process.kill(Number(fs.readFileSync(etcd.members[victim].pidFile, 'utf8')), 'SIGKILL');
      await waitFor(
        'a new raft term with a leader',
        async () => {
          // The restarted victim may win the election again: the term is what tells.
          const st = await clients[via].maintenance.status().catch(() => undefined);
          return !!st && st.leader !== '0' && BigInt(st.raftTerm) > term;
        },
        30_000,
        50,
      );
      await flowing();
    }
    stop = true;
    await writer;
    // A write was waiting on a dead leader: sent before a kill and answered after it.
    assert.ok(
      kills.some((k) => spans.some((s) => s.start <= k && s.end > k)),
      'no write was in flight at a kill',
    );
    // Exactly once: every create answered, and etcd holds each of them once, nothing else.
    const fresh = new EtcdStore(etcd.client(via), log);
    await fresh.start();
    try {
      assert.deepEqual(
        fresh
          .list('nodes')
          .map((n) => n.ID)
          .sort(),
        written,
      );
    } finally {
      await fresh.close();
    }
  } finally {
    await store.close();
  }
});
