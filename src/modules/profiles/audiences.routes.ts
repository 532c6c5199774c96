import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses, NoContent, SpaceParams } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import { grants } from '../../auth/permissions.js';
import type { Audiences } from './audiences.service.js';
import type { ProfilesService } from './profiles.service.js';
import { parseProfileQuery } from './profiles.query.js';
import { Audience, AudienceBody, AudienceListQuery, AudienceParams, FilterQuery, Profile, queryBool } from './profiles.schemas.js';

const tags = ['Audiences'];
const auth = (permission: string) => ({ auth: { kind: 'space' as const, permission } });

export function audiencesRoutes(audiences: Audiences, profiles: ProfilesService) {
  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/audiences', {
      schema: { operationId: 'audiences.list', tags, summary: 'List audiences', params: SpaceParams, querystring: AudienceListQuery, response: { 200: Type.Array(Audience), ...errorResponses(404) } },
      config: auth('aud:r'),
    }, async (request, reply) => {
      const q = request.query as Record<string, string>;
      const { controls } = parseProfileQuery({ ...(q.$limit !== undefined ? { $limit: q.$limit } : {}), ...(q.$skip !== undefined ? { $skip: q.$skip } : {}) });
      const { items, total } = await audiences.list(request.space.id, controls.limit, controls.skip);
      if (queryBool(q.includeCount, 'includeCount')) for (const a of items) a.profileCount = await audiences.count(request.space.id, a.query);
      return reply.header('X-Total-Count', String(total)).send(items);
    });

    app.post('/apispaces/:apiSpaceId/audiences', {
      schema: { operationId: 'audiences.create', tags, summary: 'Create an audience', params: SpaceParams, body: AudienceBody, response: { 201: Audience, ...errorResponses(404, 409) } },
      config: auth('aud:w'),
    }, async (request, reply) => {
      const { audience, etag } = await audiences.create(request.actor, request.space.id, request.body);
      return reply.code(201).header('ETag', etag).header('Last-Modified', audience._updatedOn).header('Location', `/apispaces/${request.space.id}/audiences/${audience.id}`).send(audience);
    });

    app.get('/apispaces/:apiSpaceId/audiences/:audienceId', {
      schema: { operationId: 'audiences.get', tags, summary: 'Read an audience', params: AudienceParams, querystring: Type.Object({ includeCount: Type.Optional(Type.String()) }, { additionalProperties: true }), response: { 200: Audience, ...errorResponses(404) } },
      config: auth('aud:r'),
    }, async (request, reply) => {
      const { audience, etag } = await audiences.get(request.space.id, request.params.audienceId);
      if (queryBool((request.query as { includeCount?: string }).includeCount, 'includeCount')) audience.profileCount = await audiences.count(request.space.id, audience.query);
      return reply.header('ETag', etag).header('Last-Modified', audience._updatedOn).send(audience);
    });

    app.put('/apispaces/:apiSpaceId/audiences/:audienceId', {
      schema: { operationId: 'audiences.replace', tags, summary: 'Replace an audience', params: AudienceParams, body: AudienceBody, response: { 200: Audience, ...errorResponses(404, 409, 412) } },
      config: auth('aud:w'),
    }, async (request, reply) => {
      const { audience, etag } = await audiences.replace(request.actor, request.space.id, request.params.audienceId, request.body, request.headers['if-match']);
      return reply.header('ETag', etag).header('Last-Modified', audience._updatedOn).send(audience);
    });

    app.delete('/apispaces/:apiSpaceId/audiences/:audienceId', {
      schema: { operationId: 'audiences.delete', tags, summary: 'Delete an audience', params: AudienceParams, response: { 204: NoContent, ...errorResponses(404, 412) } },
      config: auth('aud:d'),
    }, async (request, reply) => {
      await audiences.remove(request.space.id, request.params.audienceId, request.headers['if-match']);
      return reply.code(204).send(null);
    });

    app.get('/apispaces/:apiSpaceId/audiences/:audienceId/profiles', {
      schema: { operationId: 'audiences.profiles', tags, summary: 'Profiles matching an audience', params: AudienceParams, querystring: FilterQuery, response: { 200: Type.Array(Profile), ...errorResponses(404) } },
      config: auth('aud:r'),
    }, async (request, reply) => {
      const actor = request.actor;
      if (actor.kind === 'access' && !grants(actor.permissions ?? new Set(), 'prof:ra')) throw errors.forbidden('Reading audience members also needs prof:ra');
      const q = request.query as Record<string, string | string[]>;
      for (const k of Object.keys(q)) if (!['$limit', '$skip', '$fields'].includes(k)) throw errors.invalidField(`query.${k}`, 'Only $limit, $skip and $fields are allowed here');
      const parsed = parseProfileQuery(q);
      const { audience } = await audiences.get(request.space.id, request.params.audienceId);
      const { items, total } = await profiles.query(actor, request.space.id, { filters: audiences.filters(audience), controls: parsed.controls });
      return reply.header('X-Total-Count', String(total)).send(items);
    });
  };
}
