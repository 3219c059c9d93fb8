import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import type { AssignmentsMessage, SessionMessage } from '../../src/cluster/rpc.js';
import type { Task, TaskState } from '../../src/cluster/types.js';
import { joinBridgedSimNode, type BridgedSimNode } from '../helpers/bridged-node.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { waitFor } from '../helpers/process.js';
import { simNodeDescription } from '../helpers/sim-node.js';

/**
 * The dispatcher's Assignments stream, spoken raw by one simulated node that joined a real
 * daemon's swarm over its CA: as in swarmkit, the first message is the node's complete set and
 * every later one is incremental, carrying only tasks new or whose assignment changed (node,
 * desired state, or still an assignment at all) and the IDs no longer assigned. A status the
 * node reported itself sends nothing. The manager is drained, so every replica is this node's.
 */

/** What the node was told of a task: a message repeating all of it told the node nothing. */
const assignmentOf = (t: Task) => `${t.NodeID} ${t.DesiredState}`;

/** A message in a failure's text: its task IDs and removes, not whole tasks. */
const summary = (ms: AssignmentsMessage[]) =>
  JSON.stringify(ms.map((m) => ({ type: m.type, tasks: m.tasks.map((t) => t.ID), removes: m.removes })));

test('assignments stream: complete first, then only what changed', { timeout: 180_000 }, async () => {
  let d: TestDaemon | undefined;
  let node: BridgedSimNode | undefined;
  const streams: grpc.ClientReadableStream<unknown>[] = [];
  let heartbeats: NodeJS.Timeout | undefined;
  try {
    d = await startDaemon({ prefix: 'asgn' });
    const dd = d;
    const cli = async (args: string[]) => {
      const r = await dd.docker(args, { allowFail: true });
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    };
    await cli(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    await cli(['node', 'update', '--availability', 'drain', await cli(['info', '--format', '{{.Swarm.NodeID}}'])]);
    const token = await cli(['swarm', 'join-token', '-q', 'worker']);
    const svc = `${d.name}-svc`;

    node = await joinBridgedSimNode(d, token);
    const { name, nodeId, rootPem, client: c } = node;

    const session = c.stream('Session', { description: simNodeDescription(name, rootPem), addr: '127.0.0.1' });
    streams.push(session);
    session.on('error', () => undefined);
    const first = await new Promise<SessionMessage>((resolve, reject) => {
      session.once('data', resolve);
      session.once('error', reject);
    });
    const sessionId = first.sessionId;
    assert.ok(sessionId, 'the session message carries a session ID');
    heartbeats = setInterval(() => void c.call('Heartbeat', { sessionId }).catch(() => undefined), 1000);

    const messages: AssignmentsMessage[] = [];
    const assignments = c.stream('Assignments', { sessionId });
    streams.push(assignments);
    let streamError: Error | undefined;
    assignments.on('data', (m: AssignmentsMessage) => messages.push(m));
    assignments.on('error', (e: Error) => (streamError = e));
    const since = (mark: number) => messages.slice(mark);
    const taskIds = (ms: AssignmentsMessage[]) => new Set(ms.flatMap((m) => m.tasks.map((t) => t.ID)));
    const removedIds = (ms: AssignmentsMessage[]) => new Set(ms.flatMap((m) => m.removes ?? []));
    const sorted = (s: Iterable<string>) => [...s].sort();
    const report = (ids: string[], state: TaskState) =>
      c.call('UpdateTaskStatus', {
        sessionId,
        updates: ids.map((taskId) => ({
          taskId,
          status: { State: state, Timestamp: new Date().toISOString(), Message: state },
        })),
      });
    /** The service's tasks as `docker service ps` shows them: ID → desired and current state. */
    const serviceTasks = async () => {
      const out = await cli([
        'service',
        'ps',
        '--no-trunc',
        '--format',
        '{{.ID}} {{.DesiredState}} {{.CurrentState}}',
        svc,
      ]);
      return new Map(
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [id, desired, current] = l.split(' ');
            return [id, { desired, current }];
          }),
      );
    };
    const waitRunning = (ids: string[]) =>
      waitFor(
        `${ids.length} tasks running in docker service ps`,
        async () => {
          const ps = await serviceTasks();
          return ids.every((id) => ps.get(id)?.current === 'Running');
        },
        60_000,
        250,
      );

    // 1. The stream opens with the node's whole set: nothing yet.
    await waitFor('the first assignments message', () => messages.length > 0, 20_000);
    assert.equal(messages[0].type, 'complete');
    assert.deepEqual(messages[0].tasks, []);

    // 2. Three replicas: increments whose tasks together are exactly those three.
    await cli(['service', 'create', '--detach', '--name', svc, '--replicas', '3', 'simulated:latest']);
    const three = await waitFor(
      '3 tasks assigned',
      () => {
        const s = taskIds(since(1));
        return s.size >= 3 && s;
      },
      60_000,
    );
    const created = sorted(three);
    assert.equal(created.length, 3, `only the service's 3 tasks: ${created}`);
    assert.deepEqual(
      sorted((await serviceTasks()).keys()),
      created,
      'the tasks told are the ones docker service ps shows',
    );
    for (const m of since(1)) assert.equal(m.type, 'incremental');
    for (const t of since(1).flatMap((m) => m.tasks)) assert.equal(t.NodeID, nodeId);

    // 3. RUNNING, reported by the node itself: the manager has nothing new to tell it.
    let mark = messages.length;
    await report(created, 'running');
    await waitRunning(created);
    const afterRunning = messages.length;

    // 4. Scale to 5: only the two new tasks (the first message after the statuses also shows
    // that they sent nothing, since the stream is ordered).
    await cli(['service', 'scale', '--detach', `${svc}=5`]);
    const added = sorted(
      await waitFor(
        '2 more tasks assigned',
        () => {
          const s = taskIds(since(mark));
          return s.size >= 2 && s;
        },
        60_000,
      ),
    );
    assert.equal(
      afterRunning,
      mark,
      `no message for statuses the node reported: ${summary(since(mark).slice(0, afterRunning - mark))}`,
    );
    assert.equal(added.length, 2, `only the 2 new tasks: ${added}`);
    for (const id of added) assert.ok(!created.includes(id), `${id} is new`);
    for (const m of since(mark)) {
      assert.ok(m.tasks.length <= 2, `a message of ${m.tasks.length} tasks after scaling 3 → 5`);
      assert.equal(m.removes, undefined);
    }
    const all = [...created, ...added];
    mark = messages.length;
    await report(added, 'running');
    await waitRunning(added);
    const afterRunning2 = messages.length;

    // 5. Scale to 1: the four whose desired state changed, not the survivor; once they report
    // SHUTDOWN they are no assignment any more and are removed.
    await cli(['service', 'scale', '--detach', `${svc}=1`]);
    const stopped = sorted(
      await waitFor(
        '4 tasks told to stop',
        () => {
          const s = taskIds(since(mark));
          return s.size >= 4 && s;
        },
        60_000,
      ),
    );
    assert.equal(
      afterRunning2,
      mark,
      `no message for statuses the node reported: ${summary(since(mark).slice(0, afterRunning2 - mark))}`,
    );
    assert.equal(stopped.length, 4, `only the 4 stopped tasks: ${stopped}`);
    const survivor = all.filter((id) => !stopped.includes(id));
    assert.equal(survivor.length, 1, `one survivor among ${all}`);
    for (const t of since(mark).flatMap((m) => m.tasks))
      assert.ok(t.DesiredState === 'remove' || t.DesiredState === 'shutdown', `${t.ID} desired ${t.DesiredState}`);
    await report(stopped, 'shutdown');
    const removed = sorted(
      await waitFor(
        'the stopped tasks removed',
        () => {
          const s = removedIds(since(mark));
          return s.size >= 4 && s;
        },
        60_000,
      ),
    );
    assert.deepEqual(removed, stopped);
    assert.ok(!taskIds(since(mark)).has(survivor[0]), 'the survivor is not sent again');
    const ps = await waitFor(
      'the service at one task',
      async () => {
        const p = await serviceTasks();
        return p.size === 1 && p;
      },
      60_000,
      250,
    );
    assert.deepEqual([...ps.keys()], survivor);

    // Over the whole stream: one complete message, and no task sent twice with the same assignment.
    assert.equal(messages.filter((m) => m.type !== 'incremental').length, 1);
    const told = new Map<string, string>();
    for (const [i, m] of messages.entries()) {
      for (const t of m.tasks) {
        assert.notEqual(told.get(t.ID), assignmentOf(t), `message ${i} repeats task ${t.ID} unchanged`);
        told.set(t.ID, assignmentOf(t));
      }
      for (const id of m.removes ?? []) told.delete(id);
    }
    assert.equal(streamError, undefined, `the stream ended: ${streamError?.message}`);
  } finally {
    clearInterval(heartbeats);
    for (const s of streams) s.cancel();
    await node?.close();
    await d?.destroy();
  }
});
