import { z } from 'zod';
import {
  TASK_STATES,
  type Network,
  type NodeDescription,
  type NodeImageShare,
  type NodeTunnel,
  type Service,
  type Task,
  type TaskStatus,
  type Node,
} from './types.js';

/**
 * The messages of the cluster RPCs, and for each request a schema the server checks it
 * against before a handler sees it. Requests are checked at their top level and wherever a
 * handler reads a field; deeper objects the manager only stores (a node description, a
 * tunnel) need only be objects. Unknown fields pass, as protobuf ignores them.
 */

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** An object the handler stores as it is. */
const opaque = <T>(what: string) => z.custom<T>(isRecord, { message: `${what} must be an object` });

/** A request without fields. */
export type Empty = Record<string, never>;
export const emptyRequest: z.ZodType<Empty> = z.looseObject({}) as unknown as z.ZodType<Empty>;

// ---- CA ----
export interface RootCAResponse {
  certificate: string;
}
export interface IssueRequest {
  csr: string;
  token: string;
  addr: string;
}
export const issueRequest: z.ZodType<IssueRequest> = z.looseObject({
  csr: z.string(),
  token: z.string(),
  addr: z.string(),
});
/** Managers also get an etcd certificate (same key) from the etcd CA, which root rotation never changes. */
export interface IssueResponse {
  nodeId: string;
  certificate: string;
  role: 'manager' | 'worker';
  clusterId: string;
  etcdCertificate?: string;
  etcdCA?: string;
}
export interface RenewRequest {
  csr: string;
}
export const renewRequest: z.ZodType<RenewRequest> = z.looseObject({ csr: z.string() });
export interface RenewResponse {
  certificate: string;
  role: 'manager' | 'worker';
  etcdCertificate?: string;
  etcdCA?: string;
}

// ---- Dispatcher: sessions ----
export interface ManagerAddr {
  nodeId: string;
  addr: string;
}
/** epoch: strictly increasing over the agent's registration attempts (the later one owns the node's liveness). */
export interface SessionRequest {
  description: NodeDescription;
  addr: string;
  epoch?: number;
}
export const sessionRequest: z.ZodType<SessionRequest> = z.looseObject({
  description: opaque<NodeDescription>('description'),
  addr: z.string(),
  epoch: z.number().optional(),
});
/** rootCA: the roots to trust, the one the cluster shows first; signingRoot: the CA's (absent from older managers: the first root). */
/** apiClientCA: the CA certificate of Engine API client certificates, which every node's API trusts. */
export interface SessionMessage {
  sessionId: string;
  node: Node;
  managers: ManagerAddr[];
  heartbeatPeriodMs: number;
  rootCA: string;
  signingRoot?: string;
  apiClientCA?: string;
}
export interface HeartbeatRequest {
  sessionId: string;
}
export const heartbeatRequest: z.ZodType<HeartbeatRequest> = z.looseObject({ sessionId: z.string() });
export interface HeartbeatResponse {
  periodMs: number;
}
/** The agent's node description changed (e.g. a certificate from a new root): sent within its session, which stays. */
export interface NodeDescriptionRequest {
  sessionId: string;
  description: NodeDescription;
}
export const nodeDescriptionRequest: z.ZodType<NodeDescriptionRequest> = z.looseObject({
  sessionId: z.string(),
  description: opaque<NodeDescription>('description'),
});

// ---- Dispatcher: task status and assignments ----
export interface TaskStatusUpdate {
  taskId: string;
  status: TaskStatus;
}
export interface TaskStatusRequest {
  sessionId: string;
  updates: TaskStatusUpdate[];
}
const taskStatus = z.custom<TaskStatus>((v) => isRecord(v) && (TASK_STATES as readonly unknown[]).includes(v.State), {
  message: 'status must be an object with a known State',
});
export const taskStatusRequest: z.ZodType<TaskStatusRequest> = z.looseObject({
  sessionId: z.string(),
  updates: z.array(z.looseObject({ taskId: z.string(), status: taskStatus })),
});
export interface AssignmentsRequest {
  sessionId: string;
}
export const assignmentsRequest: z.ZodType<AssignmentsRequest> = z.looseObject({ sessionId: z.string() });
/**
 * The node's tasks, and beside them the secrets and configs those tasks reference (only
 * those: swarmkit's dispatcher does the same), with their data in the clear as base64.
 * As in swarmkit, a stream's first message is the complete set; later ones are
 * `incremental`: `tasks` new or changed, `removes` the IDs no longer assigned, and the files
 * of the tasks sent (a file, once sent, stays known for the stream's life).
 */
export interface AssignmentsMessage {
  type?: 'complete' | 'incremental';
  tasks: Task[];
  removes?: string[];
  secrets?: AssignedFile[];
  configs?: AssignedFile[];
}
export interface AssignedFile {
  ID: string;
  Name: string;
  Data: string;
}

