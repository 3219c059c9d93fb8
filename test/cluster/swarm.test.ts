import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createTestNet, type TestNet } from '../helpers/testnet.js';
import { startDaemon, REPO_ROOT, type TestDaemon } from '../helpers/daemon.js';
import { waitFor } from '../helpers/process.js';
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { certIdentity, createCsr, generateKeyPair } from '../../src/cluster/pki.js';

// One manager and two workers on a private test network (root: netns, etcd, real docker CLI).
const PROBE = path.join(REPO_ROOT, 'dist/test/helpers/rpc-probe.js');

describe('swarm membership: one manager, two workers', () => {
  let net: TestNet;
  let mgr: TestDaemon;
  let w1: TestDaemon;
  let w2: TestDaemon;
  let initOut = '';
  const ok = async (d: TestDaemon, args: string[]) => (await d.docker(args)).stdout;
  const fail = async (d: TestDaemon, args: string[]) => {
    const r = await d.docker(args, { allowFail: true });
    assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail`);
    return r.stderr.trim();
  };
  const nodeLs = async () =>
    (await ok(mgr, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}']))
      .trim()
      .split('\n')
      .map((l) => l.trimEnd());
  const probe = (
    d: TestDaemon,
    mode: string,
    certDir: string,
    method: string,
    body?: object,
  ): Promise<{ ok: boolean; code?: number; details?: string }> =>
    d
      .inNs(
        process.execPath,
        [PROBE, `${net.nodes[0].ip}:2377`, mode, certDir, method, ...(body ? [JSON.stringify(body)] : [])],
        { env: { ...process.env, ROOT_CA: path.join(mgr.dataRoot, 'swarm/certificates/swarm-root-ca.crt') } },
      )
      .then((r) => JSON.parse(r.stdout) as { ok: boolean; code?: number; details?: string });

  before(async () => {
    net = await createTestNet(3);
    mgr = await startDaemon({ ns: net.nodes[0].ns, prefix: 'swm' });
    w1 = await startDaemon({ ns: net.nodes[1].ns, prefix: 'sww' });
    w2 = await startDaemon({ ns: net.nodes[2].ns, prefix: 'sww' });
    initOut = await ok(mgr, [
      'swarm',
      'init',
      '--advertise-addr',
      net.nodes[0].ip,
      '--cert-expiry',
      '48h',
      '--default-addr-pool',
      '10.20.0.0/16',
    ]);
  });

  after(async () => {
    for (const d of [w2, w1, mgr]) await d?.destroy();
    await net?.destroy();
  });

  test('swarm init prints the join command exactly as Docker does', async () => {
    const nodeId = (await ok(mgr, ['info', '--format', '{{.Swarm.NodeID}}'])).trim();
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    assert.match(token, /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    assert.equal(
      initOut,
      `Swarm initialized: current node (${nodeId}) is now a manager.\n\nTo add a worker to this swarm, run the following command:\n\n    docker swarm join --token ${token} ${net.nodes[0].ip}:2377\n\nTo add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.\n`,
    );
    assert.match(await fail(mgr, ['swarm', 'init']), /This node is already part of a swarm/);
  });

  test('nothing rewrites the swarm object by itself after init, so a first swarm update is never out of sequence', async () => {
    const stamps = async () =>
      (await ok(mgr, ['info', '--format', '{{.Swarm.Cluster.CreatedAt}}|{{.Swarm.Cluster.UpdatedAt}}'])).trim();
    // The leader loops (overlay key rotation among them) have had time to start and write.
    await new Promise((r) => setTimeout(r, 3000));
    const [created, updated] = (await stamps()).split('|');
    assert.equal(updated, created, 'the cluster object was updated after init by nobody');
  });

  test('docker info shows the Swarm section', async () => {
    const info = JSON.parse(await ok(mgr, ['info', '--format', '{{json .Swarm}}']));
    assert.equal(info.LocalNodeState, 'active');
    assert.equal(info.ControlAvailable, true);
    assert.equal(info.Managers, 1);
    assert.equal(info.NodeAddr, net.nodes[0].ip);
    assert.equal(info.Cluster.Spec.Name, 'default');
    assert.equal(info.Cluster.Spec.Dispatcher.HeartbeatPeriod, 5e9);
    assert.equal(info.Cluster.Spec.CAConfig.NodeCertExpiry, 48 * 3600e9);
    assert.deepEqual(info.Cluster.DefaultAddrPool, ['10.20.0.0/16']);
    const cert = certIdentity(fs.readFileSync(path.join(mgr.dataRoot, 'swarm/certificates/swarm-node.crt'), 'utf8'));
    assert.equal((cert.notAfter.getTime() - cert.notBefore.getTime()) / 3600_000, 49); // 48 h + 1 h backdating
    assert.equal(cert.role, 'swarm-manager');
    assert.equal(cert.nodeId, info.NodeID);
    assert.equal(cert.clusterId, info.Cluster.ID);
    assert.match(await ok(mgr, ['info']), /Is Manager: true/);
  });

  test('before joining, a worker answers manager calls with Docker 503', async () => {
    assert.equal(
      await fail(w1, ['node', 'ls']),
      'Error response from daemon: This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
    );
  });

  test('wrong, malformed and rotated-away tokens are refused', async () => {
    const old = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    await ok(mgr, ['swarm', 'join-token', '--rotate', 'worker']);
    const addr = `${net.nodes[0].ip}:2377`;
    assert.equal(
      await fail(w1, ['swarm', 'join', '--token', old, addr]),
      'Error response from daemon: rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster',
    );
    assert.equal(
      await fail(w1, ['swarm', 'join', '--token', old.slice(0, -5) + 'zzzzz', addr]),
      'Error response from daemon: rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster',
    );
    assert.equal(
      await fail(w1, ['swarm', 'join', '--token', 'SWMTKN-1-abc', addr]),
      'Error response from daemon: invalid join token',
    );
    assert.equal((await ok(w1, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim(), 'inactive');
  });

  test('a joiner refuses a CA whose digest does not match the token', async () => {
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    const parts = token.split('-');
    const digest = parts[2].replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const bad = [parts[0], parts[1], digest, parts[3]].join('-');
    assert.equal(
      await fail(w1, ['swarm', 'join', '--token', bad, `${net.nodes[0].ip}:2377`]),
      `Error response from daemon: remote CA does not match fingerprint. Expected: ${digest}`,
    );
  });

  test('workers join and show as Ready in node ls', async () => {
    await ok(mgr, ['swarm', 'update', '--dispatcher-heartbeat', '1s']);
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    assert.equal(
      await ok(w1, ['swarm', 'join', '--token', token, `${net.nodes[0].ip}:2377`]),
      'This node joined a swarm as a worker.\n',
    );
    assert.equal(
      await ok(w2, ['swarm', 'join', '--token', token, `${net.nodes[0].ip}:2377`]),
      'This node joined a swarm as a worker.\n',
    );
    const lines = await waitFor('three ready nodes', async () => {
      const l = await nodeLs();
      return l.length === 3 && l.every((x) => x.includes(' Ready ')) && l;
    });
    assert.ok(lines.includes(`${mgr.name} Ready Active Leader`));
    assert.ok(lines.includes(`${w1.name} Ready Active`));
    const self = (await ok(mgr, ['node', 'ls', '--format', '{{.Self}} {{.Hostname}}'])).trim().split('\n');
    assert.ok(self.includes(`true ${mgr.name}`));
    const desc = JSON.parse(await ok(mgr, ['node', 'inspect', w1.name, '--format', '{{json .Description}}']));
    assert.equal(desc.Hostname, w1.name);
    assert.ok(desc.Resources.NanoCPUs > 0 && desc.Resources.MemoryBytes > 0);
    assert.equal((await ok(mgr, ['node', 'inspect', w1.name, '--format', '{{.Status.Addr}}'])).trim(), net.nodes[1].ip);
  });

  test('a manager-only call on a worker answers 503 with Docker message', async () => {
    assert.equal(
      await fail(w1, ['node', 'ls']),
      "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
    );
    const info = JSON.parse(await ok(w1, ['info', '--format', '{{json .Swarm}}']));
    assert.equal(info.ControlAvailable, false);
    assert.equal(info.LocalNodeState, 'active');
  });

  test('node update --availability and --label-add/--label-rm', async () => {
    await ok(mgr, [
      'node',
      'update',
      '--availability',
      'drain',
      '--label-add',
      'zone=a',
      '--label-add',
      'disk=ssd',
      w1.name,
    ]);
    await ok(mgr, ['node', 'update', '--label-rm', 'disk', w1.name]);
    const spec = JSON.parse(await ok(mgr, ['node', 'inspect', w1.name, '--format', '{{json .Spec}}']));
    assert.deepEqual(spec, { Labels: { zone: 'a' }, Role: 'worker', Availability: 'drain' });
    assert.match(await ok(mgr, ['node', 'inspect', '--pretty', w1.name]), /Availability:\s+Drain/);
    await ok(mgr, ['node', 'update', '--availability', 'active', w1.name]);
    assert.match(await fail(mgr, ['node', 'inspect', 'nosuchnode']), /node nosuchnode not found|No such node/);
  });

  test('a worker certificate cannot call manager-only RPCs; plaintext and certificate-less clients are refused', async () => {
    const workerCerts = path.join(w1.dataRoot, 'swarm/certificates');
    const asWorker = await probe(w1, 'tls', workerCerts, 'Membership.Join', { addr: '10.99.0.99' });
    assert.equal(asWorker.ok, false);
    assert.equal(asWorker.code, 7); // PERMISSION_DENIED
    const noCert = await probe(w1, 'tls', '-', 'Dispatcher.Heartbeat', { sessionId: 'x' });
    assert.equal(noCert.ok, false);
    assert.equal(noCert.code, 16); // UNAUTHENTICATED
    const noCertJoin = await probe(w1, 'tls', '-', 'Membership.Join', { addr: '10.99.0.99' });
    assert.equal(noCertJoin.code, 16);
    const plain = await probe(w1, 'plaintext', '-', 'CA.GetRootCACertificate');
    assert.equal(plain.ok, false);
    // The CA's join entry point is the one call that works without a certificate.
    const root = await probe(w1, 'insecure', '-', 'CA.GetRootCACertificate');
    assert.equal(root.ok, true);
  });

  test('a node renews its certificate with its current one: same identity, signed by the root', async () => {
    const csr = await createCsr(await generateKeyPair());
    const r = await probe(w1, 'tls', path.join(w1.dataRoot, 'swarm/certificates'), 'CA.RenewNodeCertificate', { csr });
    assert.equal(r.ok, true, r.details);
    const cert = (r as unknown as { res: { certificate: string; role: string } }).res;
    const w1Id = (await ok(w1, ['info', '--format', '{{.Swarm.NodeID}}'])).trim();
    const clusterId = (await ok(mgr, ['info', '--format', '{{.Swarm.Cluster.ID}}'])).trim();
    const id = certIdentity(cert.certificate);
    assert.deepEqual([id.nodeId, id.role, id.clusterId, cert.role], [w1Id, 'swarm-worker', clusterId, 'worker']);
    const root = new X509Certificate(fs.readFileSync(path.join(mgr.dataRoot, 'swarm/certificates/swarm-root-ca.crt')));
    assert.ok(new X509Certificate(cert.certificate).verify(root.publicKey));
    const noCert = await probe(w1, 'tls', '-', 'CA.RenewNodeCertificate', { csr });
    assert.equal(noCert.code, 16);
  });

  test('a worker that stops heartbeating goes Down, and Ready again when back', async () => {
    await net.setLink(net.nodes[2], false);
    await waitFor('worker 2 down', async () => (await nodeLs()).includes(`${w2.name} Down Active`), 30_000);
    await net.setLink(net.nodes[2], true);
    await waitFor('worker 2 ready again', async () => (await nodeLs()).includes(`${w2.name} Ready Active`), 30_000);
  });

  test('swarm ca --rotate moves every node to a new root and new join tokens', async () => {
    const oldToken = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    const oldRoot = (await ok(mgr, ['swarm', 'ca'])).trim();
    const out = await ok(mgr, ['swarm', 'ca', '--rotate']);
    const info = JSON.parse(await ok(mgr, ['info', '--format', '{{json .Swarm.Cluster}}']));
    assert.equal(info.RootRotationInProgress, false);
    const newRoot = info.TLSInfo.TrustRoot as string;
    assert.notEqual(newRoot.trim(), oldRoot);
    assert.ok(out.trim().endsWith(newRoot.trim()), out);
    const rootCert = new X509Certificate(newRoot);
    for (const d of [mgr, w1, w2]) {
      const cert = new X509Certificate(fs.readFileSync(path.join(d.dataRoot, 'swarm/certificates/swarm-node.crt')));
      assert.ok(cert.verify(rootCert.publicKey), `${d.name} has a certificate from the new root`);
    }
    const newToken = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    assert.notEqual(newToken.split('-')[2], oldToken.split('-')[2]);
    const lines = await nodeLs();
    assert.ok(lines.includes(`${w1.name} Ready Active`) && lines.includes(`${w2.name} Ready Active`), lines.join('\n'));
  });

  test('node rm refuses a Ready node and a manager; a removed node is refused by the dispatcher', async () => {
    const w2Id = (await ok(w2, ['info', '--format', '{{.Swarm.NodeID}}'])).trim();
    assert.equal(
      await fail(mgr, ['node', 'rm', w2.name]),
      `Error response from daemon: rpc error: code = FailedPrecondition desc = node ${w2Id} is not down and can't be removed`,
    );
    const mgrId = (await ok(mgr, ['info', '--format', '{{.Swarm.NodeID}}'])).trim();
    assert.match(
      await fail(mgr, ['node', 'rm', mgrId]),
      /is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal/,
    );
    await ok(mgr, ['node', 'rm', '--force', w2.name]);
    assert.ok(!(await nodeLs()).some((l) => l.startsWith(w2.name)));
    const removed = await probe(w2, 'tls', path.join(w2.dataRoot, 'swarm/certificates'), 'Dispatcher.Heartbeat', {
      sessionId: 'x',
    });
    assert.equal(removed.code, 7);
  });

  test('swarm leave: a worker leaves; the last manager needs --force', async () => {
    assert.equal(await ok(w1, ['swarm', 'leave']), 'Node left the swarm.\n');
    assert.equal((await ok(w1, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim(), 'inactive');
    await waitFor(
      'worker 1 down after leaving',
      async () => (await nodeLs()).includes(`${w1.name} Down Active`),
      30_000,
    );
    assert.equal(
      await fail(mgr, ['swarm', 'leave']),
      'Error response from daemon: You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.',
    );
    assert.equal(await ok(mgr, ['swarm', 'leave', '--force']), 'Node left the swarm.\n');
    assert.equal(
      await fail(mgr, ['node', 'ls']),
      'Error response from daemon: This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
    );
  });
});
