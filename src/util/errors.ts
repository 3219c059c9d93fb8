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
