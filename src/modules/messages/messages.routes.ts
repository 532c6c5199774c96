import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { App } from '../module.js';
import { errorResponses, SpaceParams } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import { idempotencyKeyFrom, type Idempotency, type StoredResponse } from '../../http/idempotency.js';
import { PERMISSIONS, grants } from '../../auth/permissions.js';
import { inboundPermission } from './validate.js';
import type { OutboundService } from './messages.service.js';
import type { InboundService } from './inbound.js';
import type { HistoryEntry, HistoryQuery as HistoryQueryT } from './history.js';
import { etagOf, toResource, type Message as StoredMessage } from './messages.repo.js';
import { checkIfMatch, etagFor } from '../../http/etag.js';
import {
  BatchRequest, BatchResponse, HistoryEntry as HistoryEntrySchema, HistoryParams, HistoryQuery, InboundMessage, InboundParams, InboundRequest,
  InboundStatusBody, InboundStatusParams, Message, MessageParams, MessageRequest, PatchBody, StatusBody, StatusParams, StatusResponse,
} from './messages.schemas.js';

const tags = ['Messages'];
const SEND = PERMISSIONS.filter((p) => /^msg:[a-z]+:s$/.test(p));
const INBOUND = PERMISSIONS.filter((p) => /^msg:[a-z]+:i$/.test(p));
/** Message bodies are checked by validate.ts (all §2.6 failures together); params by the auth hook. */
const acceptAll = () => () => true;

export interface MessagesRouteDeps {
  outbound: OutboundService;
  inbound: InboundService;
  history(apiSpaceId: string, profileId: string, q: HistoryQueryT): Promise<HistoryEntry[]>;
  idempotency: Idempotency;
}

/** The resource and its headers, computed once per response (the ETag hashes the resource). */
function present(apiSpaceId: string, m: StoredMessage) {
  const body = toResource(m);
  return { body, headers: { ETag: etagFor(m.row.revision, body), 'Last-Modified': m.row.updated_on, Location: `/apispaces/${apiSpaceId}/messages/${m.row.id}` } };
}

function replay(reply: FastifyReply, r: StoredResponse) {
  return reply.code(r.status).headers({ ...r.headers, 'Idempotent-Replayed': 'true' }).send(r.body);
}

