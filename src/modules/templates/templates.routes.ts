import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses, SpaceParams } from '../../http/schemas.js';
import type { TemplatesService } from './templates.service.js';
import { IncludeDeleted, Template, TemplateCreate, TemplateParams, TemplateUpdate } from './templates.schemas.js';

const tags = ['Templates'];
const auth = (permission: string) => ({ auth: { kind: 'space' as const, permission } });

export function templatesRoutes(templates: TemplatesService) {
  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/templates', {
      schema: { operationId: 'templates.list', tags, summary: 'List templates', params: SpaceParams, querystring: IncludeDeleted, response: { 200: Type.Array(Template), ...errorResponses(404) } },
      config: auth('tmpl:r'),
    }, async (request, reply) => {
      const { items, total } = await templates.list(request.space.id, request.query.includeDeleted === true);
      return reply.header('X-Total-Count', String(total)).send(items);
    });

    app.post('/apispaces/:apiSpaceId/templates', {
      schema: { operationId: 'templates.create', tags, summary: 'Create a template', params: SpaceParams, body: TemplateCreate, response: { 201: Template, ...errorResponses(404, 409) } },
      config: auth('tmpl:w'),
    }, async (request, reply) => {
      const { template, etag } = await templates.create(request.actor, request.space.id, request.body);
      return reply.code(201).header('ETag', etag).header('Last-Modified', template._updatedOn)
        .header('Location', `/apispaces/${request.space.id}/templates/${template.id}`).send(template);
    });

    app.get('/apispaces/:apiSpaceId/templates/:templateId', {
      schema: { operationId: 'templates.get', tags, summary: 'Retrieve a template', params: TemplateParams, querystring: IncludeDeleted, response: { 200: Template, ...errorResponses(404) } },
      config: auth('tmpl:r'),
    }, async (request, reply) => {
      const { template, etag } = await templates.read(request.space.id, request.params.templateId, request.query.includeDeleted === true);
      return reply.header('ETag', etag).header('Last-Modified', template._updatedOn).send(template);
    });

    app.put('/apispaces/:apiSpaceId/templates/:templateId', {
      schema: { operationId: 'templates.update', tags, summary: 'Update a template', params: TemplateParams, body: TemplateUpdate, response: { 200: Template, ...errorResponses(404, 409, 412) } },
      config: auth('tmpl:w'),
    }, async (request, reply) => {
      const { template, etag } = await templates.update(request.actor, request.space.id, request.params.templateId, request.body, request.headers['if-match']);
      return reply.header('ETag', etag).header('Last-Modified', template._updatedOn).send(template);
    });

    app.delete('/apispaces/:apiSpaceId/templates/:templateId', {
      schema: { operationId: 'templates.delete', tags, summary: 'Delete a template', params: TemplateParams, response: { 204: Type.Null(), ...errorResponses(404, 409, 412) } },
      config: auth('tmpl:d'),
    }, async (request, reply) => {
      await templates.remove(request.actor, request.space.id, request.params.templateId, request.headers['if-match']);
      return reply.code(204).send(null);
    });
  };
}
