import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestNet, type TestNet } from '../helpers/testnet.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { waitFor } from '../helpers/process.js';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/daemon.js';
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { logEntries, sessionRegistrations } from '../helpers/daemon-log.js';

const TLS_PROBE = path.join(REPO_ROOT, 'dist/test/helpers/tls-probe.js');

// Three managers on etcd: leader failover, promote/demote, leave, quorum loss and recovery (root).
describe('swarm managers: three managers on etcd', () => {
  let net: TestNet;
  let m: TestDaemon[] = [];
  let worker: TestDaemon;
  const ok = async (d: TestDaemon, args: string[]) => (await d.docker(args)).stdout;
  const fail = async (d: TestDaemon, args: string[]) => {
    const r = await d.docker(args, { allowFail: true });
    assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail`);
    return r.stderr.trim();
  };
  const managerStatus = async (d: TestDaemon) => {
    const out = (await ok(d, ['node', 'ls', '--format', '{{.Hostname}}={{.ManagerStatus}}'])).trim().split('\n');
    return Object.fromEntries(out.map((l) => l.split('=')));
  };
  const leaderOf = async (d: TestDaemon) => Object.entries(await managerStatus(d)).find(([, s]) => s === 'Leader')?.[0];

  before(async () => {
    net = await createTestNet(4);
    for (const n of net.nodes.slice(0, 3)) m.push(await startDaemon({ ns: n.ns, prefix: 'swmgr' }));
    worker = await startDaemon({ ns: net.nodes[3].ns, prefix: 'swwrk' });
    await ok(m[0], ['swarm', 'init', '--advertise-addr', net.nodes[0].ip]);
  });

  after(async () => {
    await worker?.destroy();
    for (const d of m.reverse()) await d.destroy();
    await net?.destroy();
  });

  test('managers join with the manager token; node ls shows Leader and Reachable', async () => {
    const token = (await ok(m[0], ['swarm', 'join-token', '-q', 'manager'])).trim();
    assert.equal(
      await ok(m[1], ['swarm', 'join', '--token', token, `${net.nodes[0].ip}:2377`]),
      'This node joined a swarm as a manager.\n',
    );
    assert.equal(
      await ok(m[2], ['swarm', 'join', '--token', token, `${net.nodes[0].ip}:2377`]),
      'This node joined a swarm as a manager.\n',
    );
    await waitFor('three managers, one leader, two reachable', async () => {
      const s = await managerStatus(m[2]);
      return s[m[0].name] === 'Leader' && s[m[1].name] === 'Reachable' && s[m[2].name] === 'Reachable';
    });
    const info = JSON.parse(await ok(m[1], ['info', '--format', '{{json .Swarm}}']));
    assert.equal(info.ControlAvailable, true);
    assert.equal(info.Managers, 3);
  });

  test('a worker that joined through one manager learns the others', async () => {
    const token = (await ok(m[0], ['swarm', 'join-token', '-q', 'worker'])).trim();
    await ok(worker, ['swarm', 'join', '--token', token, `${net.nodes[0].ip}:2377`]);
    await waitFor(
      'worker knows three managers',
      async () => JSON.parse(await ok(worker, ['info', '--format', '{{json .Swarm.RemoteManagers}}'])).length === 3,
    );
    await waitFor('worker ready', async () =>
      (await ok(m[1], ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).includes(`${worker.name} Ready`),
    );
  });

  test('swarm ca --rotate from a follower: every node moves to the new root and keeps its session', async () => {
    const all = [...m, worker];
    const before = sessionRegistrations(m);
    assert.equal(before.size, 4);
    const out = await ok(m[1], ['swarm', 'ca', '--rotate']);
    const root = JSON.parse(await ok(m[2], ['info', '--format', '{{json .Swarm.Cluster}}'])).TLSInfo
      .TrustRoot as string;
    assert.ok(out.trim().endsWith(root.trim()), out);
    const certs = (d: TestDaemon) => path.join(d.dataRoot, 'swarm/certificates');
    await waitFor(
      'every node trusts only the new root',
      () => all.every((d) => fs.readFileSync(path.join(certs(d), 'swarm-root-ca.crt'), 'utf8') === root),
      60_000,
    );
    for (const d of all)
      assert.ok(
        new X509Certificate(fs.readFileSync(path.join(certs(d), 'swarm-node.crt'))).verify(
          new X509Certificate(root).publicKey,
        ),
        d.name,
      );
    assert.deepEqual(sessionRegistrations(m), before, 'no session registered again');
    const states = (await ok(m[0], ['node', 'ls', '--format', '{{.Status}}'])).trim().split('\n');
    assert.deepEqual(states, ['Ready', 'Ready', 'Ready', 'Ready']);
  });

  test('etcd peer port 2380 refuses plaintext, certificate-less and worker-certificate clients', async () => {
    const probe = async (certDir: string, mode: string, from = worker) =>
      JSON.parse((await from.inNs(process.execPath, [TLS_PROBE, net.nodes[0].ip, '2380', certDir, mode])).stdout) as {
        answered: boolean;
        status: number | null;
        error?: string;
      };
    const plain = await probe('-', 'plaintext');
    assert.ok(!plain.answered || plain.status === 400, JSON.stringify(plain));
    assert.equal((await probe('-', 'tls')).answered, false);
    assert.equal((await probe(path.join(worker.dataRoot, 'swarm/certificates'), 'tls')).answered, false);
    // A manager's certificate from its own address is let in (so the checks above can fail);
    // etcd also matches the certificate's IP SANs against the caller's address.
    assert.equal((await probe(path.join(m[1].dataRoot, 'swarm/certificates'), 'tls')).answered, false);
    const asManager = await probe(path.join(m[1].dataRoot, 'swarm/certificates'), 'tls', m[1]);
    assert.equal(asManager.answered, true, JSON.stringify(asManager));
  });

  test('kill -9 of the leader: another manager leads and accepts writes; the old leader rejoins as follower', async () => {
    const oldLeader = m[0];
    await oldLeader.kill9();
    await waitFor(
      'a write accepted by a surviving manager',
      async () =>
        (await m[1].docker(['node', 'update', '--label-add', 'after=failover', m[1].name], { allowFail: true }))
          .code === 0,
      60_000,
      250,
    );
    const newLeader = await waitFor(
      'a new leader',
      async () => {
        const l = await leaderOf(m[1]);
        return l && l !== oldLeader.name && l;
      },
      30_000,
    );
    assert.ok([m[1].name, m[2].name].includes(newLeader));
    await waitFor(
      'old leader unreachable',
      async () => (await managerStatus(m[1]))[oldLeader.name] === 'Unreachable',
      30_000,
    );
    // Once the old leader's own liveness lease has expired, a worker whose session did not move
    // to another manager would have expired too.
    await waitFor(
      'old leader down',
      async () =>
        (await ok(m[1], ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).includes(`${oldLeader.name} Down`),
      60_000,
    );
    assert.ok(
      (await ok(m[1], ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).includes(`${worker.name} Ready`),
    );
    await oldLeader.start();
    await waitFor(
      'old leader back as a reachable follower',
      async () => {
        const s = await managerStatus(oldLeader).catch(() => ({}) as Record<string, string>);
        return s[oldLeader.name] === 'Reachable' && s[newLeader] === 'Leader';
      },
      60_000,
    );
    assert.equal(
      (await ok(oldLeader, ['node', 'inspect', m[1].name, '--format', '{{index .Spec.Labels "after"}}'])).trim(),
      'failover',
    );
  });

  test('demote turns a manager into a worker; promote brings it back', async () => {
    const target = m[2];
    assert.equal(await ok(m[1], ['node', 'demote', target.name]), `Manager ${target.name} demoted in the swarm.\n`);
    await waitFor(
      'demoted node is a worker',
      async () => JSON.parse(await ok(target, ['info', '--format', '{{json .Swarm.ControlAvailable}}'])) === false,
      60_000,
    );
    assert.match(await fail(target, ['node', 'ls']), /Worker nodes can't be used to view or modify cluster state/);
    assert.equal((await managerStatus(m[1]))[target.name], '');
    assert.equal(
      await ok(m[1], ['node', 'promote', target.name]),
      `Node ${target.name} promoted to a manager in the swarm.\n`,
    );
    // Reachable, or Leader: any manager may win an election (a leader's lease can lapse under load).
    await waitFor(
      'promoted node is a reachable manager',
      async () => {
        const r = await target.docker(['node', 'ls', '--format', '{{.Hostname}}={{.ManagerStatus}}'], {
          allowFail: true,
        });
        return (
          r.code === 0 && (r.stdout.includes(`${target.name}=Reachable`) || r.stdout.includes(`${target.name}=Leader`))
        );
      },
      60_000,
    );
  });

  // Chaos seed 2: a promote right after a demote (the node still leaving etcd) left node ls
  // showing it Reachable while its daemon said it was no manager, and later Down for good.
  test('demote then promote at once, twice: the node is a working manager, Ready, and stays so after a restart', async () => {
    const target = m[2];
    for (let i = 0; i < 2; i++) {
      await ok(m[1], ['node', 'demote', target.name]);
      await ok(m[1], ['node', 'promote', target.name]);
    }
    const working = async () => {
      const r = await target.docker(['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'], {
        allowFail: true,
      });
      if (r.code !== 0) return false;
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${target.name} `));
      const seen = (await ok(m[1], ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}']))
        .split('\n')
        .find((l) => l.startsWith(`${target.name} `));
      return (
        !!line && /^\S+ Ready (Reachable|Leader)$/.test(line) && !!seen && /^\S+ Ready (Reachable|Leader)$/.test(seen)
      );
    };
    await waitFor('demoted and promoted node is a working manager', working, 90_000);
    // It stays one: the node's own state says manager (a restart starts its manager again).
    await target.stop();
    await target.start();
    await waitFor('restarted node is a working manager', working, 90_000);
    assert.equal(JSON.parse(await ok(target, ['info', '--format', '{{json .Swarm.ControlAvailable}}'])), true);
    // kill -9 in the middle of a demotion (its etcd member just removed), promoted meanwhile:
    // the restarted daemon finishes the change instead of starting a removed member.
    const removed = () => logEntries(target, 'etcd member removed for the demotion').length;
    const before = removed();
    await ok(m[1], ['node', 'demote', target.name]);
    await waitFor('demotion removed the etcd member', async () => removed() > before, 60_000, 20);
    await target.kill9();
    await ok(m[1], ['node', 'promote', target.name]);
    await target.start();
    await waitFor('node killed mid-demotion is a working manager', working, 120_000);
  });

  test('a manager leaves only with --force; the other two keep working', async () => {
    const leaving = m[2];
    assert.equal(
      await fail(leaving, ['swarm', 'leave']),
      'Error response from daemon: You are attempting to leave the swarm on a node that is participating as a manager. The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.',
    );
    // Demote first, as Docker advises, then leave.
    await ok(m[1], ['node', 'demote', leaving.name]);
    await waitFor(
      'demoted',
      async () => JSON.parse(await ok(leaving, ['info', '--format', '{{json .Swarm.ControlAvailable}}'])) === false,
      60_000,
    );
    assert.equal(await ok(leaving, ['swarm', 'leave']), 'Node left the swarm.\n');
    await waitFor(
      'the left node is down',
      async () =>
        (await ok(m[0], ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).includes(`${leaving.name} Down`),
      60_000,
    );
    await ok(m[0], ['node', 'rm', leaving.name]);
    await ok(m[1], ['node', 'update', '--label-add', 'two=managers', m[0].name]);
  });

  test('lost quorum answers 503; --force-new-cluster on the survivor restores a one-manager swarm', async () => {
    const [survivor, lost] = [m[0], m[1]];
    await lost.kill9();
    const msg = await waitFor(
      'no-leader error',
      async () => {
        const r = await survivor.docker(['node', 'ls'], { allowFail: true });
        return r.code !== 0 && r.stderr.trim();
      },
      60_000,
    );
    assert.equal(
      msg,
      "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.",
    );
    await ok(survivor, ['swarm', 'init', '--force-new-cluster']);
    await waitFor(
      'survivor leads alone',
      async () =>
        (await managerStatus(survivor).catch(() => ({}) as Record<string, string>))[survivor.name] === 'Leader',
      60_000,
    );
    assert.equal(
      (await ok(survivor, ['node', 'inspect', survivor.name, '--format', '{{index .Spec.Labels "two"}}'])).trim(),
      'managers',
    );
    await ok(survivor, ['node', 'update', '--label-add', 'alone=yes', survivor.name]);
  });
});
