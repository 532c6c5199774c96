import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses } from '../../http/schemas.js';
import { checkIfMatch } from '../../http/etag.js';
import { EVENT_CATALOGUE, EVENT_TEMPLATES } from '../../events/catalogue.js';
import type { WebhooksService } from './webhooks.service.js';
import {
  AvailableEvent, DeliveriesQuery, Delivery, DeliveryParams, EventTemplate, IncludeDeletedQuery, IncludeSchemasQuery, SpaceParams, Webhook,
  WebhookBody, WebhookParams,
} from './webhooks.schemas.js';

const tags = ['Webhooks'];
const templates = () => EVENT_TEMPLATES.map((t) => ({ ...t, events: [...t.events] }));
const perm = (permission: string) => ({ auth: { kind: 'space' as const, permission } });

export function webhooksRoutes(service: WebhooksService) {
  return async (app: App) => {
    const base = '/apispaces/:apiSpaceId/webhooks';

    app.get(base, {
      schema: { operationId: 'webhooks.list', tags, summary: 'List webhook configurations', params: SpaceParams, querystring: IncludeDeletedQuery, response: { 200: Type.Array(Webhook), ...errorResponses(404) } },
      config: perm('webhook:r'),
    }, async (request, reply) => {
      const { items, newest } = await service.list(request.space.id, request.query.includeDeleted ?? false);
      if (newest) reply.header('ETag', newest.etag).header('Last-Modified', newest.lastModified);
      return items;
    });

    app.post(base, {
      schema: { operationId: 'webhooks.create', tags, summary: 'Create a webhook configuration', params: SpaceParams, body: WebhookBody, response: { 201: Webhook, ...errorResponses(404) } },
      config: perm('webhook:w'),
    }, async (request, reply) => {
      const { webhook, etag } = await service.create(request.actor, request.space.id, request.body);
      return reply.code(201).header('ETag', etag).header('Last-Modified', webhook._updatedOn)
        .header('Location', `/apispaces/${request.space.id}/webhooks/${webhook.id}`).send(webhook);
    });

    const availableEvents = async (request: { query: { includeSchemas?: boolean } }) =>
      EVENT_CATALOGUE.map((e) => ({ type: e.type, description: e.description, filters: e.filters, ...(request.query.includeSchemas ? { schema: e.schema } : {}) }));
    app.get(`${base}/availableevents`, {
      schema: { operationId: 'webhooks.availableEvents', tags, summary: 'List the event types webhooks can subscribe to', params: SpaceParams, querystring: IncludeSchemasQuery, response: { 200: Type.Array(AvailableEvent), ...errorResponses(404) } },
      config: perm('webhook:r'),
    }, availableEvents);

    app.get(`${base}/availabletemplates`, {
      schema: { operationId: 'webhooks.availableTemplates', tags, summary: 'List pre-defined groups of event types', params: SpaceParams, response: { 200: Type.Array(EventTemplate), ...errorResponses(404) } },
      config: perm('webhook:r'),
    }, async () => templates());

    app.get('/apispaces/:apiSpaceId/accesstokens/availabletemplates', {
      schema: { operationId: 'webhooks.availableTemplatesAlias', tags, summary: 'List pre-defined groups of event types (reference index path)', params: SpaceParams, response: { 200: Type.Array(EventTemplate), ...errorResponses(404) } },
      config: perm('webhook:r'),
    }, async () => templates());

    app.get(`${base}/:webhookId`, {
      schema: { operationId: 'webhooks.get', tags, summary: 'Retrieve a webhook configuration', params: WebhookParams, querystring: IncludeDeletedQuery, response: { 200: Webhook, ...errorResponses(404) } },
      config: perm('webhook:r'),
    }, async (request, reply) => {
      const { webhook, etag } = await service.get(request.space.id, request.params.webhookId, request.query.includeDeleted ?? false);
      return reply.header('ETag', etag).header('Last-Modified', webhook._updatedOn).send(webhook);
    });

    app.put(`${base}/:webhookId`, {
      schema: { operationId: 'webhooks.update', tags, summary: 'Replace a webhook configuration', params: WebhookParams, body: WebhookBody, response: { 200: Webhook, ...errorResponses(404, 409, 412) } },
      config: perm('webhook:w'),
    }, async (request, reply) => {
      const { webhook, etag } = await service.update(request.actor, request.space.id, request.params.webhookId, request.body, (current) => checkIfMatch(request.headers['if-match'], current));
      return reply.header('ETag', etag).header('Last-Modified', webhook._updatedOn).send(webhook);
    });

    app.delete(`${base}/:webhookId`, {
      schema: { operationId: 'webhooks.delete', tags, summary: 'Delete a webhook configuration (queued deliveries are dropped)', params: WebhookParams, response: { 204: Type.Null(), ...errorResponses(404, 409, 412) } },
      config: perm('webhook:d'),
    }, async (request, reply) => {
      await service.remove(request.actor, request.space.id, request.params.webhookId, (current) => checkIfMatch(request.headers['if-match'], current));
      return reply.code(204).send(null);
    });

    app.get(`${base}/:webhookId/deliveries`, {
      schema: { operationId: 'webhooks.deliveries.list', tags, summary: 'Recent deliveries with their attempts, status codes and timings', params: WebhookParams, querystring: DeliveriesQuery, response: { 200: Type.Array(Delivery), ...errorResponses(404) } },
      config: perm('webhook:r'),
    }, async (request) => service.listDeliveries(request.space.id, request.params.webhookId, { limit: request.query.limit ?? 50, state: request.query.state }));

    app.post(`${base}/:webhookId/deliveries/:deliveryId/retry`, {
      schema: { operationId: 'webhooks.deliveries.retry', tags, summary: 'Attempt a finished delivery once more now', params: DeliveryParams, response: { 202: Delivery, ...errorResponses(404, 409) } },
      config: perm('webhook:w'),
    }, async (request, reply) => reply.code(202).send(await service.retryDelivery(request.space.id, request.params.webhookId, request.params.deliveryId)));
  };
}
