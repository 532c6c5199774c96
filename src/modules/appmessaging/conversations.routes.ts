import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses, NoContent } from '../../http/schemas.js';
import { checkIfMatch } from '../../http/etag.js';
import { errors } from '../../http/errors.js';
import { idempotencyKeyFrom, type Idempotency } from '../../http/idempotency.js';
import type { ConversationsService } from './conversations.service.js';
import type { ConversationMessagesService } from './messages.service.js';
import {
  Conversation, ConversationCreateBody, ConversationListItem, ConversationListQuery, ConversationParams, ConversationUpdateBody, EventList,
  EventsQuery, IncludeDeletedQuery, MessagePost, MessageResult, MessageSent, MessagesQuery, ParticipantDeleteQuery, ParticipantList,
  ParticipantsBody, SpaceOnly, StatusUpdatesBody,
} from './appmessaging.schemas.js';

const tags = ['Conversations'];
const msgTags = ['Conversation messages'];
const read = { auth: { kind: 'space' as const, permission: 'conv:ra', session: true, agent: true } };
const write = { auth: { kind: 'space' as const, permission: 'conv:wa', session: true } };
const remove = { auth: { kind: 'space' as const, permission: 'conv:da', session: true } };

/** Boolean query values: true/false in any case, 1/0 (conventions.md §2.3). */
function boolQuery(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (/^(true|1)$/i.test(value)) return true;
  if (/^(false|0)$/i.test(value)) return false;
  throw errors.invalidField(`query.${name}`, 'Must be true or false');
}

