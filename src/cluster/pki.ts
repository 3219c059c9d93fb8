import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import './reflect-shim.js';
import * as x509 from '@peculiar/x509';

/**
 * Key and certificate plumbing shared by the CA (managers) and by joining nodes:
 * ECDSA P-256 keys, PEM encoding, CSRs. Signing policy lives in manager/ca.
 */
const crypto = webcrypto as unknown as Crypto; // node's webcrypto is the standard Crypto at runtime
x509.cryptoProvider.set(crypto);

export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function privateKeyFromPem(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  return crypto.subtle.importKey('pkcs8', der, EC_ALG, true, ['sign']);
}

/** A CSR for a node: the CA decides the subject, so the CSR only carries the public key. */
export async function createCsr(keys: CryptoKeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=swarm-node',
    keys,
    signingAlgorithm: EC_ALG,
  });
  return csr.toString('pem');
}

export interface CertIdentity {
  /** CN: node ID */
  nodeId: string;
  /** OU: swarm-manager | swarm-worker */
  role: string;
  /** O: cluster ID */
  clusterId: string;
}

/** Reads CN/OU/O and validity from a PEM certificate (node's own parser, no extra state). */
export function certIdentity(pem: string): CertIdentity & { notBefore: Date; notAfter: Date; issuer: string } {
  const c = new NodeX509(pem);
  const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(c.subject)?.[1] ?? '';
  return {
    nodeId: field('CN'),
    role: field('OU'),
    clusterId: field('O'),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    issuer: c.issuer,
  };
}

/** The first certificate of a PEM bundle. */
export function firstPem(bundle: string): string {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(bundle);
  if (!m) throw new Error('no certificate in PEM');
  return m[0] + '\n';
}

export { x509 };
