import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import { isRole, type Role } from './roles.js';

/** Who made a call, as the audit log names them, and the role they act with. */
export interface ClientIdentity {
  /** `unix socket`, `tcp 127.0.0.1` (plain HTTP), or the certificate's subject `CN=alice, OU=viewer`. */
  name: string;
  /** Undefined: authenticated, but no role (a node certificate, an unmapped subject). */
  role: Role | undefined;
  /** The certificate's serial, when there is one: tells two certificates of one subject apart. */
  serial?: string;
}

/**
 * The daemon's role map (`--api-roles FILE`): subjects to roles, for certificates whose OU is not
 * a role (docker-machine's own certificates have none). Keys are a whole subject in the form the
 * audit log prints (`CN=alice, O=acme`) or just `CN=alice`. Example: `{"subjects": {"CN=alice": "admin"}}`.
 */
export interface RoleMap {
  subjects: Record<string, Role>;
}

export function loadRoleMap(file: string): RoleMap {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`--api-roles ${file}: ${(e as Error).message}`);
  }
  const subjects = (parsed as { subjects?: unknown })?.subjects;
  if (!subjects || typeof subjects !== 'object')
    throw new Error(`--api-roles ${file}: want {"subjects": {"CN=name": "admin|operator|viewer"}}`);
  const out: Record<string, Role> = {};
  for (const [k, v] of Object.entries(subjects)) {
    if (typeof v !== 'string' || !isRole(v))
      throw new Error(
        `--api-roles ${file}: subject "${k}": role must be admin, operator or viewer, not ${JSON.stringify(v)}`,
      );
    out[k] = v;
  }
  return { subjects: out };
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** `CN=alice, OU=viewer, O=acme`: the parts in the usual order, one value each. */
export function subjectName(s: PeerCertificate['subject']): string {
  const order = ['CN', 'OU', 'O', 'L', 'ST', 'C'];
  const keys = [...order.filter((k) => k in s), ...Object.keys(s).filter((k) => !order.includes(k))];
  return keys.map((k) => `${k}=${[s[k as keyof typeof s]].flat().join('+')}`).join(', ');
}

/** The role of a certificate: the role map first, then an OU that names a role. */
export function certificateRole(subject: PeerCertificate['subject'], map: RoleMap | undefined): Role | undefined {
  const full = subjectName(subject);
  const cn = first(subject.CN);
  const mapped = map?.subjects[full] ?? (cn !== undefined ? map?.subjects[`CN=${cn}`] : undefined);
  if (mapped) return mapped;
  const ous = [subject.OU ?? []].flat().filter(isRole);
  return ous.length === 1 ? ous[0] : undefined;
}

/**
 * Who is on the other end of a request. A unix socket is root on the machine (file mode 0660);
 * plain TCP was allowed only on loopback or with --insecure-api, both the operator's own
 * choice, and is admin as well; over TLS the verified client certificate decides.
 */
export function identify(req: IncomingMessage, map: RoleMap | undefined): ClientIdentity {
  const s = req.socket;
  if (s instanceof TLSSocket) {
    // The server cuts unverified clients off at the handshake; this is the second lock.
    if (!s.authorized) return { name: 'unverified client', role: undefined };
    const c = s.getPeerCertificate();
    if (!c || !c.subject) return { name: 'no certificate', role: undefined };
    return { name: subjectName(c.subject), role: certificateRole(c.subject, map), serial: c.serialNumber };
  }
  if (!s.remoteAddress) return { name: 'unix socket', role: 'admin' };
  return { name: `tcp ${s.remoteAddress.replace(/^::ffff:/, '')}`, role: 'admin' };
}
