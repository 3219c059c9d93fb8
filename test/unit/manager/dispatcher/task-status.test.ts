import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Change, WriteOptions } from '../../../../src/manager/store/store.js';
import { LeaderLost, WriteTimeout } from '../../../../src/manager/store/store.js';
import type { EtcdStore } from '../../../../src/manager/store/etcd-store.js';
import { TaskStatusWriter } from '../../../../src/manager/dispatcher/task-status.js';
import { newTask } from '../../../../src/manager/orchestrator/task.js';
import { status } from '../../../../src/cluster/task-state.js';
import { createLogger } from '../../../../src/util/log.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeService, until } from '../../../helpers/swarm-fixtures.js';

const log = createLogger('test', 'silent');

/** The in-memory store whose next commits fail with the given errors (etcd timing out, leadership lost). */
class FailingStore extends MemoryStore {
  failures: Error[] = [];
  override async commit(changes: Change[], opts?: WriteOptions): Promise<void> {
    const e = this.failures.shift();
    if (e) throw e;
    return super.commit(changes, opts);
  }
}

async function withTask(store: FailingStore) {
  const t = { ...newTask(makeService('web'), 1), NodeID: 'n1', Status: status('assigned', 'assigned') };
  await store.commit([{ kind: 'tasks', op: 'create', object: t }]);
  return t;
}

test('a status write that failed (etcd timed out) is tried again, not dropped', async () => {
  const store = new FailingStore();
  const t = await withTask(store);
  const w = new TaskStatusWriter(store as unknown as EtcdStore, log);
  store.failures.push(new WriteTimeout(), new WriteTimeout());
  const u = { taskId: t.ID, status: status('running', 'started') };
  w.push('n1', u);
  w.written([u]);
  await until('running stored', () => store.viewOne('tasks', t.ID)?.Status.State === 'running', 10_000);
  assert.equal(store.failures.length, 0);
  w.close();
});

test('a write refused because another manager leads is left to that manager', async () => {
  const store = new FailingStore();
  const t = await withTask(store);
  const w = new TaskStatusWriter(store as unknown as EtcdStore, log);
  store.failures.push(new LeaderLost('lost'));
  const u = { taskId: t.ID, status: status('running', 'started') };
  w.push('n1', u);
  w.written([u]);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(store.viewOne('tasks', t.ID)?.Status.State, 'assigned');
  w.close();
});
