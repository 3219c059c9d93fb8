import * as grpc from '@grpc/grpc-js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';
import { X509Certificate } from 'node:crypto';
import type { Network, NodeDescription, NodeTunnel, Service, Task, TaskStatus, Node } from './types.js';

/**
 * The cluster RPCs on port 2377, carried by gRPC with JSON bodies (no protobuf build step).
 * Three services, as in SwarmKit: the CA (its join methods work without a client
 * certificate), the dispatcher (workers and managers), and manager-only membership.
 */
export const SWARM_PORT = 2377;

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v ?? {})),
  deserialize: (b: Buffer) => (b.length ? JSON.parse(b.toString()) : {}),
};

function method(service: string, name: string, responseStream = false): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/shoal.${service}/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

export const caService = {
  GetRootCACertificate: method('CA', 'GetRootCACertificate'),
  IssueNodeCertificate: method('CA', 'IssueNodeCertificate'),
  RenewNodeCertificate: method('CA', 'RenewNodeCertificate'),
} satisfies grpc.ServiceDefinition;

export const dispatcherService = {
  Session: method('Dispatcher', 'Session', true),
  Heartbeat: method('Dispatcher', 'Heartbeat'),
  UpdateNodeDescription: method('Dispatcher', 'UpdateNodeDescription'),
  UpdateTaskStatus: method('Dispatcher', 'UpdateTaskStatus'),
  Assignments: method('Dispatcher', 'Assignments', true),
  NetworkView: method('Dispatcher', 'NetworkView', true),
  LogSubscriptions: method('Dispatcher', 'LogSubscriptions', true),
  PublishLogs: method('Dispatcher', 'PublishLogs'),
  AttachNetwork: method('Dispatcher', 'AttachNetwork'),
  DetachNetwork: method('Dispatcher', 'DetachNetwork'),
  ReportTunnel: method('Dispatcher', 'ReportTunnel'),
} satisfies grpc.ServiceDefinition;

export const membershipService = {
  Join: method('Membership', 'Join'),
  Leave: method('Membership', 'Leave'),
} satisfies grpc.ServiceDefinition;

// ---- messages ----
export interface RootCAResponse { certificate: string }
export interface IssueRequest { csr: string; token: string; addr: string }
/** Managers also get an etcd certificate (same key) from the etcd CA, which root rotation never changes. */
export interface IssueResponse { nodeId: string; certificate: string; role: 'manager' | 'worker'; clusterId: string; etcdCertificate?: string; etcdCA?: string }
export interface RenewRequest { csr: string }
export interface RenewResponse { certificate: string; role: 'manager' | 'worker'; etcdCertificate?: string; etcdCA?: string }

export interface ManagerAddr { nodeId: string; addr: string }
/** epoch: strictly increasing over the agent's registration attempts (the later one owns the node's liveness). */
export interface SessionRequest { description: NodeDescription; addr: string; epoch?: number }
/** rootCA: the roots to trust, the one the cluster shows first; signingRoot: the CA's (absent from older managers: the first root). */
/** apiClientCA: the CA certificate of Engine API client certificates, which every node's API trusts. */
export interface SessionMessage { sessionId: string; node: Node; managers: ManagerAddr[]; heartbeatPeriodMs: number; rootCA: string; signingRoot?: string; apiClientCA?: string }
export interface HeartbeatRequest { sessionId: string }
export interface HeartbeatResponse { periodMs: number }
/** The agent's node description changed (e.g. a certificate from a new root): sent within its session, which stays. */
export interface NodeDescriptionRequest { sessionId: string; description: NodeDescription }
export interface TaskStatusRequest { sessionId: string; updates: { taskId: string; status: TaskStatus }[] }
export interface AssignmentsRequest { sessionId: string }
/**
 * The node's tasks, and beside them the secrets and configs those tasks reference (only
 * those: swarmkit's dispatcher does the same), with their data in the clear as base64.
 * As in swarmkit, a stream's first message is the complete set; later ones are
 * `incremental`: `tasks` new or changed, `removes` the IDs no longer assigned, and the files
 * of the tasks sent (a file, once sent, stays known for the stream's life).
 */
export interface AssignmentsMessage { type?: 'complete' | 'incremental'; tasks: Task[]; removes?: string[]; secrets?: AssignedFile[]; configs?: AssignedFile[] }
export interface AssignedFile { ID: string; Name: string; Data: string }
/** What a node needs of the cluster to program its overlay data path (see manager/dispatcher/network-view.ts). */
export interface NetworkViewMessage { nodes: Node[]; networks: Network[]; services: Service[]; tasks: Task[]; overlayKeyEpoch?: number }

