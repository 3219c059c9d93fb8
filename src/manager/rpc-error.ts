import { ApiError } from '../util/errors.js';

/** The HTTP status the API answers for each gRPC code a manager's validation raises. */
const GRPC_HTTP: Record<string, number> = { InvalidArgument: 400, NotFound: 404, AlreadyExists: 409, FailedPrecondition: 400, Unimplemented: 501, Unknown: 500 };

/** A control-plane refusal in the words dockerd relays from swarmkit: "rpc error: code = X desc = …". */
export function rpcError(code: keyof typeof GRPC_HTTP, desc: string): ApiError {
  return new ApiError(GRPC_HTTP[code], `rpc error: code = ${code} desc = ${desc}`);
}
