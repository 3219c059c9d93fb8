import { X509Certificate } from 'node:crypto';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';
import { peerIdentity } from '../cluster/rpc.js';

/** The roots a peer's certificate is checked against: joined (the cache key) and parsed. */
export interface TrustView {
  root: string;
  certs: X509Certificate[];
}

type Identity = ReturnType<typeof peerIdentity>;
interface Entry {
  id: Identity;
  root: string;
  until: number;
}

/**
 * The TLS socket under a gRPC server call, reached through grpc-js internals (call → its
 * intercepting call → HTTP/2 stream → session → socket); undefined when that shape is not there
 * (another grpc-js version), and identify() then reads the certificate on every call as before.
 */
function callSocket(call: object): object | undefined {
  // grpc-js exposes no handle on a call's connection; these fields are its own (1.14).
  const c = (call as { call?: { stream?: { session?: { socket?: unknown } } } }).call;
  const socket = c?.stream?.session?.socket;
  return socket && typeof socket === 'object' ? socket : undefined;
}

/** Who is calling the cluster RPC server: node ID and role from a peer certificate of this swarm. */
export class PeerIdentities {
  /** Per TLS connection: its peer certificate cannot change (TLS 1.3; HTTP/2 forbids renegotiation). */
  private readonly bySocket = new WeakMap<object, Entry>();
  private readonly identities = new Map<string, Entry>();

  constructor(
    private readonly clusterId: string,
    private readonly trust: () => TrustView,
  ) {}

  identify(call: { getAuthContext(): AuthContext | null }): Identity {
    // Parsing and verifying the peer certificate on every call was a fifth of the manager's
    // time under load: remember the answer per connection, and per certificate, for a minute
    // (and per trust set), never past the certificate's own expiry. Even reading the peer
    // certificate (getAuthContext) cost a tenth of the manager's time with 1,000 nodes
    // reporting, so a connection's answer is found without it.
    // The auth context holds a certificate only when the TLS handshake verified it against the
    // trust in force then (grpc-js: socket.authorized); the chain is checked again here against
    // every root of this swarm, retired ones included, so open connections outlive a rotation.
    const now = Date.now();
    const trust = this.trust();
    const socket = callSocket(call);
    const known = socket ? this.bySocket.get(socket) : undefined;
    if (known && known.root === trust.root && known.until > now) return known.id;
    const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
    const key = raw ? raw.toString('base64') : undefined;
    let entry = key ? this.identities.get(key) : undefined;
    if (!entry || entry.root !== trust.root || entry.until <= now) {
      const found = peerIdentity(call, trust.certs);
      const id = found && found.clusterId === this.clusterId ? found : undefined;
      const notAfter = raw ? Date.parse(new X509Certificate(raw).validTo) : now;
      entry = { id, root: trust.root, until: Math.min(now + 60_000, notAfter) };
      if (key) {
        if (this.identities.size >= 10_000) this.identities.clear();
        this.identities.set(key, entry);
      }
    }
    if (socket && raw) this.bySocket.set(socket, entry);
    return entry.id;
  }
}
