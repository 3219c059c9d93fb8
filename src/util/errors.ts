/** An error with Docker's status code; the API answers it as `{"message": …}`. Thrown by any stage. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (msg: string) => new ApiError(400, msg);
export const forbidden = (msg: string) => new ApiError(403, msg);
export const notFound = (msg: string) => new ApiError(404, msg);
export const notModified = () => new ApiError(304, '');
export const conflict = (msg: string) => new ApiError(409, msg);
export const serverError = (msg: string) => new ApiError(500, msg);
export const unavailable = (msg: string) => new ApiError(503, msg);
export const notImplemented = (msg: string) => new ApiError(501, msg);

export const noSuchContainer = (ref: string) => notFound(`No such container: ${ref}`);
export const noSuchImage = (ref: string) => notFound(`No such image: ${ref}`);

/**
 * What went wrong with a control-plane call, by gRPC status code name (swarmkit's controlapi
 * answers codes.X; dockerd passes the status through). Defined once, with how each kind is
 * answered over HTTP (moby errdefs / httpstatus: the gRPC code picks the status).
 */
export type ErrorKind =
  | 'InvalidArgument'
  | 'NotFound'
  | 'AlreadyExists'
  | 'FailedPrecondition'
  | 'PermissionDenied'
  | 'Unavailable'
  | 'Unimplemented'
  | 'DeadlineExceeded'
  | 'Unknown'
  | 'Internal';

export const KIND_HTTP_STATUS: Record<ErrorKind, number> = {
  InvalidArgument: 400,
  NotFound: 404,
  AlreadyExists: 409,
  FailedPrecondition: 400,
  PermissionDenied: 403,
  Unavailable: 503,
  Unimplemented: 501,
  DeadlineExceeded: 500,
  Unknown: 500,
  Internal: 500,
};

/** A gRPC status as Go prints it, the words dockerd answers: "rpc error: code = X desc = Y". */
export function rpcText(kind: ErrorKind | string, desc: string): string {
  return `rpc error: code = ${kind} desc = ${desc}`;
}

/** A control-plane failure of one kind; the HTTP answer is its kind's status and gRPC text. */
export class RpcError extends ApiError {
  constructor(
    readonly kind: ErrorKind,
    readonly desc: string,
    /** Only where dockerd wraps the status in another errdefs class (e.g. a Forbidden ingress create). */
    status: number = KIND_HTTP_STATUS[kind],
  ) {
    super(status, rpcText(kind, desc));
  }
}

export const rpcError = (kind: ErrorKind, desc: string, status?: number): RpcError => new RpcError(kind, desc, status);

/** swarmkit's answer when a write compares an older version than the stored one. */
export const outOfSequence = (): RpcError => rpcError('Unknown', 'update out of sequence');

/** A Node.js system error (fs, child_process): errno code, the failed call and, when known, its file. */
type SystemError = Error & { code: string; syscall: string; path?: string; dest?: string };

function isSystemError(e: unknown): e is SystemError {
  const x = e as Partial<SystemError> | undefined;
  return e instanceof Error && typeof x?.code === 'string' && typeof x.syscall === 'string';
}

/** Gives a system error from a write through a file descriptor (which names no file) the file it was writing. */
export function withFile(e: unknown, file: string): unknown {
  if (isSystemError(e) && e.path === undefined) e.path = file;
  return e;
}

/**
 * The text of an error that is not an ApiError, as dockerd's would read. A Node.js system error
 * ("ENOSPC: no space left on device, write") becomes Go's os.PathError form ("write FILE: no space
 * left on device"); anything else keeps its message.
 */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (!isSystemError(e)) return e.message;
  // Node's message is "CODE: description, syscall 'path' -> 'dest'".
  const desc = /^[A-Z0-9_]+: (.*?), [a-z_]+\b/.exec(e.message)?.[1];
  if (!desc) return e.message;
  const files = [e.path, e.dest].filter((x): x is string => typeof x === 'string');
  return `${e.syscall}${files.length ? ' ' + files.join(' ') : ''}: ${desc}`;
}
