import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorBody, type ValidationFailure, errors } from './errors.js';

/** Turns Ajv errors into `validationFailures` with JSON-path `paramName`s (`body.to.phoneNumber` → `to.phoneNumber`). */
function failuresFrom(err: FastifyError): ValidationFailure[] {
  const context = err.validationContext ?? 'body';
  return (err.validation ?? []).map((v) => {
    const parts = (v.instancePath || '').split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const params = v.params as Record<string, unknown>;
    if (typeof params.missingProperty === 'string') parts.push(params.missingProperty);
    if (typeof params.additionalProperty === 'string') parts.push(params.additionalProperty);
    let path = '';
    for (const p of parts) path += /^\d+$/.test(p) ? `[${p}]` : path ? `.${p}` : p;
    const prefix = context === 'body' ? '' : `${context === 'querystring' ? 'query' : context === 'headers' ? 'header' : 'path'}.`;
    return { paramName: path ? prefix + path : context === 'body' ? 'body' : prefix.slice(0, -1), message: v.message ?? 'is invalid' };
  });
}

/** Maps any thrown value to an AppError (the only translation of failures into the wire). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as FastifyError & { type?: string; statusCode?: number };
  if (e?.validation) return errors.validation(failuresFrom(e));
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.payloadTooLarge();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType(String(e.message.match(/'([^']*)'/)?.[1] ?? ''));
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.invalidField('body', 'A body is required');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.invalidJson('Content-Length does not match the body');
    case 'FST_ERR_CTP_INVALID_TYPE':
      return errors.unsupportedMediaType('');
    case 'FST_ERR_BAD_URL':
      return errors.invalidField('path', 'The path is not a valid URL (bad percent-encoding)');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return errors.invalidField('path', 'A path parameter is too long');
  }
  if (e instanceof SyntaxError || e?.type === 'entity.parse.failed') return errors.invalidJson();
  // PostgreSQL data exceptions (class 22: NUL bytes, invalid text for a type, out-of-range
  // numbers, over-long values) come from input the validation let through: a client error.
  if (typeof e?.code === 'string' && /^22[0-9A-Z]{3}$/.test(e.code) && 'severity' in (e as object)) {
    return errors.invalidField('body', 'A value is not acceptable (invalid characters, format or range)');
  }
  const status = e?.statusCode;
  if (status && status >= 400 && status < 500) {
    if (status === 413) return errors.payloadTooLarge();
    if (status === 415) return errors.unsupportedMediaType('');
    if (status === 404) return errors.notFound();
    return new AppError(status, status === 400 ? 'ValidationFailed' : 'BadRequest', e.message, status === 400 ? [{ paramName: 'body', message: e.message }] : undefined);
  }
  return new AppError(500, 'InternalError', 'An unexpected error occurred');
}

export function errorBody(err: AppError, requestId: string): ErrorBody {
  return {
    message: err.message,
    code: err.code,
    status: err.status,
    ...(err.validationFailures ? { validationFailures: err.validationFailures } : {}),
    requestId,
    ...(err.extra ?? {}),
  };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const appError = toAppError(err);
  if (appError.status >= 500) request.log.error({ err }, 'request failed');
  else request.log.debug({ code: appError.code, msg: appError.message }, 'request rejected');
  if (appError.headers) reply.headers(appError.headers);
  // Ignore any serializer attached to the route: error bodies have their own fixed shape.
  return reply
    .code(appError.status)
    .type('application/json; charset=utf-8')
    .serializer(JSON.stringify)
    .send(errorBody(appError, String(request.id)));
}

/**
 * Fastify's `frameworkErrors`: failures the router hits before any route or hook runs (malformed
 * percent-encoding, over-long path parameters). Without it Fastify answers its own error shape.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header('X-Request-Id', String(request.id));
  reply.header('Cache-Control', 'no-store');
  return sendError(request, reply, err);
}
