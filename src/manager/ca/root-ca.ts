import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { EC_ALG, generateKeyPair, privateKeyFromPem, privateKeyToPem, x509 } from '../../cluster/pki.js';

/** Root CA lifetime (SwarmKit: 20 years) and node certificate defaults (90 days, min 1 h, backdated 1 h). */
export const ROOT_CA_VALIDITY_MS = 20 * 365 * 24 * 3600_000;
export const DEFAULT_NODE_CERT_EXPIRY_MS = 90 * 24 * 3600_000;
export const MIN_NODE_CERT_EXPIRY_MS = 3600_000;
const BACKDATE_MS = 3600_000;

export const MANAGER_OU = 'swarm-manager';
export const WORKER_OU = 'swarm-worker';

export interface RootCAMaterial {
  certPem: string;
  keyPem: string;
}

const serial = () => '01' + randomBytes(15).toString('hex');

/** Creates the swarm's root CA: ECDSA P-256, CN swarm-ca. */
export async function createRootCA(now = new Date()): Promise<RootCAMaterial> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=swarm-ca',
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + ROOT_CA_VALIDITY_MS),
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyToPem(keys.privateKey) };
}

/**
 * Root rotation's bridge (SwarmKit's cross-signed intermediate): the new root's name and key,
 * signed by the old root. Node certificates issued during a rotation carry it after the leaf,
 * so a peer that still trusts only the old root verifies them too.
 */
export async function crossSignRoot(next: RootCAMaterial, current: RootCAMaterial, now = new Date()): Promise<string> {
  const nextCert = new x509.X509Certificate(next.certPem);
  const currentCert = new x509.X509Certificate(current.certPem);
  const publicKey = await nextCert.publicKey.export(EC_ALG, ['verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: nextCert.subject,
    issuer: currentCert.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    // Never outlives the root that signs it.
    notAfter: new Date(Math.min(nextCert.notAfter.getTime(), currentCert.notAfter.getTime())),
    signingAlgorithm: EC_ALG,
    publicKey,
    signingKey: await privateKeyFromPem(current.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(currentCert),
    ],
  });
  return cert.toString('pem') + '\n';
}

export interface NodeCertRequest {
  csrPem: string;
  nodeId: string;
  role: 'manager' | 'worker';
  clusterId: string;
  /** Extra IP / DNS names (the node's advertise address): etcd peers check them. */
  addresses?: string[];
  expiryMs?: number;
}

/** Signs a node certificate: CN node ID, OU swarm-manager|swarm-worker, O cluster ID. */
export async function signNodeCert(ca: RootCAMaterial, req: NodeCertRequest, now = new Date()): Promise<string> {
  const csr = new x509.Pkcs10CertificateRequest(req.csrPem);
  if (!(await csr.verify())) throw new Error('invalid CSR signature');
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await privateKeyFromPem(ca.keyPem);
  const ou = req.role === 'manager' ? MANAGER_OU : WORKER_OU;
  const names: x509.JsonGeneralName[] = [
    { type: 'dns', value: ou },
    { type: 'dns', value: req.nodeId },
  ];
  if (req.role === 'manager')
    names.push(
      { type: 'dns', value: 'swarm-ca' },
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    );
  for (const a of req.addresses ?? []) names.push({ type: isIP(a) ? 'ip' : 'dns', value: a });
  const expiry = Math.max(req.expiryMs ?? DEFAULT_NODE_CERT_EXPIRY_MS, MIN_NODE_CERT_EXPIRY_MS);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${req.nodeId}, OU=${ou}, O=${req.clusterId}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + expiry),
    signingAlgorithm: EC_ALG,
    publicKey: csr.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return cert.toString('pem') + '\n';
}

/** A random point between 50 % and 80 % of a certificate's life, when it should be renewed. */
export function renewalTime(notBefore: Date, notAfter: Date, rand = Math.random()): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notBefore.getTime() + life * (0.5 + 0.3 * rand));
}
