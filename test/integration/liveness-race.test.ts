import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { SessionMessage } from '../../src/cluster/rpc.js';
import { joinBridgedSimNode, type BridgedSimNode } from '../helpers/bridged-node.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { sleep, waitFor } from '../helpers/process.js';
import { simNodeDescription } from '../helpers/sim-node.js';

/**
 * The stuck-Down race (issue 14), spoken raw by one simulated node: an agent's registration on
 * one manager was slow (an election), the agent gave up, registered elsewhere and lives there;
 * then the first registration completed and put the node's liveness key on a lease nobody
 * renewed. When it expired the node went Down for good while its agent kept heartbeating.
 * Here the node's sessions carry epochs as the agent's attempts do; a late earlier attempt, a
 * held-back registration whose agent left, and a key deleted under a live session must all
 * leave the node Ready. The heartbeat period is 1 s, so a liveness lease lives 3 s.
 */

test(
  'liveness belongs to the live session: late and abandoned registrations never win',
  { timeout: 240_000 },
  async () => {
    let d: TestDaemon | undefined;
    let node: BridgedSimNode | undefined;
    const streams: grpc.ClientReadableStream<unknown>[] = [];
    const beats: NodeJS.Timeout[] = [];
    const holdFile = `/tmp/shoal-test-hold-${process.pid}-${Date.now()}`;
    const savedHold = process.env.SHOAL_TEST_REGISTRATION_HOLD_FILE;
    process.env.SHOAL_TEST_REGISTRATION_HOLD_FILE = holdFile;
    try {
      d = await startDaemon({ prefix: 'lvrace' });
      const dd = d;
      const cli = async (args: string[]) => {
        const r = await dd.docker(args, { allowFail: true });
        assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
        return r.stdout.trim();
      };
      await cli(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--dispatcher-heartbeat', '1s']);
      const token = await cli(['swarm', 'join-token', '-q', 'worker']);
      node = await joinBridgedSimNode(d, token);
      const { name, nodeId, rootPem, client: c } = node;

      /** One registration attempt: its first message, or the error that ended it, or nothing yet. */
      const open = (epoch: number) => {
        const stream = c.stream('Session', {
          description: simNodeDescription(name, rootPem),
          addr: '127.0.0.1',
          epoch,
        });
        streams.push(stream);
        const outcome: { first?: SessionMessage; error?: Error } = {};
        stream.once('data', (m: SessionMessage) => (outcome.first = m));
        stream.on('error', (e: Error) => (outcome.error ??= e));
        return { stream, outcome };
      };
      const live = async (epoch: number) => {
        const s = open(epoch);
        const first = await waitFor(
          `session of epoch ${epoch}`,
          () => {
            if (s.outcome.error) throw s.outcome.error;
            return s.outcome.first;
          },
          20_000,
        );
        const t = setInterval(
          () => void c.call('Heartbeat', { sessionId: first.sessionId }, 2000).catch(() => undefined),
          300,
        );
        beats.push(t);
        return {
          ...s,
          stop: () => {
            clearInterval(t);
            s.stream.cancel();
          },
        };
      };
      const state = () => cli(['node', 'inspect', '--format', '{{.Status.State}}', nodeId]);
      /** The node's state sampled for `ms` (3 lease lifetimes): every sample must be ready. */
      const staysReady = async (what: string, ms = 10_000) => {
        const seen: string[] = [];
        for (const end = Date.now() + ms; Date.now() < end;) {
          seen.push(await state());
          await sleep(250);
        }
        const bad = seen.filter((s) => s !== 'ready');
        assert.equal(
          bad.length,
          0,
          `${what}: the node was ${[...new Set(bad)]} in ${bad.length} of ${seen.length} samples`,
        );
      };

      const a = await live(2000);
      await waitFor('the node Ready', async () => (await state()) === 'ready', 20_000, 200);

      // 1. An earlier attempt's registration completes while a later session lives: it must not
      // take the key (before the fix it did, its stream was gone, and the node went Down for good).
      const late = open(1000);
      await waitFor('the late registration answered', () => late.outcome.first ?? late.outcome.error, 20_000);
      late.stream.cancel();
      await staysReady('after a late registration of an earlier attempt');

      // 2. As in an election: an attempt held back in the dispatcher; the agent gives up on it and
      // registers again (later epoch) and lives; then the held registration goes on.
      fs.writeFileSync(holdFile, '3000');
      const held = open(3000);
      await sleep(1500);
      assert.equal(held.outcome.first, undefined, 'the held registration is held');
      held.stream.cancel();
      const b = await live(4000);
      a.stop();
      fs.rmSync(holdFile);
      await sleep(1000);
      assert.equal(held.outcome.first, undefined, 'the abandoned registration never became a session');
      await staysReady('after a held registration completed behind the live session');

      // 3. The key deleted under the live session: its heartbeats put it back.
      const certs = fs.readdirSync(d.dataRoot, { recursive: true, encoding: 'utf8' });
      const file = (n: string) =>
        path.join(d!.dataRoot, certs.find((f) => f.endsWith(n)) ?? assert.fail(`no ${n} under ${d!.dataRoot}`));
      const del = await d.inNs(
        'etcdctl',
        [
          '--endpoints',
          'https://127.0.0.1:2379',
          '--cacert',
          file('etcd-ca.crt'),
          '--cert',
          file('etcd-node.crt'),
          '--key',
          file('swarm-node.key'),
          'del',
          `/shoal/liveness/${nodeId}`,
        ],
        { env: { ...process.env, ETCDCTL_API: '3' }, allowFail: true },
      );
      assert.equal(del.stdout.trim(), '1', `etcdctl del: ${del.stdout} ${del.stderr}`);
      await waitFor('the node Ready again', async () => (await state()) === 'ready', 10_000, 200);
      await staysReady('after the liveness key was deleted under the live session');
      b.stop();
    } finally {
      if (savedHold === undefined) delete process.env.SHOAL_TEST_REGISTRATION_HOLD_FILE;
      else process.env.SHOAL_TEST_REGISTRATION_HOLD_FILE = savedHold;
      fs.rmSync(holdFile, { force: true });
      for (const t of beats) clearInterval(t);
      for (const s of streams) s.cancel();
      await node?.close();
      await d?.destroy();
    }
  },
);
