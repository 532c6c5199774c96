import type { FastifyRequest } from 'fastify';
import type { App } from '../module.js';
import type { SpaceDirectory, SpaceRef } from '../../auth/space-directory.js';
import { errorResponses, NoContent } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import { normaliseSpaceId } from '../../lib/ids.js';
import type { SessionsService } from './sessions.service.js';
import { AnonQuery, AnonToken, AuthChallenge, PushBody, Session, SessionCreated, SessionParams, SessionStartBody, SpaceOnly } from './appmessaging.schemas.js';

const tags = ['Sessions'];
// Unauthenticated; the platform's per-IP bucket applies (conventions.md §9.2).
const none = { auth: { kind: 'none' as const }, rateLimit: 'sessionStart' as const };

export function sessionsRoutes(sessions: SessionsService, deps: { spaces: SpaceDirectory }) {
  async function openSpace(request: FastifyRequest): Promise<SpaceRef> {
    const id = normaliseSpaceId((request.params as { apiSpaceId: string }).apiSpaceId);
    const space = id ? await deps.spaces.get(id) : undefined;
    if (!space) throw errors.notFound('API space');
    return space;
  }

  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/sessions/start', {
      schema: { operationId: 'sessions.start', tags, summary: 'Get an authentication challenge', params: SpaceOnly, response: { 200: AuthChallenge, ...errorResponses(404, 429) } },
      config: none,
    }, async (request) => sessions.start(await openSpace(request)));

    app.post('/apispaces/:apiSpaceId/sessions', {
      schema: { operationId: 'sessions.create', tags, summary: 'Start a session with a JWT', params: SpaceOnly, body: SessionStartBody, response: { 201: SessionCreated, ...errorResponses(404, 429) } },
      config: none,
    }, async (request, reply) => {
      const space = await openSpace(request);
      const created = await sessions.create(space, request.params.apiSpaceId, request.body as never, request.ip);
      return reply.code(201).header('Location', `/apispaces/${space.id}/sessions/${created.session.id}`).send(created);
    });

    app.get('/apispaces/:apiSpaceId/sessions/tokens/anon', {
      schema: { operationId: 'sessions.anonToken', tags, summary: 'Mint a JWT for an anonymous visitor', params: SpaceOnly, querystring: AnonQuery, response: { 200: AnonToken, ...errorResponses(404, 429) } },
      config: none,
    }, async (request) => ({ token: await sessions.anonToken(await openSpace(request), request.query.id, request.query.nonce) }));

    app.get('/apispaces/:apiSpaceId/sessions/:sessionId', {
      schema: { operationId: 'sessions.get', tags, summary: 'Read a session', params: SessionParams, response: { 200: Session, ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: 'sess:ra', session: true } },
    }, async (request) => sessions.get(request.actor, request.space.id, request.params.sessionId));

    app.delete('/apispaces/:apiSpaceId/sessions/:sessionId', {
      schema: { operationId: 'sessions.delete', tags, summary: 'End a session', params: SessionParams, response: { 204: NoContent, ...errorResponses(404, 409) } },
      config: { auth: { kind: 'space', permission: 'sess:da', session: true } },
    }, async (request, reply) => {
      await sessions.end(request.actor, request.space.id, request.params.sessionId);
      return reply.code(204).send(null);
    });

    app.put('/apispaces/:apiSpaceId/sessions/:sessionId/push', {
      schema: { operationId: 'sessions.push.put', tags, summary: 'Register the device for push', params: SessionParams, body: PushBody, response: { 204: NoContent, ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: 'sess:wa', session: true } },
    }, async (request, reply) => {
      await sessions.setPush(request.actor, request.space.id, request.params.sessionId, request.body as never);
      return reply.code(204).send(null);
    });

    app.delete('/apispaces/:apiSpaceId/sessions/:sessionId/push', {
      schema: { operationId: 'sessions.push.delete', tags, summary: 'Remove push details', params: SessionParams, response: { 204: NoContent, ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: 'sess:wa', session: true } },
    }, async (request, reply) => {
      await sessions.removePush(request.actor, request.space.id, request.params.sessionId);
      return reply.code(204).send(null);
    });
  };
}