/** Agent → manager: this node's tunnel for encrypted overlays (see manager/dispatcher/tunnel-report.ts). */
export interface ReportTunnelRequest { tunnel: NodeTunnel }

/** Manager → agent: send these tasks' container logs (or, with `cancel`, stop sending them). See manager/dispatcher/logs.ts. */
export interface LogSubscription { id: string; taskIds: string[]; follow: boolean; tail?: number; since?: number; cancel?: boolean }
/** One log line of a task's container; data in base64. */
export interface LogLine { taskId: string; stream: number; time: string; data: string }
/** Agent → manager: lines for a subscription; `done` when this node has nothing more. */
export interface PublishLogsRequest { subscriptionId: string; lines: LogLine[]; done?: boolean }

/** A standalone container joining an attachable swarm network (swarmkit resourceapi); see manager/networks/attachments.ts. */
export interface AttachNetworkRequest { containerId: string; containerName: string; network: string }
export interface AttachNetworkResponse { task: Task }
/** Detaches this node's container from `networkId` (`docker network disconnect`), or from every network. */
export interface DetachNetworkRequest { containerId: string; networkId?: string }

/** promotion: a node of the swarm becoming a manager, not a new node joining (its node object stays if the join fails). */
export interface JoinRequest { addr: string; promotion?: boolean }
/** dek: the swarm's data-encryption key (base64), for a joining manager. */
export interface JoinResponse { initialCluster: string; clusterToken: string; dek?: string }
export interface LeaveRequest { nodeId: string }

export const CAClient = grpc.makeGenericClientConstructor(caService, 'CA');
export const DispatcherClient = grpc.makeGenericClientConstructor(dispatcherService, 'Dispatcher');
export const MembershipClient = grpc.makeGenericClientConstructor(membershipService, 'Membership');

/**
 * TLS that asks for a client certificate but lets a handshake without one through: the CA's
 * join methods need that; every other method checks the caller with `peerIdentity`.
 */
export class SwarmServerCredentials extends grpc.ServerCredentials {
  constructor(ca: Buffer, cert: Buffer, key: Buffer) {
    super({ requestCert: true, rejectUnauthorized: false }, { ca, cert, key });
  }
  update(ca: Buffer, cert: Buffer, key: Buffer): void {
    this.updateSecureContextOptions({ ca, cert, key });
  }
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export interface PeerIdentity { nodeId: string; role: 'manager' | 'worker'; clusterId: string }

/**
 * Who called: the client certificate, checked against the root CA and its validity period.
 * Undefined for calls without a valid certificate.
 */
export function peerIdentity(call: { getAuthContext(): AuthContext | null }, rootCAs: X509Certificate[], now = new Date()): PeerIdentity | undefined {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw) return undefined;
  const cert = new X509Certificate(raw);
  if (!rootCAs.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) return undefined;
  if (new Date(cert.validFrom) > now || new Date(cert.validTo) < now) return undefined;
  const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(cert.subject)?.[1] ?? '';
  const ou = field('OU');
  if (ou !== 'swarm-manager' && ou !== 'swarm-worker') return undefined;
  return { nodeId: field('CN'), role: ou === 'swarm-manager' ? 'manager' : 'worker', clusterId: field('O') };
}

/** Client credentials: mutual TLS with this node's certificate, trusting only the swarm root. */
export function clientCredentials(ca: Buffer, cert?: Buffer, key?: Buffer): grpc.ChannelCredentials {
  // Managers are addressed by IP; their certificates name them by node ID, so the chain to the
  // swarm root is what is checked, not the host name.
  return grpc.credentials.createSsl(ca, key ?? null, cert ?? null, { checkServerIdentity: () => undefined });
}

/** TLS without verification: only for fetching the root CA, which the token's digest then checks. */
export function insecureCredentials(): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined });
}

export type UnaryFn<Req, Res> = (req: Req, opts?: { deadlineMs?: number }) => Promise<Res>;

/** Promise form of a unary call on a generic client. */
export function unary<Req, Res>(client: grpc.Client, name: string, req: Req, deadlineMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (r: Req, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v: Res) => void) => void>)[name];
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e, v) => (e ? reject(e) : resolve(v)));
  });
}

/** Opens a server stream on a generic client. */
export function serverStream<Req, Res>(client: grpc.Client, name: string, req: Req): grpc.ClientReadableStream<Res> {
  const fn = (client as unknown as Record<string, (r: Req) => grpc.ClientReadableStream<Res>>)[name];
  return fn.call(client, req);
}

export const grpcAddr = (addr: string) => (addr.includes(':') ? addr : `${addr}:${SWARM_PORT}`);