export function conversationsRoutes(conversations: ConversationsService, messages: ConversationMessagesService, idempotency: Idempotency) {
  return async (app: App) => {
    const base = '/apispaces/:apiSpaceId/conversations';

    app.post(base, {
      schema: { operationId: 'conversations.create', tags, summary: 'Create a conversation', params: SpaceOnly, body: ConversationCreateBody, response: { 201: Conversation, ...errorResponses(404, 409) } },
      config: write,
    }, async (request, reply) => {
      const { conversation, etag, lastModified } = await conversations.create(request.actor, request.space, request.body as never);
      return reply.code(201).header('ETag', etag).header('Last-Modified', lastModified)
        .header('Location', `/apispaces/${request.space.id}/conversations/${encodeURIComponent(conversation.id)}`).send(conversation);
    });

    app.get(base, {
      schema: { operationId: 'conversations.list', tags, summary: 'List conversations', params: SpaceOnly, querystring: ConversationListQuery, response: { 200: Type.Array(ConversationListItem), ...errorResponses(404) } },
      config: read,
    }, async (request) => conversations.list(request.actor, request.space.id, {
      scope: request.query.scope, profileId: request.query.profileId, includeDeleted: boolQuery(request.query.includeDeleted, 'includeDeleted'),
    }));

    app.get(`${base}/:conversationId`, {
      schema: { operationId: 'conversations.get', tags, summary: 'Read a conversation', params: ConversationParams, querystring: IncludeDeletedQuery, response: { 200: Conversation, ...errorResponses(404) } },
      config: read,
    }, async (request, reply) => {
      const r = await conversations.get(request.actor, request.space.id, request.params.conversationId, boolQuery(request.query.includeDeleted, 'includeDeleted'));
      return reply.header('ETag', r.etag).header('Last-Modified', r.lastModified).send(r.conversation);
    });

    app.put(`${base}/:conversationId`, {
      schema: { operationId: 'conversations.update', tags, summary: 'Update a conversation', params: ConversationParams, body: ConversationUpdateBody, response: { 200: Conversation, ...errorResponses(404, 409, 412) } },
      config: write,
    }, async (request, reply) => {
      const body = request.body as { name?: string; description?: string; roles?: never };
      const r = await conversations.update(request.actor, request.space, request.params.conversationId, { name: body.name, description: body.description, roles: body.roles },
        (etag) => checkIfMatch(request.headers['if-match'], etag));
      return reply.header('ETag', r.etag).header('Last-Modified', r.lastModified).send(r.conversation);
    });

    app.delete(`${base}/:conversationId`, {
      schema: { operationId: 'conversations.delete', tags, summary: 'Delete a conversation', params: ConversationParams, response: { 204: NoContent, ...errorResponses(404, 409, 412) } },
      config: remove,
    }, async (request, reply) => {
      await conversations.remove(request.actor, request.space, request.params.conversationId, (etag) => checkIfMatch(request.headers['if-match'], etag));
      return reply.code(204).send(null);
    });

    app.get(`${base}/:conversationId/participants`, {
      schema: { operationId: 'conversations.participants.list', tags, summary: 'List participants', params: ConversationParams, response: { 200: ParticipantList, ...errorResponses(404) } },
      config: read,
    }, async (request) => conversations.participants(request.actor, request.space.id, request.params.conversationId));

    app.post(`${base}/:conversationId/participants`, {
      schema: { operationId: 'conversations.participants.add', tags, summary: 'Add participants', params: ConversationParams, body: ParticipantsBody, response: { 201: NoContent, ...errorResponses(404) } },
      config: write,
    }, async (request, reply) => {
      await conversations.addParticipants(request.actor, request.space, request.params.conversationId, request.body as never);
      return reply.code(201).send(undefined as never);
    });

    app.delete(`${base}/:conversationId/participants`, {
      schema: { operationId: 'conversations.participants.remove', tags, summary: 'Remove participants', params: ConversationParams, querystring: ParticipantDeleteQuery, response: { 204: NoContent, ...errorResponses(404) } },
      config: remove,
    }, async (request, reply) => {
      const ids = request.query.id.flatMap((v: string) => v.split(',')).map((v: string) => v.trim());
      await conversations.removeParticipants(request.actor, request.space, request.params.conversationId, ids);
      return reply.code(204).send(null);
    });

    for (const on of [true, false]) {
      const opts = {
        schema: { operationId: on ? 'conversations.typing.on' : 'conversations.typing.off', tags, summary: on ? 'Start typing' : 'Stop typing', params: ConversationParams, response: { 204: NoContent, ...errorResponses(404) } },
        config: write,
      };
      const handler = async (request: { actor: never; space: never; params: { conversationId: string } }, reply: { code(n: number): { send(body: null): unknown } }) => {
        await conversations.typing(request.actor, request.space, request.params.conversationId, on);
        return reply.code(204).send(null);
      };
      if (on) app.post(`${base}/:conversationId/typing`, opts, handler as never);
      else app.delete(`${base}/:conversationId/typing`, opts, handler as never);
    }

    app.post(`${base}/:conversationId/messages`, {
      schema: { operationId: 'conversationMessages.send', tags: msgTags, summary: 'Send a message', params: ConversationParams, body: MessagePost, response: { 200: MessageSent, ...errorResponses(404, 409, 422) } },
      config: write,
    }, async (request, reply) => {
      const guard = await idempotency.begin({
        scope: request.space.id, route: `conversationMessages.send:${request.params.conversationId}`, key: idempotencyKeyFrom(request.headers), body: request.body,
      });
      if (guard.replay) return reply.code(guard.replay.status as 200).header('Idempotent-Replayed', 'true').send(guard.replay.body as never);
      try {
        return await messages.send(request.actor, request.space, request.params.conversationId, request.body as never, (uow, result) => guard.complete(uow, 200, result));
      } catch (err) {
        await guard.abandon();
        throw err;
      }
    });

    app.get(`${base}/:conversationId/messages`, {
      schema: { operationId: 'conversationMessages.query', tags: msgTags, summary: 'Page messages backwards', params: ConversationParams, querystring: MessagesQuery, response: { 200: MessageResult, ...errorResponses(404) } },
      config: read,
    }, async (request) => messages.page(request.actor, request.space, request.params.conversationId, Math.min(request.query.limit ?? 20, 100), request.query.from));

    app.post(`${base}/:conversationId/messages/statusupdates`, {
      schema: { operationId: 'conversationMessages.statusUpdates', tags: msgTags, summary: 'Mark messages delivered or read', params: ConversationParams, body: StatusUpdatesBody, response: { 200: NoContent, ...errorResponses(404) } },
      config: write,
    }, async (request, reply) => {
      await messages.statusUpdates(request.actor, request.space, request.params.conversationId, request.body as never);
      return reply.code(200).send(undefined as never);
    });

    app.get(`${base}/:conversationId/events`, {
      schema: { operationId: 'conversationMessages.events', tags: msgTags, summary: 'Read the event stream forwards', params: ConversationParams, querystring: EventsQuery, response: { 200: EventList, ...errorResponses(404) } },
      config: read,
    }, async (request) => messages.events(request.actor, request.space, request.params.conversationId, request.query.from ?? 0, Math.min(request.query.limit ?? 100, 500)));
  };
}
