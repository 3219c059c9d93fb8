import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '../../../../src/cluster/types.js';
import { assignedTasks } from '../../../../src/manager/dispatcher/dispatcher.js';
import { status } from '../../../../src/cluster/task-state.js';
import { makeService, makeTask } from '../../../helpers/swarm-fixtures.js';

/**
 * What a node's agent is told (swarmkit's dispatcher): every task placed on it from ASSIGNED
 * on, until the task is deleted. An ended task the orchestrator replaced (desired SHUTDOWN)
 * stays: its node keeps the exited container, whose log `docker service logs` reads.
 */

const service = makeService('web');
const on = (node: string, state: Task['Status']['State'], desired: Task['DesiredState']): Task =>
  makeTask(service, { NodeID: node, Status: status(state, state), DesiredState: desired });

test('an ended task replaced by a restart (desired SHUTDOWN) stays assigned until it is deleted', () => {
  const completed = on('n1', 'complete', 'shutdown');
  const failed = on('n1', 'failed', 'shutdown');
  const shutdown = on('n1', 'shutdown', 'remove');
  const running = on('n1', 'running', 'running');
  const stopping = on('n1', 'running', 'shutdown');
  const ids = assignedTasks([completed, failed, shutdown, running, stopping], 'n1')
    .map((t) => t.ID)
    .sort();
  assert.deepEqual(ids, [completed, failed, shutdown, running, stopping].map((t) => t.ID).sort());
});

test('not yet ASSIGNED, or on another node: not told', () => {
  const pending = on('n1', 'pending', 'running');
  const elsewhere = on('n2', 'complete', 'shutdown');
  assert.deepEqual(assignedTasks([pending, elsewhere], 'n1'), []);
});
