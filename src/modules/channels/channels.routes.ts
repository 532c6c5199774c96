import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { App } from '../module.js';
import type { SpaceDirectory } from '../../auth/space-directory.js';
import { errorResponses, SpaceParams } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import { normaliseSpaceId } from '../../lib/ids.js';
import type { Actor } from '../../auth/actor.js';
import type { ChannelConfigService } from './channels.service.js';
import type { ChannelRegistryImpl } from './channels.registry.js';
import { ChannelConfig, ChannelConfigBody, ChannelParams, TrackedLinkParams } from './channels.schemas.js';

const tags = ['Channels'];
const reader = { auth: { kind: 'space' as const, permission: 'chan:r' } };
const writer = { auth: { kind: 'space' as const, permission: 'chan:w' } };
const none = { auth: { kind: 'none' as const } };
const CALLBACK_BODY_LIMIT = 20 * 1024 * 1024;

/** Content types are the provider's business on callbacks and clicks: keep the raw bytes. */
function rawBodies(app: App): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
}

export function channelsRoutes(configs: ChannelConfigService, registry: ChannelRegistryImpl, spaces: SpaceDirectory) {
  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/channels', {
      schema: { operationId: 'channels.list', tags, summary: 'List channel configurations', params: SpaceParams, response: { 200: Type.Array(ChannelConfig), ...errorResponses(404) } },
      config: reader,
    }, async (request) => configs.list(request.space.id));

    app.get('/apispaces/:apiSpaceId/channels/:channelId', {
      schema: { operationId: 'channels.get', tags, summary: 'Get a channel configuration', params: ChannelParams, response: { 200: ChannelConfig, ...errorResponses(404) } },
      config: reader,
    }, async (request, reply) => {
      const { view, etag } = await configs.get(request.space.id, request.params.channelId);
      return reply.header('ETag', etag).header('Last-Modified', view._updatedOn).send(view);
    });

    app.put('/apispaces/:apiSpaceId/channels/:channelId', {
      schema: { operationId: 'channels.put', tags, summary: 'Create or replace a channel configuration', params: ChannelParams, body: ChannelConfigBody, response: { 200: ChannelConfig, 201: ChannelConfig, ...errorResponses(404, 409, 412) } },
      config: writer,
    }, async (request, reply) => {
      const { space, params } = request;
      const { view, etag, created } = await configs.put(request.actor as Actor, space.id, params.channelId, request.body, request.headers['if-match']);
      if (created) reply.code(201).header('Location', `/apispaces/${space.id}/channels/${encodeURIComponent(params.channelId)}`);
      return reply.header('ETag', etag).header('Last-Modified', view._updatedOn).send(view);
    });

    app.delete('/apispaces/:apiSpaceId/channels/:channelId', {
      schema: { operationId: 'channels.delete', tags, summary: 'Delete a channel configuration', params: ChannelParams, response: { 204: Type.Null(), ...errorResponses(404, 409, 412) } },
      config: writer,
    }, async (request, reply) => {
      await configs.remove(request.space.id, request.params.channelId, request.headers['if-match']);
      return reply.code(204).send(null);
    });

    await app.register(async (scope: App) => {
      rawBodies(scope);
      const callback = async (request: FastifyRequest<{ Params: { apiSpaceId: string; channelId: string } }>, reply: import('fastify').FastifyReply) => {
        const id = normaliseSpaceId(request.params.apiSpaceId);
        const space = id ? await spaces.get(id) : undefined;
        if (!space) throw errors.notFound('API space');
        const result = await registry.handleCallback(space.id, request.params.channelId, {
          method: request.method === 'GET' ? 'GET' : 'POST',
          headers: request.headers,
          query: (request.query ?? {}) as Record<string, string | string[]>,
          rawBody: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
          contentType: request.headers['content-type'],
        });
        const status = result.status ?? 200;
        if (status === 401) throw errors.unauthorized('The callback signature is not valid');
        reply.code(status);
        if (result.body === undefined) return reply.send();
        return reply.type(result.contentType ?? 'text/plain; charset=utf-8').send(result.body);
      };
      const schema = (operationId: string, summary: string) => ({
        operationId, tags, summary, params: ChannelParams,
        response: { 200: Type.Unknown({ description: 'Whatever the provider expects (challenge echo, empty)' }), ...errorResponses(404) },
      });
      scope.get('/apispaces/:apiSpaceId/channels/:channelId/callback', { schema: schema('channels.callback.verify', 'Provider verification handshake'), config: none }, callback);
      scope.post('/apispaces/:apiSpaceId/channels/:channelId/callback', { schema: schema('channels.callback.receive', 'Provider receipts and inbound messages'), config: none, bodyLimit: CALLBACK_BODY_LIMIT }, callback);

      // Tracked links (channels.md §1.5): any method redirects and records the click.
      const click = async (request: FastifyRequest<{ Params: { token: string } }>, reply: import('fastify').FastifyReply) => {
        const url = await registry.click(request.params.token, request.headers['user-agent']);
        if (!url) throw errors.notFound('Link');
        return reply.code(302).header('Location', url).send();
      };
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
        scope.route({
          method, url: '/t/:token', config: none, handler: click,
          schema: { operationId: `links.click.${method.toLowerCase()}`, tags, summary: 'Follow a tracked link', params: TrackedLinkParams, response: { 302: Type.Null({ description: 'Redirect to the original URL' }), ...errorResponses(404) } },
        });
      }
    });
  };
}
