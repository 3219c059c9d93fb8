import type { z } from 'zod';
import * as m from './rpc-messages.js';

/**
 * The cluster RPCs on port 2377, defined once: service → method → request schema and
 * response type, unary or server-streaming. Three services, as in SwarmKit: the CA (its
 * join methods work without a client certificate), the dispatcher (workers and managers),
 * and manager-only membership. Clients (RpcClient) and servers (addRpcService) are typed by
 * this table, so a method name or body that does not match it does not compile, and the
 * server checks every request against its schema before a handler sees it.
 */
export interface RpcMethod<Req, Res, Streaming extends boolean> {
  /** Checked on the server before the handler runs. */
  readonly request: z.ZodType<Req>;
  /** The server sends a stream of responses (gRPC server streaming). */
  readonly responseStream: Streaming;
  /** Type only: what the server answers. */
  readonly response?: Res;
}

const unary = <Req, Res>(request: z.ZodType<Req>): RpcMethod<Req, Res, false> => ({ request, responseStream: false });
const stream = <Req, Res>(request: z.ZodType<Req>): RpcMethod<Req, Res, true> => ({ request, responseStream: true });

export const rpcContract = {
  CA: {
    GetRootCACertificate: unary<m.Empty, m.RootCAResponse>(m.emptyRequest),
    IssueNodeCertificate: unary<m.IssueRequest, m.IssueResponse>(m.issueRequest),
    RenewNodeCertificate: unary<m.RenewRequest, m.RenewResponse>(m.renewRequest),
  },
  Dispatcher: {
    Session: stream<m.SessionRequest, m.SessionMessage>(m.sessionRequest),
    Heartbeat: unary<m.HeartbeatRequest, m.HeartbeatResponse>(m.heartbeatRequest),
    UpdateNodeDescription: unary<m.NodeDescriptionRequest, m.Empty>(m.nodeDescriptionRequest),
    UpdateTaskStatus: unary<m.TaskStatusRequest, m.Empty>(m.taskStatusRequest),
    Assignments: stream<m.AssignmentsRequest, m.AssignmentsMessage>(m.assignmentsRequest),
    NetworkView: stream<m.Empty, m.NetworkViewMessage>(m.emptyRequest),
    LogSubscriptions: stream<m.Empty, m.LogSubscription>(m.emptyRequest),
    PublishLogs: unary<m.PublishLogsRequest, m.Empty>(m.publishLogsRequest),
    AttachNetwork: unary<m.AttachNetworkRequest, m.AttachNetworkResponse>(m.attachNetworkRequest),
    DetachNetwork: unary<m.DetachNetworkRequest, m.Empty>(m.detachNetworkRequest),
    ReportTunnel: unary<m.ReportTunnelRequest, m.Empty>(m.reportTunnelRequest),
    ReportImages: unary<m.ReportImagesRequest, m.Empty>(m.reportImagesRequest),
    FindImage: unary<m.FindImageRequest, m.FindImageResponse>(m.findImageRequest),
    MayServeImage: unary<m.MayServeImageRequest, m.MayServeImageResponse>(m.mayServeImageRequest),
  },
  Membership: {
    Join: unary<m.JoinRequest, m.JoinResponse>(m.joinRequest),
    Leave: unary<m.LeaveRequest, m.Empty>(m.leaveRequest),
  },
} as const;

export type RpcContract = typeof rpcContract;
export type RpcService = keyof RpcContract;
export type RpcMethodName<S extends RpcService> = keyof RpcContract[S] & string;
type MethodOf<S extends RpcService, M extends RpcMethodName<S>> = RpcContract[S][M];
export type RequestOf<S extends RpcService, M extends RpcMethodName<S>> =
  MethodOf<S, M> extends RpcMethod<infer Req, unknown, boolean> ? Req : never;
export type ResponseOf<S extends RpcService, M extends RpcMethodName<S>> =
  MethodOf<S, M> extends RpcMethod<unknown, infer Res, boolean> ? Res : never;
/** The methods of a service that answer once. */
export type UnaryMethodName<S extends RpcService> = {
  [M in RpcMethodName<S>]: MethodOf<S, M> extends RpcMethod<unknown, unknown, false> ? M : never;
}[RpcMethodName<S>];
/** The methods of a service that answer with a stream. */
export type StreamMethodName<S extends RpcService> = {
  [M in RpcMethodName<S>]: MethodOf<S, M> extends RpcMethod<unknown, unknown, true> ? M : never;
}[RpcMethodName<S>];

/** The gRPC path of a method: `/shoal.<Service>/<Method>`. */
export const rpcPath = (service: RpcService, method: string): string => `/shoal.${service}/${method}`;
