/**
 * The one error class and the one wire body (conventions.md §4). Services throw `AppError`s made by
 * the factories below (or by module `*.errors.ts` files built on them); `http/error-handler.ts`
 * is the only place that turns anything into a response.
 */
export interface ValidationFailure {
  paramName: string;
  message: string;
  index?: number;
}

export interface ErrorBody {
  message: string;
  code: string;
  status: number;
  validationFailures?: ValidationFailure[];
  requestId: string;
  [extra: string]: unknown;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly validationFailures?: ValidationFailure[],
    readonly headers?: Record<string, string>,
    /** Extra fields merged into the body (kept small and documented by the endpoint). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const errors = {
  validation: (failures: ValidationFailure[], message = 'The request has validation errors') =>
    new AppError(400, 'ValidationFailed', message, failures),
  invalidField: (paramName: string, message: string) =>
    new AppError(400, 'ValidationFailed', 'The request has validation errors', [{ paramName, message }]),
  invalidJson: (message = 'The request body is not valid JSON') => new AppError(400, 'InvalidJson', message),
  unauthorized: (message = 'Authentication is required') =>
    new AppError(401, 'Unauthorized', message, undefined, { 'WWW-Authenticate': 'Bearer realm="switchboard"' }),
  forbidden: (message = 'This credential does not allow this operation', code = 'Forbidden') => new AppError(403, code, message),
  notFound: (what = 'Resource') => new AppError(404, 'NotFound', `${what} not found`),
  methodNotAllowed: (allow: string[]) =>
    new AppError(405, 'MethodNotAllowed', 'Method not allowed on this path', undefined, { Allow: allow.join(', ') }),
  conflict: (message = 'Conflict', code = 'Conflict') => new AppError(409, code, message),
  preconditionFailed: (message = 'If-Match does not match the current ETag') => new AppError(412, 'PreconditionFailed', message),
  payloadTooLarge: (message = 'The request body is too large') => new AppError(413, 'PayloadTooLarge', message),
  unsupportedMediaType: (type: string) => new AppError(415, 'UnsupportedMediaType', `Unsupported media type "${type}"`),
  tooManyRequests: (retryAfterSeconds: number) =>
    new AppError(429, 'TooManyRequests', 'Too many requests', undefined, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) }),
  unavailable: (message = 'Service unavailable', retryAfterSeconds = 1) =>
    new AppError(503, 'ServiceUnavailable', message, undefined, { 'Retry-After': String(retryAfterSeconds) }),
};
