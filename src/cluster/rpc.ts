import * as grpc from '@grpc/grpc-js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';
import { X509Certificate } from 'node:crypto';
import {
  rpcContract,
  rpcPath,
  type RequestOf,
  type ResponseOf,
  type RpcMethod,
  type RpcService,
  type StreamMethodName,
  type UnaryMethodName,
} from './rpc-contract.js';

export * from './rpc-messages.js';
export {
  rpcContract,
  rpcPath,
  type RpcService,
  type RequestOf,
  type ResponseOf,
  type UnaryMethodName,
  type StreamMethodName,
} from './rpc-contract.js';

/**
 * The cluster RPCs' transport: gRPC with JSON bodies (no protobuf build step), typed by the
 * contract in rpc-contract.ts on both sides. Clients use RpcClient; servers addRpcService.
 */
export const SWARM_PORT = 2377;

/** What the server gets for a body that is not JSON: no schema accepts it. */
const MALFORMED = Object.freeze({ malformed: true });
/** A JSON `null` body (grpc-js takes a null message for none at all). */
const NULL_BODY = Object.freeze({ null: true });

/** The JSON codec of every method; a body that does not parse is refused by the server, not thrown. */
export const jsonCodec = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v ?? {})),
  deserialize: (b: Buffer): unknown => {
    if (!b.length) return {};
    try {
      return (JSON.parse(b.toString()) as unknown) ?? NULL_BODY;
    } catch {
      return MALFORMED;
    }
  },
};

/** The grpc-js service definition of one service of the contract. */
function serviceDefinition(service: RpcService): grpc.ServiceDefinition {
  const methods = rpcContract[service] as Record<string, RpcMethod<unknown, unknown, boolean>>;
  return Object.fromEntries(
    Object.entries(methods).map(([name, spec]) => [
      name,
      {
        path: rpcPath(service, name),
        requestStream: false,
        responseStream: spec.responseStream,
        requestSerialize: jsonCodec.serialize,
        requestDeserialize: jsonCodec.deserialize,
        responseSerialize: jsonCodec.serialize,
        responseDeserialize: jsonCodec.deserialize,
      },
    ]),
  );
}

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

export interface PeerIdentity {
  nodeId: string;
  role: 'manager' | 'worker';
  clusterId: string;
}

/**
 * Who called: the client certificate, checked against the root CA and its validity period.
 * Undefined for calls without a valid certificate.
 */
export function peerIdentity(
  call: { getAuthContext(): AuthContext | null },
  rootCAs: X509Certificate[],
  now = new Date(),
): PeerIdentity | undefined {
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
  // Building the TLS context parses the key and certificates (≈ 20 ms of CPU): a session that
  // reconnects with the same material (the same Buffers) reuses it. A renewed certificate is a
  // new Buffer, so it gets a new context.
  const cached = key ? credentialCache.get(key) : undefined;
  if (cached && cached.ca === ca && cached.cert === cert) return cached.creds;
  // Managers are addressed by IP; their certificates name them by node ID, so the chain to the
  // swarm root is what is checked, not the host name.
  const creds = grpc.credentials.createSsl(ca, key ?? null, cert ?? null, { checkServerIdentity: () => undefined });
  if (key) credentialCache.set(key, { ca, cert, creds });
  return creds;
}
const credentialCache = new WeakMap<Buffer, { ca: Buffer; cert?: Buffer; creds: grpc.ChannelCredentials }>();

