import { X509Certificate } from 'node:crypto';
import type { Node, TLSInfo } from '../../cluster/types.js';
import { x509 } from '../../cluster/pki.js';

/** The certificates of a PEM bundle, each ending in a newline. */
export function splitPems(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => p + '\n');
}

/** TLSInfo as the Engine API shows it: the root PEM, the issuer's DER subject and public key in base64. */
export function tlsInfo(rootPem: string): TLSInfo {
  const c = new x509.X509Certificate(rootPem);
  return {
    TrustRoot: rootPem,
    CertIssuerSubject: Buffer.from(c.subjectName.toArrayBuffer()).toString('base64'),
    CertIssuerPublicKey: Buffer.from(c.publicKey.rawData).toString('base64'),
  };
}

/**
 * What a node reports: TrustRoot, the first root it trusts; the issuer, whichever certificate
 * signed its leaf: one of its roots, or the certificate sent after the leaf (during a root
 * rotation the new root cross-signed by the old one: same subject and key as the new root).
 */
export function nodeTlsInfo(trustBundle: string, certChain?: string): TLSInfo {
  // Asked for on every node description (each task's template, each session message): parsing
  // and verifying the certificates each time cost ~5 ms of the event loop per call.
  const c = lastTlsInfo;
  if (c && c.trustBundle === trustBundle && c.certChain === certChain) return { ...c.info };
  const info = computeNodeTlsInfo(trustBundle, certChain);
  lastTlsInfo = { trustBundle, certChain, info };
  return { ...info };
}

let lastTlsInfo: { trustBundle: string; certChain?: string; info: TLSInfo } | undefined;

function computeNodeTlsInfo(trustBundle: string, certChain?: string): TLSInfo {
  const roots = splitPems(trustBundle);
  const info = tlsInfo(roots[0]);
  const [leafPem, ...sent] = certChain ? splitPems(certChain) : [];
  if (!leafPem) return info;
  const leaf = new X509Certificate(leafPem);
  const issuer = [...roots, ...sent].find((p) => leaf.verify(new X509Certificate(p).publicKey));
  if (!issuer) return info;
  const i = tlsInfo(issuer);
  return { ...info, CertIssuerSubject: i.CertIssuerSubject, CertIssuerPublicKey: i.CertIssuerPublicKey };
}

/** Whether the node reports a certificate from this issuer (SwarmKit's hasIssuer). */
export function hasIssuer(node: Node, issuer: TLSInfo): boolean {
  const t = node.Description?.TLSInfo;
  return (
    !!t && t.CertIssuerSubject === issuer.CertIssuerSubject && t.CertIssuerPublicKey === issuer.CertIssuerPublicKey
  );
}
