import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { EC_ALG, generateKeyPair, privateKeyFromPem, privateKeyToPem, x509 } from './pki.js';

/**
 * Certificates for the Engine API over TLS (what docker-machine makes): a CA, server
 * certificates naming the addresses clients dial, and client certificates whose OU is a role.
 * ECDSA P-256 as the swarm's own certificates.
 */
export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

const serial = () => '01' + randomBytes(15).toString('hex');
const DAY_MS = 24 * 3600_000;
const BACKDATE_MS = 3600_000;

/** A self-signed CA for API certificates (`shoal machine` keeps one per lab, as docker-machine). */
export async function createApiCA(
  commonName: string,
  validityMs = 10 * 365 * DAY_MS,
  now = new Date(),
): Promise<CertAndKey> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + validityMs),
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyToPem(keys.privateKey) };
}

export interface ApiCertRequest {
  /** Distinguished name, e.g. `CN=alice, OU=operator` (commas separate the parts). */
  subject: string;
  usage: 'server' | 'client';
  /** Server certificates: the IPs and DNS names clients dial. */
  names?: string[];
  /** A CSR (PEM) carrying the public key; without it a key pair is made and returned. */
  csrPem?: string;
  notBefore?: Date;
  notAfter?: Date;
}

/** Signs an API certificate with `ca`; returns the key too when it made one. */
export async function signApiCert(
  ca: CertAndKey,
  req: ApiCertRequest,
  now = new Date(),
): Promise<{ certPem: string; keyPem?: string }> {
  let publicKey: CryptoKey | x509.PublicKey;
  let keyPem: string | undefined;
  if (req.csrPem) {
    const csr = new x509.Pkcs10CertificateRequest(req.csrPem);
    if (!(await csr.verify())) throw new Error('invalid CSR signature');
    publicKey = csr.publicKey;
  } else {
    const keys = await generateKeyPair();
    publicKey = keys.publicKey;
    keyPem = await privateKeyToPem(keys.privateKey);
  }
  const caCert = new x509.X509Certificate(ca.certPem);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([
      req.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ]),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (req.names?.length)
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        req.names.map((n): x509.JsonGeneralName => ({ type: isIP(n) ? 'ip' : 'dns', value: n })),
      ),
    );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: req.subject,
    issuer: caCert.subject,
    notBefore: req.notBefore ?? new Date(now.getTime() - BACKDATE_MS),
    // Never outlives the CA that signs it.
    notAfter: new Date(
      Math.min((req.notAfter ?? new Date(now.getTime() + 3 * 365 * DAY_MS)).getTime(), caCert.notAfter.getTime()),
    ),
    signingAlgorithm: EC_ALG,
    publicKey,
    signingKey: await privateKeyFromPem(ca.keyPem),
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', ...(keyPem ? { keyPem } : {}) };
}

/** A key pair and a CSR for it (the client keeps the key; only the CSR travels). */
export async function createKeyAndCsr(commonName: string): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: EC_ALG,
  });
  return { keyPem: await privateKeyToPem(keys.privateKey), csrPem: csr.toString('pem') };
}
