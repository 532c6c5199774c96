import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import type { Credentials } from '../../auth/credentials.js';
import type { SpaceDirectory } from '../../auth/space-directory.js';
import { grants } from '../../auth/permissions.js';
import { normaliseSpaceId } from '../../lib/ids.js';
import { AppError } from '../../http/errors.js';
import { idempotencyKeyFrom, type Idempotency } from '../../http/idempotency.js';
import { verifyErrors, VerifyError } from './verify.errors.js';
import type { VerifyService } from './verify.service.js';
import { CreateBody, RequestParams, ValidateBody, VerifyCode, VerifyErrors } from './verify.schemas.js';

const tags = ['Verify'];
// Verify checks its own credential (Basic or bearer) so that failures carry Verify's error body.
const none = { auth: { kind: 'none' as const } };
const errorSchemas = { 400: VerifyErrors, 401: VerifyErrors, 403: VerifyErrors, 415: VerifyErrors, 429: VerifyErrors, 500: VerifyErrors };

/**
 * verify.md §2: `Basic base64(apiSpaceId:accessToken)` or `Bearer accessToken`; the token must be
 * an access token of that space holding `msg:sms:s` (or `msg:any:s`).
 */
export async function verifyCaller(header: string | undefined, credentials: Credentials, spaces: SpaceDirectory): Promise<{ actor: Actor; apiSpaceId: string }> {
  if (!header) throw verifyErrors.unauthorized();
  let token: string | undefined;
  let claimedSpace: string | undefined;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw verifyErrors.unauthorized();
    claimedSpace = normaliseSpaceId(decoded.slice(0, colon));
    token = decoded.slice(colon + 1);
    if (!claimedSpace || !token) throw verifyErrors.unauthorized();
  } else {
    token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  }
  const actor = token ? await credentials.authenticateToken(token) : undefined;
  if (!actor) throw verifyErrors.unauthorized();
  if (actor.kind !== 'access' || !actor.apiSpaceId) throw verifyErrors.forbidden('Verify needs an access token of an API space');
  if (claimedSpace && claimedSpace !== actor.apiSpaceId) throw verifyErrors.forbidden('The access token belongs to another API space');
  if (!grants(actor.permissions ?? new Set(), 'msg:sms:s')) throw verifyErrors.forbidden();
  const space = await spaces.get(actor.apiSpaceId);
  if (!space) throw verifyErrors.unauthorized();
  return { actor, apiSpaceId: space.id };
}

function sendVerifyError(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  let e: VerifyError;
  if (err instanceof VerifyError) e = err;
  else if (err instanceof AppError && err.status < 500) {
    const code = err.status === 429 ? 'Throttled' : err.code === 'ValidationFailed' || err.status === 415 ? 'InvalidJson' : err.code;
    e = err.status === 401 ? verifyErrors.unauthorized() : new VerifyError(err.status, [{ code, description: err.message }], err.headers);
  }
  else if ((err as { statusCode?: number })?.statusCode && (err as { statusCode: number }).statusCode < 500) e = verifyErrors.invalidJson((err as Error).message);
  else {
    request.log.error({ err }, 'verify request failed');
    e = verifyErrors.internal();
  }
  return reply.code(e.status).headers(e.headers).type('application/json; charset=utf-8').serializer(JSON.stringify).send(e.problems);
}

export function verifyRoutes(service: VerifyService, credentials: Credentials, spaces: SpaceDirectory, idempotency: Idempotency, transaction: <T>(fn: (uow: import('../../storage/uow.js').Uow) => Promise<T>) => Promise<T>) {
  return async (app: App) => {
    app.setErrorHandler((err, request, reply) => sendVerifyError(request, reply, err));

    app.post('/webapi/verify', {
      schema: { operationId: 'verify.create', tags, summary: 'Create and send a verification code', body: CreateBody, response: { 202: VerifyCode, 402: VerifyErrors, 409: VerifyErrors, 422: VerifyErrors, ...errorSchemas } },
      config: none,
    }, async (request, reply) => {
      const { actor, apiSpaceId } = await verifyCaller(request.headers.authorization, credentials, spaces);
      // conventions.md §10: a repeated key replays the first answer and sends nothing again.
      const guard = await idempotency.begin({ scope: apiSpaceId, route: 'verify.create', key: idempotencyKeyFrom(request.headers), body: request.body });
      if (guard.replay) return reply.code(guard.replay.status).headers({ ...guard.replay.headers, 'Idempotent-Replayed': 'true' }).send(guard.replay.body as never);
      try {
        const created = await service.create(apiSpaceId, actor, request.body);
        await transaction((uow) => guard.complete(uow, 202, created));
        return reply.code(202).send(created);
      } catch (err) {
        await guard.abandon();
        throw err;
      }
    });

    app.put('/webapi/verify/:requestId/validate', {
      schema: { operationId: 'verify.validate', tags, summary: 'Check a verification code', params: RequestParams, body: ValidateBody, response: { 200: VerifyCode, 204: { type: 'null', description: 'Unknown or discarded request' }, ...errorSchemas } },
      config: none,
    }, async (request, reply) => {
      const { apiSpaceId } = await verifyCaller(request.headers.authorization, credentials, spaces);
      const result = await service.validate(apiSpaceId, request.params.requestId, request.body);
      if (!result) return reply.code(204).send();
      return result;
    });
  };
}
