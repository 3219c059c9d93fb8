import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createRootCA, signNodeCert, renewalTime } from '../../../../src/manager/ca/root-ca.js';
import { certIdentity, createCsr, generateKeyPair } from '../../../../src/cluster/pki.js';

test('root CA is a self-signed ECDSA P-256 CA named swarm-ca', async () => {
  const ca = await createRootCA();
  const c = new X509Certificate(ca.certPem);
  assert.equal(c.subject, 'CN=swarm-ca');
  assert.equal(c.ca, true);
  assert.equal(c.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(c.verify(c.publicKey));
});

test('node certificate carries CN node ID, OU role, O cluster ID, and chains to the root', async () => {
  const ca = await createRootCA();
  const keys = await generateKeyPair();
  const pem = await signNodeCert(ca, {
    csrPem: await createCsr(keys),
    nodeId: 'node1abc',
    role: 'manager',
    clusterId: 'clusterxyz',
    addresses: ['10.1.2.3'],
  });
  const id = certIdentity(pem);
  assert.deepEqual([id.nodeId, id.role, id.clusterId], ['node1abc', 'swarm-manager', 'clusterxyz']);
  const c = new X509Certificate(pem);
  assert.ok(c.verify(new X509Certificate(ca.certPem).publicKey));
  assert.ok(c.checkIP('10.1.2.3'));
  assert.ok(c.checkIP('127.0.0.1'));
  const life = id.notAfter.getTime() - id.notBefore.getTime();
  assert.equal(Math.round(life / 3600_000), 90 * 24 + 1);
});

test('worker certificate has OU swarm-worker and is not signed by another CA', async () => {
  const ca = await createRootCA();
  const other = await createRootCA();
  const keys = await generateKeyPair();
  const pem = await signNodeCert(ca, {
    csrPem: await createCsr(keys),
    nodeId: 'w1',
    role: 'worker',
    clusterId: 'c1',
    expiryMs: 10,
  });
  assert.equal(certIdentity(pem).role, 'swarm-worker');
  assert.equal(new X509Certificate(pem).verify(new X509Certificate(other.certPem).publicKey), false);
  // expiry below the 1 h minimum is raised to it
  const id = certIdentity(pem);
  assert.equal(id.notAfter.getTime() - id.notBefore.getTime(), 2 * 3600_000);
});

test('renewal happens between 50 % and 80 % of the life', () => {
  const a = new Date(0);
  const b = new Date(1000);
  assert.equal(renewalTime(a, b, 0).getTime(), 500);
  assert.equal(renewalTime(a, b, 1).getTime(), 800);
});

import { peerIdentity } from '../../../../src/cluster/rpc.js';

function fakeCall(pem: string | undefined) {
  return {
    getAuthContext: () => (pem ? { sslPeerCertificate: { raw: new X509Certificate(pem).raw } as never } : null),
  };
}

test('peer identity: a valid certificate names node, role and cluster', async () => {
  const ca = await createRootCA();
  const pem = await signNodeCert(ca, {
    csrPem: await createCsr(await generateKeyPair()),
    nodeId: 'n1',
    role: 'worker',
    clusterId: 'c1',
  });
  assert.deepEqual(peerIdentity(fakeCall(pem), [new X509Certificate(ca.certPem)]), {
    nodeId: 'n1',
    role: 'worker',
    clusterId: 'c1',
  });
});

test('peer identity: no certificate, another CA, or an expired certificate is refused', async () => {
  const ca = await createRootCA();
  const other = await createRootCA();
  const roots = [new X509Certificate(ca.certPem)];
  const foreign = await signNodeCert(other, {
    csrPem: await createCsr(await generateKeyPair()),
    nodeId: 'n1',
    role: 'manager',
    clusterId: 'c1',
  });
  const expired = await signNodeCert(
    ca,
    {
      csrPem: await createCsr(await generateKeyPair()),
      nodeId: 'n2',
      role: 'worker',
      clusterId: 'c1',
      expiryMs: 3600_000,
    },
    new Date(Date.now() - 3 * 3600_000),
  );
  assert.equal(peerIdentity(fakeCall(undefined), roots), undefined);
  assert.equal(peerIdentity(fakeCall(foreign), roots), undefined);
  assert.equal(peerIdentity(fakeCall(expired), roots), undefined);
});

test('root rotation: a leaf from the new root, sent with the cross-signed root, passes a TLS handshake that trusts only the old root', async () => {
  const { crossSignRoot } = await import('../../../../src/manager/ca/root-ca.js');
  const { privateKeyToPem } = await import('../../../../src/cluster/pki.js');
  const tls = await import('node:tls');
  const oldRoot = await createRootCA();
  const newRoot = await createRootCA();
  const bridge = await crossSignRoot(newRoot, oldRoot);
  const b = new X509Certificate(bridge);
  assert.equal(b.subject, new X509Certificate(newRoot.certPem).subject);
  assert.ok(b.publicKey.equals(new X509Certificate(newRoot.certPem).publicKey));
  assert.ok(
    b.checkIssued(new X509Certificate(oldRoot.certPem)) && b.verify(new X509Certificate(oldRoot.certPem).publicKey),
  );

  const issue = async (ca: typeof oldRoot, nodeId: string) => {
    const keys = await generateKeyPair();
    return {
      cert: await signNodeCert(ca, { csrPem: await createCsr(keys), nodeId, role: 'worker', clusterId: 'c1' }),
      key: await privateKeyToPem(keys.privateKey),
    };
  };
  const server = await issue(oldRoot, 'srv');
  const client = await issue(newRoot, 'cli');
  /** Whether a server trusting `serverCa` authorizes a client sending `chain`. */
  const handshake = (serverCa: string, chain: string) =>
    new Promise<boolean>((resolve, reject) => {
      const srv = tls.createServer({ ...server, ca: serverCa, requestCert: true, rejectUnauthorized: false }, (s) => {
        resolve(s.authorized);
        s.end();
        srv.close();
      });
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        const c = tls.connect(
          {
            host: '127.0.0.1',
            port,
            ca: oldRoot.certPem,
            cert: chain,
            key: client.key,
            checkServerIdentity: () => undefined,
          },
          () => c.end(),
        );
        c.on('error', reject);
      });
    });
  assert.equal(
    await handshake(oldRoot.certPem, client.cert + bridge),
    true,
    'old-root peer accepts the new leaf through the bridge',
  );
  assert.equal(await handshake(oldRoot.certPem, client.cert), false, 'without the bridge it cannot');
  assert.equal(await handshake(newRoot.certPem, client.cert + bridge), true, 'a new-root peer accepts it as well');
});
