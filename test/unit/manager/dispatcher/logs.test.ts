import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { LogLine, LogSubscription } from '../../../../src/cluster/rpc.js';
import { LogBroker } from '../../../../src/manager/dispatcher/logs.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode, makeService, makeTask, until } from '../../../helpers/swarm-fixtures.js';

/** An agent's LogSubscriptions stream, as the broker sees it: what was written to it. */
class FakeAgentStream extends EventEmitter {
  readonly written: LogSubscription[] = [];
  destroyed = false;
  constructor(readonly nodeId: string) {
    super();
  }
  write(s: LogSubscription) {
    this.written.push(s);
    return true;
  }
  end() {
    this.destroyed = true;
  }
  sendMetadata() {}
}

async function setup() {
  const store = new MemoryStore();
  await store.commit(
    ['n1', 'n2'].map((id) => ({ kind: 'nodes' as const, op: 'create' as const, object: makeNode(id) })),
  );
  // The broker identifies callers by their certificate; here by the fake stream's node.
  const broker = new LogBroker(store, (call) => ({
    nodeId: (call as unknown as FakeAgentStream).nodeId,
    role: 'worker',
    clusterId: 'c',
  }));
  const h = broker.handlers();
  const agents = new Map(['n1', 'n2'].map((n) => [n, new FakeAgentStream(n)]));
  // A failed subscription stream fails the test rather than ending the runner.
  for (const a of agents.values())
    void Promise.resolve(h.LogSubscriptions(a as never)).catch((err: unknown) =>
      assert.fail(`LogSubscriptions failed: ${String(err)}`),
    );
  const publish = (nodeId: string, subscriptionId: string, lines: LogLine[], done = false) =>
    new Promise<void>((resolve, reject) =>
      h.PublishLogs(
        { request: { subscriptionId, lines, done }, nodeId } as never,
        ((err: unknown) => (err ? reject(err) : resolve())) as never,
      ),
    );
  return { store, broker, agents, publish };
}

const line = (taskId: string, text: string): LogLine => ({
  taskId,
  stream: 1,
  time: new Date().toISOString(),
  data: Buffer.from(text).toString('base64'),
});

test('following a service: tasks placed later join the stream, which lasts until the client leaves', async () => {
  const { store, broker, agents, publish } = await setup();
  const svc = makeService('web');
  const other = makeService('db');
  const t1 = makeTask(svc, { NodeID: 'n1' });
  await store.commit([{ kind: 'tasks', op: 'create', object: t1 }]);
  const got: string[] = [];
  const ac = new AbortController();
  let ended = false;
  const done = broker
    .logs(
      { byNode: new Map([['n1', [t1.ID]]]), follow: true, joins: (t) => t.ServiceID === svc.ID },
      (_n, lines) => {
        for (const l of lines) got.push(Buffer.from(l.data, 'base64').toString());
      },
      ac.signal,
    )
    .then(() => (ended = true));
  const n1 = agents.get('n1')!;
  const n2 = agents.get('n2')!;
  assert.deepEqual(
    n1.written.map((s) => s.taskIds),
    [[t1.ID]],
  );

  // A new task (scale up) has no node until scheduled: it joins then, on its node, once.
  const t2 = makeTask(svc);
  await store.commit([
    { kind: 'tasks', op: 'create', object: t2 },
    { kind: 'tasks', op: 'create', object: makeTask(other, { NodeID: 'n2' }) },
  ]);
  assert.equal(n2.written.length, 0);
  await store.commit([{ kind: 'tasks', op: 'update', object: { ...store.get('tasks', t2.ID)!, NodeID: 'n2' } }]);
  await store.commit([
    { kind: 'tasks', op: 'update', object: { ...store.get('tasks', t2.ID)!, DesiredState: 'running' } },
  ]);
  assert.equal(n2.written.length, 1);
  const joined = n2.written[0];
  assert.deepEqual([joined.taskIds, joined.follow], [[t2.ID], true]);

  await publish('n1', n1.written[0].id, [line(t1.ID, 'one')], true);
  await publish('n2', joined.id, [line(t2.ID, 'two')], true);
  assert.deepEqual(got, ['one', 'two']);
  // Every node said done, yet following goes on until the client leaves.
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ended, false);
  ac.abort();
  await done;
  assert.deepEqual(n1.written.at(-1), { id: n1.written[0].id, taskIds: [], follow: false, cancel: true });
  assert.deepEqual(n2.written.at(-1), { id: joined.id, taskIds: [], follow: false, cancel: true });
  // Later tasks no longer join.
  await store.commit([{ kind: 'tasks', op: 'create', object: makeTask(svc, { NodeID: 'n2' }) }]);
  assert.equal(n2.written.length, 2);
});

test('without follow the request ends when every node is done; new tasks do not join', async () => {
  const { store, broker, agents, publish } = await setup();
  const svc = makeService('web');
  const t1 = makeTask(svc, { NodeID: 'n1' });
  await store.commit([{ kind: 'tasks', op: 'create', object: t1 }]);
  let ended = false;
  const done = broker
    .logs(
      { byNode: new Map([['n1', [t1.ID]]]), follow: false, joins: (t) => t.ServiceID === svc.ID },
      () => undefined,
      new AbortController().signal,
    )
    .then(() => (ended = true));
  await store.commit([{ kind: 'tasks', op: 'create', object: makeTask(svc, { NodeID: 'n2' }) }]);
  assert.equal(agents.get('n2')!.written.length, 0);
  await publish('n1', agents.get('n1')!.written[0].id, [], true);
  await until('ended', () => ended);
  await done;
});
