import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuorumLost, retryReconfig } from '../../../../src/manager/store/etcd-reconfig.js';

// A step that fails with these messages, then answers 'done'.
const failing = (messages: string[]) => {
  const calls: Date[] = [];
  const step = async (opts: { deadline: Date }) => {
    calls.push(opts.deadline);
    const m = messages[calls.length - 1];
    if (m) throw new Error(m);
    return 'done';
  };
  return { calls, step };
};

test('etcd refusals under load (strict reconfig check, request timeout) are retried, each call with a deadline', async () => {
  const { calls, step } = failing([
    'etcdserver: unhealthy cluster',
    'etcdserver: request timed out',
    '4 DEADLINE_EXCEEDED: Deadline exceeded',
    'etcdserver: re-configuration failed due to not enough started members',
  ]);
  assert.equal(await retryReconfig('member add', step, 10_000, 1), 'done');
  assert.equal(calls.length, 5);
  for (const d of calls) assert.ok(d.getTime() > Date.now());
});

test('other failures end the change at once, naming it', async () => {
  const { calls, step } = failing(['14 UNAVAILABLE: No connection established']);
  await assert.rejects(retryReconfig('member remove', step, 10_000, 1), /^Error: etcd member remove: 14 UNAVAILABLE/);
  assert.equal(calls.length, 1);
});

test('a refusal for quorum is passed on as it is', async () => {
  const step = async () => {
    throw new QuorumLost('no quorum');
  };
  await assert.rejects(retryReconfig('member remove', step, 10_000, 1), QuorumLost);
});

test('retrying ends when the budget is spent', async () => {
  const { calls, step } = failing(Array(1000).fill('etcdserver: unhealthy cluster'));
  await assert.rejects(retryReconfig('member add', step, 50, 5), /etcd member add: etcdserver: unhealthy cluster/);
  assert.ok(calls.length > 1 && calls.length < 1000);
});