/** TLS without verification: only for fetching the root CA, which the token's digest then checks. */
export function insecureCredentials(): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(null, null, null, {
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
}

export const grpcAddr = (addr: string) => (addr.includes(':') ? addr : `${addr}:${SWARM_PORT}`);

// ---- client ----

/** A connection to one manager's service, typed by the contract. */
export class RpcClient<S extends RpcService> {
  readonly grpc: grpc.Client;

  constructor(
    private readonly service: S,
    addr: string,
    credentials: grpc.ChannelCredentials,
    options?: grpc.ChannelOptions,
  ) {
    this.grpc = new grpc.Client(addr, credentials, options);
  }

  /** A unary call; rejects with the grpc.ServiceError. */
  call<M extends UnaryMethodName<S>>(method: M, req: RequestOf<S, M>, deadlineMs = 10_000): Promise<ResponseOf<S, M>> {
    return new Promise((resolve, reject) => {
      this.grpc.makeUnaryRequest<RequestOf<S, M>, ResponseOf<S, M>>(
        rpcPath(this.service, method),
        jsonCodec.serialize,
        jsonCodec.deserialize as (b: Buffer) => ResponseOf<S, M>,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (e, v) => (e ? reject(e) : resolve(v!)),
      );
    });
  }

  /** Opens a server stream. */
  stream<M extends StreamMethodName<S>>(method: M, req: RequestOf<S, M>): grpc.ClientReadableStream<ResponseOf<S, M>> {
    return this.grpc.makeServerStreamRequest<RequestOf<S, M>, ResponseOf<S, M>>(
      rpcPath(this.service, method),
      jsonCodec.serialize,
      jsonCodec.deserialize as (b: Buffer) => ResponseOf<S, M>,
      req,
      new grpc.Metadata(),
      {},
    );
  }

  close(): void {
    this.grpc.close();
  }
}

// ---- server ----

export type UnaryHandler<Req, Res> = (
  call: grpc.ServerUnaryCall<Req, Res>,
  cb: grpc.sendUnaryData<Res>,
) => void | Promise<void>;
export type StreamHandler<Req, Res> = (call: grpc.ServerWritableStream<Req, Res>) => void | Promise<void>;
/** A handler for every method of a service, each typed by its contract entry. */
export type RpcHandlers<S extends RpcService> = {
  [M in keyof RpcContract[S]]: RpcContract[S][M] extends RpcMethod<infer Req, infer Res, false>
    ? UnaryHandler<Req, Res>
    : RpcContract[S][M] extends RpcMethod<infer Req, infer Res, true>
      ? StreamHandler<Req, Res>
      : never;
};
type RpcContract = typeof rpcContract;

const failure = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });

/** Why a request does not fit its method's schema, in one line. */
function invalidRequest(
  service: RpcService,
  method: string,
  spec: RpcMethod<unknown, unknown, boolean>,
  request: unknown,
): string | undefined {
  if (request === MALFORMED) return `${service}.${method}: request is not JSON`;
  if (request === NULL_BODY) return `${service}.${method}: request is null`;
  const r = spec.request.safeParse(request);
  if (r.success) return undefined;
  return (
    `${service}.${method}: ` + r.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')
  );
}

/**
 * Serves one service of the contract on `server`. A request that does not fit its schema is
 * answered INVALID_ARGUMENT before the handler runs; a handler that throws or rejects answers
 * INTERNAL (or ends its stream with it) instead of taking the process down.
 */
export function addRpcService<S extends RpcService>(server: grpc.Server, service: S, handlers: RpcHandlers<S>): void {
  const specs = rpcContract[service] as Record<string, RpcMethod<unknown, unknown, boolean>>;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [method, spec] of Object.entries(specs)) {
    const handler = (handlers as Record<string, (...a: unknown[]) => void | Promise<void>>)[method];
    if (spec.responseStream) {
      impl[method] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        // emit('error'), not destroy(): grpc-js sends a status to the client only for the former.
        const fail = (code: grpc.status, details: string) => call.emit('error', failure(code, details));
        const invalid = invalidRequest(service, method, spec, call.request);
        if (invalid) return fail(grpc.status.INVALID_ARGUMENT, invalid);
        guard(
          () => handler(call),
          (e) => fail(grpc.status.INTERNAL, errorText(e)),
        );
      };
    } else {
      impl[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const invalid = invalidRequest(service, method, spec, call.request);
        if (invalid) return cb(failure(grpc.status.INVALID_ARGUMENT, invalid));
        guard(
          () => handler(call, cb),
          (e) => cb(failure(grpc.status.INTERNAL, errorText(e))),
        );
      };
    }
  }
  server.addService(serviceDefinition(service), impl);
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Runs a handler; a synchronous throw or a rejection goes to `onError`. */
function guard(run: () => void | Promise<void>, onError: (e: unknown) => void): void {
  try {
    const r = run();
    if (r instanceof Promise) r.catch(onError);
  } catch (e) {
    onError(e);
  }
}
