import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, X509Certificate } from 'node:crypto';
import { createTestNet, type TestNet } from '../helpers/testnet.js';
import { startDaemon, REPO_ROOT, type TestDaemon } from '../helpers/daemon.js';
import { importBusybox } from '../helpers/busybox.js';
import { sleep, waitFor } from '../helpers/process.js';
import { logEntries, sessionRegistrations } from '../helpers/daemon-log.js';
import { serviceCreate, servicePsRunning } from '../helpers/service-cli.js';

// Needs root: one manager and two workers (netns, etcd, runc, the real docker CLI), a fourth
// node that joins after the rotation, a fifth that joins during the second one.
const PROBE = path.join(REPO_ROOT, 'dist/test/helpers/rpc-probe.js');

describe('swarm ca --rotate: nodes move to the new root without losing their session', () => {
  let net: TestNet;
  let mgr: TestDaemon;
  let w1: TestDaemon;
  let w2: TestDaemon;
  let late: TestDaemon;
  let mid: TestDaemon;
  const ok = async (d: TestDaemon, args: string[]) => {
    const r = await d.docker(args, { allowFail: true });
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const nodeId = async (d: TestDaemon) => (await ok(d, ['info', '--format', '{{.Swarm.NodeID}}'])).trim();
  const nodeStates = async () =>
    (await ok(mgr, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).trim().split('\n');
  /** "task-ID node state" of the service's tasks meant to run ("Running 3 seconds ago" → "Running"). */
  const runningTasks = async () =>
    (await ok(mgr, servicePsRunning('web', '{{.ID}} {{.Node}} {{.CurrentState}}')))
      .trim()
      .split('\n')
      .map((l) => l.split(' ').slice(0, 3).join(' '))
      .sort();
  const registrations = () => sessionRegistrations([mgr]);
  /** The sessions a node's agent established, from its own log. */
  const established = (d: TestDaemon) => logEntries(d, 'session established').map((l) => l.session as string);
  const certDir = (d: TestDaemon) => path.join(d.dataRoot, 'swarm/certificates');
  const probe = (d: TestDaemon, dir: string, method: string, body: object) =>
    d
      .inNs(process.execPath, [PROBE, `${net.nodes[0].ip}:2377`, 'tls', dir, method, JSON.stringify(body)])
      .then((r) => JSON.parse(r.stdout) as { ok: boolean; code?: number; details?: string });

  before(async () => {
    net = await createTestNet(5);
    mgr = await startDaemon({ ns: net.nodes[0].ns, prefix: 'carm' });
    w1 = await startDaemon({ ns: net.nodes[1].ns, prefix: 'carw' });
    w2 = await startDaemon({ ns: net.nodes[2].ns, prefix: 'carw' });
    late = await startDaemon({ ns: net.nodes[3].ns, prefix: 'carj' });
    mid = await startDaemon({ ns: net.nodes[4].ns, prefix: 'carj' });
    await ok(mgr, ['swarm', 'init', '--advertise-addr', net.nodes[0].ip]);
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    for (const w of [w1, w2]) await ok(w, ['swarm', 'join', '--token', token, `${net.nodes[0].ip}:2377`]);
    for (const d of [mgr, w1, w2]) await importBusybox((args, o) => d.docker(args, o), d.dir, 'busybox:latest');
    await waitFor(
      'three ready nodes',
      async () => (await nodeStates()).filter((l) => l.endsWith(' Ready')).length === 3,
      30_000,
      250,
    );
    await ok(mgr, serviceCreate('web', ['--replicas', '3', '--detach=true']));
    await waitFor(
      '3 running tasks',
      async () => (await runningTasks()).filter((l) => l.endsWith(' Running')).length === 3,
      60_000,
      250,
    );
  });

  after(async () => {
    for (const d of [mid, late, w2, w1, mgr]) await d?.destroy();
    await net?.destroy();
  });

  test('sessions, node states and tasks survive the rotation; the old root is then refused; joining needs the new token', async () => {
    const ids = new Map([
      [mgr, await nodeId(mgr)],
      [w1, await nodeId(w1)],
      [w2, await nodeId(w2)],
    ]);
    const oldToken = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    const oldRoot = (await ok(mgr, ['swarm', 'ca'])).trim();
    const tasksBefore = await runningTasks();
    const containersBefore = await Promise.all(
      [mgr, w1, w2].map(async (d) => (await ok(d, ['ps', '-q', '--no-trunc'])).trim().split('\n').sort()),
    );
    const regsBefore = registrations();
    const sessionsBefore = new Map([...ids.keys()].map((d) => [d, established(d)]));
    for (const id of ids.values())
      assert.equal(regsBefore.get(id)?.length, 1, `one session registered for ${id} before the rotation`);
    // A copy of a worker's certificate from the old root, to try a new connection with after the rotation.
    const oldCerts = path.join(w1.dir, 'old-certs');
    fs.mkdirSync(oldCerts);
    for (const f of ['swarm-node.crt', 'swarm-node.key'])
      fs.copyFileSync(path.join(certDir(w1), f), path.join(oldCerts, f));

    // The CLI waits until the rotation has converged; meanwhile node ls and the tasks are watched.
    let rotated = false;
    const rotation = ok(mgr, ['swarm', 'ca', '--rotate']).finally(() => (rotated = true));
    const seen: string[] = [];
    let polls = 0;
    const watch = async () => {
      for (const l of await nodeStates()) if (!l.endsWith(' Ready')) seen.push(`node: ${l}`);
      const tasks = await runningTasks();
      if (JSON.stringify(tasks) !== JSON.stringify(tasksBefore)) seen.push(`tasks: ${tasks.join(', ')}`);
      polls++;
    };
    const started = Date.now();
    while (!rotated) {
      assert.ok(Date.now() - started < 120_000, 'the rotation converges within two minutes');
      await watch();
      await sleep(200);
    }
    const out = await rotation;
    const cluster = JSON.parse(await ok(mgr, ['info', '--format', '{{json .Swarm.Cluster}}']));
    assert.equal(cluster.RootRotationInProgress, false);
    const newRoot = cluster.TLSInfo.TrustRoot as string;
    assert.notEqual(newRoot.trim(), oldRoot);
    assert.ok(out.trim().endsWith(newRoot.trim()), out);
    // Past the end of the rotation every node drops the old root from its trust; keep watching
    // until then, and a heartbeat period beyond.
    const done = Date.now();
    const trustsOnlyNewRoot = () =>
      [...ids.keys()].every((d) => fs.readFileSync(path.join(certDir(d), 'swarm-root-ca.crt'), 'utf8') === newRoot);
    while (!trustsOnlyNewRoot() || Date.now() - done < 6000) {
      assert.ok(Date.now() - done < 60_000, 'every node trusts only the new root within a minute of the rotation');
      await watch();
      await sleep(200);
    }
    assert.ok(polls > 0);
    assert.deepEqual(seen, [], 'every node stayed Ready and the same tasks kept running');

    const rootCert = new X509Certificate(newRoot);
    for (const d of ids.keys()) {
      const cert = new X509Certificate(fs.readFileSync(path.join(certDir(d), 'swarm-node.crt')));
      assert.ok(cert.verify(rootCert.publicKey), `${d.name} has a certificate from the new root`);
    }
    // The same sessions: the dispatcher registered none since, no agent established one.
    assert.deepEqual(registrations(), regsBefore);
    for (const [d, s] of sessionsBefore) assert.deepEqual(established(d), s, `${d.name} kept its session`);
    assert.deepEqual(await runningTasks(), tasksBefore);
    assert.deepEqual(
      await Promise.all(
        [mgr, w1, w2].map(async (d) => (await ok(d, ['ps', '-q', '--no-trunc'])).trim().split('\n').sort()),
      ),
      containersBefore,
    );

    // New connections: the old root's certificate is refused, the new one is accepted (the
    // manager answers "session invalid" for a made-up session, past authentication).
    fs.writeFileSync(path.join(oldCerts, 'swarm-root-ca.crt'), newRoot);
    const refused = await probe(w1, oldCerts, 'Dispatcher.Heartbeat', { sessionId: 'x' });
    assert.equal(refused.code, 16, JSON.stringify(refused));
    const accepted = await probe(w1, certDir(w1), 'Dispatcher.Heartbeat', { sessionId: 'x' });
    assert.equal(accepted.code, 5, JSON.stringify(accepted));
    // A description update counts only within the caller's own live session.
    const foreign = await probe(w1, certDir(w1), 'Dispatcher.UpdateNodeDescription', {
      sessionId: 'x',
      description: {},
    });
    assert.equal(foreign.code, 5, JSON.stringify(foreign));

    // Joining: the old token names the old root and is refused; the new one works.
    const newToken = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    assert.notEqual(newToken.split('-')[2], oldToken.split('-')[2]);
    const r = await late.docker(['swarm', 'join', '--token', oldToken, `${net.nodes[0].ip}:2377`], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /remote CA does not match fingerprint/);
    assert.equal((await ok(late, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim(), 'inactive');
    await ok(late, ['swarm', 'join', '--token', newToken, `${net.nodes[0].ip}:2377`]);
    await waitFor('the late node Ready', async () => (await nodeStates()).includes(`${late.name} Ready`), 30_000, 250);
    const lateCert = new X509Certificate(fs.readFileSync(path.join(certDir(late), 'swarm-node.crt')));
    assert.ok(lateCert.verify(rootCert.publicKey));
  });

  test('while a rotation runs (a stopped node holds it open) the old root and join tokens stay shown and a node joins with them; then both switch', async () => {
    const cluster = async () =>
      JSON.parse(await ok(mgr, ['info', '--format', '{{json .Swarm.Cluster}}'])) as {
        RootRotationInProgress: boolean;
        TLSInfo: { TrustRoot: string };
      };
    const tokens = async () => [
      (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim(),
      (await ok(mgr, ['swarm', 'join-token', '-q', 'manager'])).trim(),
    ];
    const oldTokens = await tokens();
    const oldRoot = (await cluster()).TLSInfo.TrustRoot;
    // SwarmKit's reconciler waits for every node, down ones too: a stopped worker keeps the
    // rotation from ending until it is back.
    await w2.stop();
    let settled = false;
    // The CLI's default (--detach=false): it waits and shows the convergence.
    const rotation = mgr
      .docker(['swarm', 'ca', '--rotate'], { allowFail: true, timeout: 180_000 })
      .finally(() => (settled = true));
    await waitFor('the rotation to start', async () => (await cluster()).RootRotationInProgress, 30_000, 250);
    // Every reachable node gets its certificate from the new root; the stopped one cannot.
    await waitFor(
      'the manager signing with the new root',
      () => fs.readFileSync(path.join(certDir(mgr), 'swarm-root-ca.crt'), 'utf8') !== oldRoot,
      30_000,
      250,
    );
    // The nodes trust both roots meanwhile, the one the cluster shows first.
    const bundle =
      fs
        .readFileSync(path.join(certDir(mgr), 'swarm-root-ca.crt'), 'utf8')
        .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    assert.equal(bundle.length, 2);
    assert.equal(bundle[0], oldRoot);
    const signing = new X509Certificate(bundle[1]);
    await waitFor(
      'manager and w1 renewed',
      () =>
        [mgr, w1].every((d) =>
          new X509Certificate(fs.readFileSync(path.join(certDir(d), 'swarm-node.crt'))).verify(signing.publicKey),
        ),
      30_000,
      250,
    );

    assert.deepEqual(await tokens(), oldTokens, 'join tokens unchanged during the rotation');
    assert.equal(
      (await ok(mgr, ['swarm', 'ca'])).trim(),
      oldRoot.trim(),
      'swarm ca shows the old root during the rotation',
    );
    assert.equal((await cluster()).TLSInfo.TrustRoot, oldRoot);
    assert.match(await ok(mgr, ['info']), /Root Rotation In Progress: true/);
    // As in SwarmKit, a node's TLSInfo names the old root as its trust root and the new one as the issuer.
    const w1Tls = JSON.parse(await ok(mgr, ['node', 'inspect', w1.name, '--format', '{{json .Description.TLSInfo}}']));
    assert.equal(w1Tls.TrustRoot, oldRoot);
    assert.ok(
      Buffer.from(w1Tls.CertIssuerPublicKey, 'base64').equals(
        signing.publicKey.export({ type: 'spki', format: 'der' }),
      ),
    );
    // A node joins with the token still shown: it is given the old root, and a certificate from
    // the new one that chains to the old root through the cross-signed root sent with it.
    await ok(mid, ['swarm', 'join', '--token', oldTokens[0], `${net.nodes[0].ip}:2377`]);
    const midChain = fs.readFileSync(path.join(certDir(mid), 'swarm-node.crt'), 'utf8');
    await waitFor(
      'the node that joined mid-rotation Ready',
      async () => (await nodeStates()).includes(`${mid.name} Ready`),
      30_000,
      250,
    );
    assert.equal(settled, false, 'swarm ca --rotate still waits');
    assert.equal((await cluster()).RootRotationInProgress, true);

    await w2.start();
    const r = await rotation;
    assert.equal(r.code, 0, r.stderr);
    const after = await cluster();
    assert.equal(after.RootRotationInProgress, false);
    const newRoot = after.TLSInfo.TrustRoot;
    assert.notEqual(newRoot, oldRoot);
    assert.ok(r.stdout.trim().endsWith(newRoot.trim()), r.stdout);
    // The CLI's progress names the root the cluster shows, by digest: the old one while the
    // rotation ran, the new one at the end.
    const digests = [...r.stdout.matchAll(/^desired root digest: (sha256:[0-9a-f]{64})$/gm)].map((x) => x[1]);
    const digest = (pem: string) => 'sha256:' + createHash('sha256').update(pem).digest('hex');
    assert.ok(digests.length >= 2 && digests[0] === digest(oldRoot) && digests.at(-1) === digest(newRoot), r.stdout);
    assert.match(r.stdout, /rotated TLS certificates/);
    const newRootCert = new X509Certificate(newRoot);
    const trustRoots = (await ok(mgr, ['node', 'ls', '-q'])).trim().split('\n');
    for (const id of trustRoots)
      assert.equal(
        JSON.parse(await ok(mgr, ['node', 'inspect', id, '--format', '{{json .Description.TLSInfo.TrustRoot}}'])),
        newRoot,
        `node ${id} reports the new root`,
      );
    assert.ok(
      signing.publicKey.equals(newRootCert.publicKey),
      'the root the CA signed with during the rotation is the one shown after it',
    );

    // The mid-rotation node's certificate validates under both roots.
    const [leafPem, bridgePem] = midChain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    assert.ok(leafPem && bridgePem, midChain);
    const leaf = new X509Certificate(leafPem);
    assert.ok(leaf.verify(newRootCert.publicKey), 'under the new root');
    const bridge = new X509Certificate(bridgePem);
    assert.ok(
      leaf.verify(bridge.publicKey) && bridge.verify(new X509Certificate(oldRoot).publicKey),
      'under the old root, through the cross-signed root',
    );

    // Both tokens changed and name the new root; the old worker token is refused.
    const newTokens = await tokens();
    for (let i = 0; i < 2; i++) assert.notEqual(newTokens[i].split('-')[2], oldTokens[i].split('-')[2]);
    await ok(mid, ['swarm', 'leave']);
    const refused = await mid.docker(['swarm', 'join', '--token', oldTokens[0], `${net.nodes[0].ip}:2377`], {
      allowFail: true,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /remote CA does not match fingerprint/);
    await ok(mid, ['swarm', 'join', '--token', newTokens[0], `${net.nodes[0].ip}:2377`]);
  });
});
