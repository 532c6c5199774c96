/**
 * Verify keeps its own error codes and body (verify.md §5): a JSON array of `{code, description}`.
 * `VerifyError` never reaches the platform error handler; the verify routes serialise it.
 */
export interface VerifyProblem {
  code: string;
  description: string;
}

export class VerifyError extends Error {
  constructor(readonly status: number, readonly problems: VerifyProblem[], readonly headers: Record<string, string> = {}) {
    super(problems.map((p) => p.code).join(', '));
    this.name = 'VerifyError';
  }
}

export const verifyErrors = {
  invalid: (problems: VerifyProblem[]) => new VerifyError(400, problems),
  invalidJson: (description = 'The body is not valid JSON or misses required fields') => new VerifyError(400, [{ code: 'InvalidJson', description }]),
  unauthorized: () => new VerifyError(401, [{ code: 'Unauthorized', description: 'Missing or invalid credentials' }], { 'WWW-Authenticate': 'Basic realm="verify"' }),
  forbidden: (description = 'This credential may not send SMS in this API space') => new VerifyError(403, [{ code: 'Forbidden', description }]),
  throttled: (retryAfterSeconds: number) =>
    new VerifyError(429, [{ code: 'Throttled', description: 'Too many codes were requested for this number recently' }], { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) }),
  insufficientCredit: () => new VerifyError(402, [{ code: 'InsufficientCredit', description: 'The account has no credit' }]),
  internal: () => new VerifyError(500, [{ code: 'InternalError', description: 'An unexpected error occurred' }]),
};
