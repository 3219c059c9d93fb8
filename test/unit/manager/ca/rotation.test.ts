import { test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import assert from 'node:assert/strict';
import { createRootCA, crossSignRoot, signNodeCert, type RootCAMaterial } from '../../../../src/manager/ca/root-ca.js';
import { createCsr, generateKeyPair } from '../../../../src/cluster/pki.js';
import { nodeTlsInfo, tlsInfo } from '../../../../src/manager/ca/tls-info.js';
import { finishedCluster, rotationCanFinish, unconvergedNodes } from '../../../../src/manager/ca/rotation.js';
import { generateJoinToken, rootDigest } from '../../../../src/manager/ca/tokens.js';
import type { Cluster, Node } from '../../../../src/cluster/types.js';
import { makeNode } from '../../../helpers/swarm-fixtures.js';

const leaf = async (ca: RootCAMaterial) =>
  signNodeCert(ca, { csrPem: await createCsr(await generateKeyPair()), nodeId: 'n1', role: 'worker', clusterId: 'c1' });

const withIssuer = (id: string, root: string, state: Node['Status']['State'] = 'ready'): Node => {
  const n = makeNode(id, { state });
  n.Description = { ...n.Description!, TLSInfo: tlsInfo(root) };
  return n;
};

const cluster = (shown: string, inProgress: boolean): Cluster => ({
  ID: 'c1',
  Version: { Index: 3 },
  CreatedAt: '',
  UpdatedAt: '',
  Spec: { Name: 'default', Labels: {} },
  TLSInfo: tlsInfo(shown),
  RootRotationInProgress: inProgress,
  DefaultAddrPool: ['10.0.0.0/8'],
  SubnetSize: 24,
  DataPathPort: 4789,
  JoinTokens: { Worker: generateJoinToken(shown), Manager: generateJoinToken(shown) },
});

test('node TLSInfo: the issuer of a certificate from the new root, whether the node trusts the old root only or both', async () => {
  const oldRoot = await createRootCA();
  const newRoot = await createRootCA();
  const bridge = await crossSignRoot(newRoot, oldRoot);
  const fresh = (await leaf(newRoot)) + bridge;
  const want = tlsInfo(newRoot.certPem);
  // A node that joined during the rotation: it trusts the old root it was shown.
  const joined = nodeTlsInfo(oldRoot.certPem, fresh);
  assert.equal(joined.TrustRoot, oldRoot.certPem);
  assert.deepEqual(
    [joined.CertIssuerSubject, joined.CertIssuerPublicKey],
    [want.CertIssuerSubject, want.CertIssuerPublicKey],
  );
  const both = nodeTlsInfo(newRoot.certPem + oldRoot.certPem, fresh);
  assert.equal(both.TrustRoot, newRoot.certPem);
  assert.equal(both.CertIssuerPublicKey, want.CertIssuerPublicKey);
  // Not yet renewed: the old root's.
  const stale = nodeTlsInfo(newRoot.certPem + oldRoot.certPem, await leaf(oldRoot));
  assert.equal(stale.CertIssuerPublicKey, tlsInfo(oldRoot.certPem).CertIssuerPublicKey);
  assert.notEqual(stale.CertIssuerPublicKey, want.CertIssuerPublicKey);
});

test('a rotation ends only when every node, down ones included, has a certificate from the new root', async () => {
  const oldRoot = (await createRootCA()).certPem;
  const newRoot = (await createRootCA()).certPem;
  const rotating = { signingRoot: newRoot, caRotating: true };
  const c = cluster(oldRoot, true);
  const up = [withIssuer('a', newRoot), withIssuer('b', newRoot)];
  const down = withIssuer('c', oldRoot, 'down');
  assert.deepEqual(
    unconvergedNodes([...up, down], newRoot).map((n) => n.ID),
    ['c'],
  );
  assert.equal(rotationCanFinish(c, [...up, down], rotating), false, 'a down node holds the rotation open');
  assert.equal(rotationCanFinish(c, [...up, withIssuer('c', newRoot, 'down')], rotating), true);
  assert.equal(rotationCanFinish(c, up, rotating), true, 'a removed node no longer counts');
  const noDescription = makeNode('d');
  noDescription.Description = { ...noDescription.Description!, TLSInfo: undefined };
  assert.equal(rotationCanFinish(c, [...up, noDescription], rotating), false);
  assert.equal(rotationCanFinish(cluster(oldRoot, false), up, rotating), false, 'no rotation in progress');
});

test('a manager whose CA view lags the cluster object does not end the rotation', async () => {
  const oldRoot = (await createRootCA()).certPem;
  const newRoot = (await createRootCA()).certPem;
  const nodes = [withIssuer('a', oldRoot)];
  assert.equal(rotationCanFinish(cluster(oldRoot, true), nodes, { signingRoot: oldRoot, caRotating: false }), false);
  // The CA side already finished (the cluster commit failed): finishing again is what is left.
  assert.equal(
    rotationCanFinish(cluster(oldRoot, true), [withIssuer('a', newRoot)], { signingRoot: newRoot, caRotating: false }),
    true,
  );
});

test('finishing shows the new root and makes both join tokens name it', async () => {
  const oldRoot = (await createRootCA()).certPem;
  const newRoot = (await createRootCA()).certPem;
  const c = cluster(oldRoot, true);
  const before = structuredClone(c);
  const f = finishedCluster(c, newRoot);
  assert.deepEqual(c, before, 'the given cluster is left as it was');
  assert.equal(f.RootRotationInProgress, false);
  assert.deepEqual(f.TLSInfo, tlsInfo(newRoot));
  for (const t of [f.JoinTokens.Worker, f.JoinTokens.Manager]) assert.equal(t.split('-')[2], rootDigest(newRoot));
  assert.notEqual(f.JoinTokens.Worker, f.JoinTokens.Manager);
  assert.equal(f.Version.Index, 3);
});

test('a rotation started during another one is cross-signed by the root still shown; finishing trusts only the signing root', async () => {
  const { startRotation, finishRotation, caRotating } = await import('../../../../src/manager/ca/stored-ca.js');
  const r0 = await createRootCA();
  const r1 = await createRootCA();
  const r2 = await createRootCA();
  const start = { ...r0, trust: [r0.certPem], etcd: r0 };
  assert.equal(caRotating(start), false);
  const first = await startRotation(start, r1);
  assert.equal(caRotating(first), true);
  assert.equal(first.rotatingFrom?.certPem, r0.certPem);
  assert.deepEqual(first.trust, [r1.certPem, r0.certPem]);
  const second = await startRotation(first, r2);
  assert.equal(second.certPem, r2.certPem);
  assert.equal(second.rotatingFrom?.certPem, r0.certPem, 'the root shown stays the first one');
  assert.deepEqual(
    second.trust,
    [r2.certPem, r1.certPem, r0.certPem],
    'certificates issued by the abandoned root stay valid until the end',
  );
  const bridge = new X509Certificate(second.intermediate!);
  assert.ok(bridge.verify(new X509Certificate(r0.certPem).publicKey), 'cross-signed by the shown root');
  assert.ok(bridge.publicKey.equals(new X509Certificate(r2.certPem).publicKey));
  assert.equal(second.etcd?.certPem, r0.certPem, 'etcd keeps its CA');
  const done = finishRotation(second);
  assert.equal(caRotating(done), false);
  assert.deepEqual(done.trust, [r2.certPem]);
  assert.equal(done.intermediate, undefined);
  assert.deepEqual(done.retired, [r1.certPem, r0.certPem]);
  assert.equal(done.keyPem, r2.keyPem);
});

test('nodes are sent every trusted root, the one the cluster shows first', async () => {
  const { startRotation, finishRotation, trustedRoots } = await import('../../../../src/manager/ca/stored-ca.js');
  const r0 = await createRootCA();
  const r1 = await createRootCA();
  const rotating = await startRotation({ ...r0, trust: [r0.certPem] }, r1);
  assert.equal(trustedRoots(rotating, r0.certPem), r0.certPem + r1.certPem);
  // Between the CA ending the rotation and the cluster showing the new root: only what is trusted.
  assert.equal(trustedRoots(finishRotation(rotating), r0.certPem), r1.certPem);
  assert.equal(trustedRoots(finishRotation(rotating), r1.certPem), r1.certPem);
  assert.equal(trustedRoots(rotating, undefined), r1.certPem + r0.certPem);
});
