import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses } from '../../http/schemas.js';
import { checkIfMatch } from '../../http/etag.js';
import type { SpacesService } from './spaces.service.js';
import type { AccessTokensService } from './access-tokens.service.js';
import {
  AccessTokenBody, AccessTokenCreated, AccessTokenRecord, ApiSpace, ApiSpaceBody, AuthConfig, AuthConfigBody, IdParams,
  PermissionTemplate, Retention, RetentionBody, TokenParams,
} from './spaces.schemas.js';

const tags = ['API spaces'];
const admin = { auth: { kind: 'account' as const, admin: true } };
const reader = { auth: { kind: 'account' as const, apisRo: true } };

export function spacesRoutes(spaces: SpacesService, tokens: AccessTokensService) {
  return async (app: App) => {
    app.get('/apispaces', {
      schema: { operationId: 'apispaces.list', tags, summary: 'List API spaces', response: { 200: Type.Array(ApiSpace), ...errorResponses() } },
      config: reader,
    }, async (request) => spaces.list(request.actor));

    app.post('/apispaces', {
      schema: { operationId: 'apispaces.create', tags, summary: 'Create an API space', body: ApiSpaceBody, response: { 201: ApiSpace, ...errorResponses() } },
      config: admin,
    }, async (request, reply) => {
      const { space, etag } = await spaces.create(request.actor, request.body.name);
      return reply.code(201).header('ETag', etag).header('Last-Modified', space.updatedOn).header('Location', `/apispaces/${space.id}`).send(space);
    });

    app.get('/apispaces/:apiSpaceId', {
      schema: { operationId: 'apispaces.get', tags, summary: 'Retrieve an API space', params: IdParams, response: { 200: ApiSpace, ...errorResponses(404) } },
      config: reader,
    }, async (request, reply) => {
      const { space, etag } = await spaces.get(request.actor.accountId, request.space.id);
      return reply.header('ETag', etag).header('Last-Modified', space.updatedOn).send(space);
    });

    app.put('/apispaces/:apiSpaceId', {
      schema: { operationId: 'apispaces.update', tags, summary: 'Update an API space', params: IdParams, body: ApiSpaceBody, response: { 200: ApiSpace, ...errorResponses(404, 409, 412) } },
      config: admin,
    }, async (request, reply) => {
      const { space, etag } = await spaces.update(request.actor, request.space.id, request.body.name, (current) => checkIfMatch(request.headers['if-match'], current));
      return reply.header('ETag', etag).header('Last-Modified', space.updatedOn).send(space);
    });

    app.delete('/apispaces/:apiSpaceId', {
      schema: { operationId: 'apispaces.delete', tags, summary: 'Delete an API space', params: IdParams, response: { 204: Type.Null(), ...errorResponses(404, 412) } },
      config: admin,
    }, async (request, reply) => {
      await spaces.remove(request.actor, request.space.id, (current) => checkIfMatch(request.headers['if-match'], current));
      return reply.code(204).send(null);
    });

    app.get('/apispaces/:apiSpaceId/auth', {
      schema: { operationId: 'apispaces.auth.get', tags, summary: 'Get the App Messaging auth configuration', params: IdParams, response: { 200: AuthConfig, ...errorResponses(404) } },
      config: admin,
    }, async (request) => spaces.getAuth(request.actor.accountId, request.space.id));

    app.put('/apispaces/:apiSpaceId/auth', {
      schema: { operationId: 'apispaces.auth.put', tags, summary: 'Set the App Messaging auth configuration', params: IdParams, body: AuthConfigBody, response: { 200: AuthConfig, ...errorResponses(404) } },
      config: admin,
    }, async (request) => spaces.putAuth(request.actor, request.space.id, request.body));

    app.get('/apispaces/:apiSpaceId/retention', {
      schema: { operationId: 'apispaces.retention.get', tags, summary: 'Get data retention settings', params: IdParams, response: { 200: Retention, ...errorResponses(404) } },
      config: admin,
    }, async (request) => spaces.getRetention(request.actor.accountId, request.space.id));

    app.put('/apispaces/:apiSpaceId/retention', {
      schema: { operationId: 'apispaces.retention.put', tags, summary: 'Set data retention settings', params: IdParams, body: RetentionBody, response: { 200: Retention, ...errorResponses(404) } },
      config: admin,
    }, async (request) => spaces.putRetention(request.actor, request.space.id, request.body as never));

    app.post('/apispaces/:apiSpaceId/accesstokens', {
      schema: { operationId: 'accesstokens.create', tags, summary: 'Create an access token', params: IdParams, body: AccessTokenBody, response: { 201: AccessTokenCreated, ...errorResponses(404) } },
      config: admin,
    }, async (request, reply) => {
      const created = await tokens.create(request.actor, request.space.id, request.body);
      return reply.code(201).header('Location', `/apispaces/${request.space.id}/accesstokens/${created.id}`).send(created);
    });

    app.get('/apispaces/:apiSpaceId/accesstokens', {
      schema: { operationId: 'accesstokens.list', tags, summary: 'List access tokens', params: IdParams, response: { 200: Type.Array(AccessTokenRecord), ...errorResponses(404) } },
      config: admin,
    }, async (request) => tokens.list(request.space.id));

    app.get('/apispaces/:apiSpaceId/accesstokens/permissiontemplates', {
      schema: { operationId: 'accesstokens.permissionTemplates', tags, summary: 'List permission templates', params: IdParams, response: { 200: Type.Array(PermissionTemplate), ...errorResponses(404) } },
      config: reader,
    }, async () => [...tokens.templates()]);

    app.get('/apispaces/:apiSpaceId/accesstokens/:tokenId', {
      schema: { operationId: 'accesstokens.get', tags, summary: 'Get an access token record', params: TokenParams, response: { 200: AccessTokenRecord, ...errorResponses(404) } },
      config: admin,
    }, async (request) => tokens.get(request.space.id, request.params.tokenId));

    app.delete('/apispaces/:apiSpaceId/accesstokens/:tokenId', {
      schema: { operationId: 'accesstokens.revoke', tags, summary: 'Revoke an access token', params: TokenParams, response: { 204: Type.Null(), ...errorResponses(404) } },
      config: admin,
    }, async (request, reply) => {
      await tokens.revoke(request.space.id, request.params.tokenId);
      return reply.code(204).send(null);
    });
  };
}