export function messagesRoutes(deps: MessagesRouteDeps) {
  const { outbound, inbound, history, idempotency } = deps;
  return async (app: App) => {
    app.post('/apispaces/:apiSpaceId/messages', {
      schema: { operationId: 'messages.send', tags, summary: 'Send a message', params: SpaceParams, body: MessageRequest, response: { 201: Message, ...errorResponses(404, 409, 413, 422, 429) } },
      validatorCompiler: acceptAll,
      config: { auth: { kind: 'space', permission: SEND } },
    }, async (request, reply) => {
      const space = request.space.id;
      const guard = await idempotency.begin({ scope: space, route: 'messages.send', key: idempotencyKeyFrom(request.headers), body: request.body });
      if (guard.replay) return replay(reply, guard.replay);
      try {
        let out: ReturnType<typeof present> | undefined;
        await outbound.accept(space, request.actor, [request.body], {
          within: async (uow, ms) => {
            out = present(space, ms[0]!);
            await guard.complete(uow, 201, out.body, out.headers);
          },
        });
        return reply.code(201).headers(out!.headers).send(out!.body as never);
      } catch (err) {
        await guard.abandon();
        throw err;
      }
    });

    app.post('/apispaces/:apiSpaceId/messages/batch', {
      schema: { operationId: 'messages.sendBatch', tags, summary: 'Send a batch of messages', params: SpaceParams, body: BatchRequest, response: { 202: BatchResponse, ...errorResponses(404, 409, 413, 422, 429) } },
      validatorCompiler: acceptAll,
      bodyLimit: 10_000_000,
      config: { auth: { kind: 'space', permission: SEND } },
    }, async (request, reply) => {
      const space = request.space.id;
      if (!Array.isArray(request.body)) throw errors.invalidField('body', 'A JSON array of message requests is required');
      const guard = await idempotency.begin({ scope: space, route: 'messages.sendBatch', key: idempotencyKeyFrom(request.headers), body: request.body });
      if (guard.replay) return replay(reply, guard.replay);
      try {
        const list = (ids: string[]) => ids.map((messageId, index) => ({ index, messageId }));
        const ids = await outbound.acceptBatch(space, request.actor, request.body, { within: (uow, ids) => guard.complete(uow, 202, list(ids)) });
        return reply.code(202).send(list(ids));
      } catch (err) {
        await guard.abandon();
        throw err;
      }
    });

    app.get('/apispaces/:apiSpaceId/messages/:messageId', {
      schema: { operationId: 'messages.get', tags, summary: 'Retrieve a message and its status', params: MessageParams, response: { 200: Message, ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: 'msg:r', agent: true } },
    }, async (request, reply) => {
      const { body, headers } = present(request.space.id, await outbound.get(request.space.id, request.params.messageId));
      return reply.header('ETag', headers.ETag).header('Last-Modified', headers['Last-Modified']).send(body as never);
    });

    app.patch('/apispaces/:apiSpaceId/messages/:messageId', {
      schema: { operationId: 'messages.redact', tags, summary: 'Redact a message', params: MessageParams, body: PatchBody, response: { 202: Type.Null(), ...errorResponses(404, 409, 412) } },
      config: { auth: { kind: 'space', permission: 'msg:w' } },
    }, async (request, reply) => {
      const ifMatch = request.headers['if-match'];
      if (request.body.redact) await outbound.redact(request.space.id, request.actor.actor, request.params.messageId, request.body.redactSource ?? 'message', ifMatch);
      else checkIfMatch(ifMatch, etagOf(await outbound.get(request.space.id, request.params.messageId)));
      return reply.code(202).send(null);
    });

    app.delete('/apispaces/:apiSpaceId/messages/:messageId', {
      schema: { operationId: 'messages.delete', tags, summary: 'Delete (and cancel) a message', params: MessageParams, response: { 204: Type.Null(), ...errorResponses(404, 409, 412) } },
      config: { auth: { kind: 'space', permission: 'msg:w' } },
    }, async (request, reply) => {
      await outbound.remove(request.space.id, request.actor.actor, request.params.messageId, request.headers['if-match']);
      return reply.code(204).send(null);
    });

    app.post('/apispaces/:apiSpaceId/messages/:messageId/statuses/:status', {
      schema: { operationId: 'messages.reportStatus', tags, summary: 'Report a message status', params: StatusParams, body: StatusBody, response: { 200: StatusResponse, ...errorResponses(404, 409) } },
      config: { auth: { kind: 'space', permission: INBOUND } },
    }, async (request) => {
      const { applied, timestamp } = await outbound.reportStatus(request.space.id, request.actor, request.params.messageId, request.params.status, request.body);
      return { ...request.body, timestamp, applied };
    });

    app.post('/apispaces/:apiSpaceId/messages/inbounds', {
      schema: { operationId: 'messages.inbound.create', tags, summary: 'Post an inbound message', params: SpaceParams, body: InboundRequest, response: { 201: InboundMessage, ...errorResponses(404, 409, 422) } },
      validatorCompiler: acceptAll,
      config: { auth: { kind: 'space', permission: INBOUND } },
    }, async (request, reply) => {
      const space = request.space.id;
      const body = request.body as Record<string, unknown> | undefined;
      if (request.actor.kind === 'access' && typeof body?.channel === 'string') {
        if (!grants(request.actor.permissions ?? new Set(), inboundPermission(body.channel))) throw errors.forbidden(`This credential cannot post inbound messages for channel ${body.channel}`);
      }
      const guard = await idempotency.begin({ scope: space, route: 'messages.inbound.create', key: idempotencyKeyFrom(request.headers), body });
      if (guard.replay) return replay(reply, guard.replay);
      try {
        const doc = await inbound.ingest(space, request.actor.actor, body, { within: (uow, d) => guard.complete(uow, 201, d, { Location: `/apispaces/${space}/messages/inbounds/${d.messageId}` }) });
        return reply.code(201).header('Location', `/apispaces/${space}/messages/inbounds/${doc.messageId}`).send(doc as never);
      } catch (err) {
        await guard.abandon();
        throw err;
      }
    });

    app.get('/apispaces/:apiSpaceId/messages/inbounds/:inboundMessageId', {
      schema: { operationId: 'messages.inbound.get', tags, summary: 'Retrieve an inbound message', params: InboundParams, response: { 200: InboundMessage, ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: 'msg:r', agent: true } },
    }, async (request) => (await inbound.get(request.space.id, request.params.inboundMessageId)) as never);

    app.post('/apispaces/:apiSpaceId/messages/inbounds/:inboundMessageId/statuses/:status', {
      schema: { operationId: 'messages.inbound.status', tags, summary: 'Acknowledge an inbound message', params: InboundStatusParams, body: InboundStatusBody, response: { 200: InboundMessage, ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: ['msg:r', ...INBOUND] } },
    }, async (request) => (await inbound.setStatus(request.space.id, request.actor.actor, request.params.inboundMessageId, request.params.status, request.body)) as never);

    app.get('/apispaces/:apiSpaceId/profiles/:profileId/messages', {
      schema: { operationId: 'messages.history', tags, summary: 'Message history of a profile', params: HistoryParams, querystring: HistoryQuery, response: { 200: Type.Array(HistoryEntrySchema), ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: 'msg:r', agent: true } },
    }, async (request) => history(request.space.id, request.params.profileId, request.query));
  };
}