// ---- Dispatcher: networks ----
/** What a node needs of the cluster to program its overlay data path (see manager/dispatcher/network-view.ts). */
export interface NetworkViewMessage {
  nodes: Node[];
  networks: Network[];
  services: Service[];
  tasks: Task[];
  overlayKeyEpoch?: number;
}
/** Agent → manager: this node's tunnel for encrypted overlays (see manager/dispatcher/tunnel-report.ts). */
export interface ReportTunnelRequest {
  tunnel: NodeTunnel;
}
export const reportTunnelRequest: z.ZodType<ReportTunnelRequest> = z.looseObject({
  tunnel: opaque<NodeTunnel>('tunnel'),
});
/** Agent → manager: the images this node holds and where it serves them (manager/dispatcher/image-index.ts). */
export interface ReportImagesRequest {
  share: NodeImageShare;
}
const sha256Digest = z.string().regex(/^sha256:[a-f0-9]{64}$/);
export const reportImagesRequest: z.ZodType<ReportImagesRequest> = z.looseObject({
  share: z.looseObject({
    Port: z.number().int().min(1).max(65535),
    Images: z
      .array(
        z.looseObject({
          Id: sha256Digest,
          Refs: z.array(z.string().max(512)).max(100),
          Private: z.boolean().optional(),
        }),
      )
      .max(10000),
    Fetching: z.array(sha256Digest).max(100).optional(),
  }),
});
/**
 * Agent → manager: which nodes hold an image. `digest` (an image ID or a manifest digest) decides
 * when given; else `ref`, a full tag reference (`docker.io/library/name:tag`).
 */
export interface FindImageRequest {
  ref?: string;
  digest?: string;
}
export const findImageRequest: z.ZodType<FindImageRequest> = z.looseObject({
  ref: z.string().max(512).optional(),
  digest: sha256Digest.optional(),
});
/** The image ID the reference means in the swarm, and the other nodes that hold it (`addr`: host:port of their image server). */
export interface FindImageResponse {
  imageId?: string;
  holders: { nodeId: string; addr: string }[];
  /** Nodes fetching it now that may already serve some of its layer blobs (public images only). */
  partial?: { nodeId: string; addr: string }[];
  /** Some holder pulled it with credentials: the fetching node keeps it private too. */
  private?: boolean;
}
/**
 * Agent → manager: the calling node is asked by node `nodeId` for the private image `imageId`,
 * which it holds under `refs`; may it serve it (manager/dispatcher/image-access.ts)?
 */
export interface MayServeImageRequest {
  nodeId: string;
  imageId: string;
  refs: string[];
}
export const mayServeImageRequest: z.ZodType<MayServeImageRequest> = z.looseObject({
  nodeId: z.string().min(1).max(64),
  imageId: sha256Digest,
  refs: z.array(z.string().max(512)).max(100),
});
export interface MayServeImageResponse {
  allowed: boolean;
}
/** A standalone container joining an attachable swarm network (swarmkit resourceapi); see manager/networks/attachments.ts. */
export interface AttachNetworkRequest {
  containerId: string;
  containerName: string;
  network: string;
}
export const attachNetworkRequest: z.ZodType<AttachNetworkRequest> = z.looseObject({
  containerId: z.string(),
  containerName: z.string(),
  network: z.string(),
});
export interface AttachNetworkResponse {
  task: Task;
}
/** Detaches this node's container from `networkId` (`docker network disconnect`), or from every network. */
export interface DetachNetworkRequest {
  containerId: string;
  networkId?: string;
}
export const detachNetworkRequest: z.ZodType<DetachNetworkRequest> = z.looseObject({
  containerId: z.string(),
  networkId: z.string().optional(),
});

// ---- Dispatcher: logs ----
/** Manager → agent: send these tasks' container logs (or, with `cancel`, stop sending them). See manager/dispatcher/logs.ts. */
export interface LogSubscription {
  id: string;
  taskIds: string[];
  follow: boolean;
  tail?: number;
  since?: number;
  cancel?: boolean;
}
/** One log line of a task's container; data in base64. */
export interface LogLine {
  taskId: string;
  stream: number;
  time: string;
  data: string;
}
/** Agent → manager: lines for a subscription; `done` when this node has nothing more. */
export interface PublishLogsRequest {
  subscriptionId: string;
  lines: LogLine[];
  done?: boolean;
}
const logLine = z.looseObject({ taskId: z.string(), stream: z.number(), time: z.string(), data: z.string() });
export const publishLogsRequest: z.ZodType<PublishLogsRequest> = z.looseObject({
  subscriptionId: z.string(),
  lines: z.array(logLine),
  done: z.boolean().optional(),
});

// ---- Membership ----
/** promotion: a node of the swarm becoming a manager, not a new node joining (its node object stays if the join fails). */
export interface JoinRequest {
  addr: string;
  promotion?: boolean;
}
export const joinRequest: z.ZodType<JoinRequest> = z.looseObject({
  addr: z.string(),
  promotion: z.boolean().optional(),
});
/** dek: the swarm's data-encryption key (base64), for a joining manager. */
export interface JoinResponse {
  initialCluster: string;
  clusterToken: string;
  dek?: string;
}
export interface LeaveRequest {
  nodeId: string;
}
export const leaveRequest: z.ZodType<LeaveRequest> = z.looseObject({ nodeId: z.string() });
