import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';

export const SpaceParams = Type.Object({ apiSpaceId: SpaceIdParam });
export const WebhookParams = Type.Object({ apiSpaceId: SpaceIdParam, webhookId: Type.String({ maxLength: 100 }) });
export const DeliveryParams = Type.Object({ apiSpaceId: SpaceIdParam, webhookId: Type.String({ maxLength: 100 }), deliveryId: Type.String({ maxLength: 100 }) });

const FilterValue = Type.Union([Type.String({ maxLength: 1000 }), Type.Number(), Type.Boolean()], { description: 'Compared as a string' });
const Filter = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), value: FilterValue }, { additionalProperties: true });
const FilterOut = Type.Object({ name: Type.String(), value: Type.String() });

export const WebhookBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100, description: 'Label, e.g. crm_system' }),
  url: Type.String({ minLength: 1, maxLength: 2048, description: 'Absolute https URL of the receiver' }),
  secret: Type.Optional(Type.Union([Type.String({ maxLength: 1024, description: 'HMAC key; 16-256 characters recommended' }), Type.Null()])),
  subscriptions: Type.Optional(Type.Array(
    Type.Object({ type: Type.String({ minLength: 1, maxLength: 100, description: 'Event type or <family>.*' }), filters: Type.Optional(Type.Array(Filter, { maxItems: 100 })) }, { additionalProperties: true }),
    { maxItems: 100 },
  )),
  batch: Type.Optional(Type.Boolean({ default: false })),
  maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  batchTimeout: Type.Optional(Type.Number({ minimum: 1, maximum: 60, default: 60, description: 'Seconds' })),
}, { additionalProperties: true });

export const Webhook = Type.Object({
  id: Type.String(),
  name: Type.String(),
  url: Type.String(),
  secret: Type.Optional(Type.String()),
  subscriptions: Type.Array(Type.Object({ type: Type.String(), filters: Type.Array(FilterOut) })),
  batch: Type.Boolean(),
  maxBatchSize: Type.Number(),
  batchTimeout: Type.Number(),
  _createdOn: Type.String({ format: 'date-time' }),
  _createdBy: Type.String(),
  _updatedOn: Type.String({ format: 'date-time' }),
  _updatedBy: Type.String(),
  _deleted: Type.Optional(Type.Boolean()),
  _deletedOn: Type.Optional(Type.String({ format: 'date-time' })),
  _deletedBy: Type.Optional(Type.String()),
});

export const IncludeDeletedQuery = Type.Object({ includeDeleted: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: true });
export const IncludeSchemasQuery = Type.Object({ includeSchemas: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: true });

export const AvailableEvent = Type.Object({
  type: Type.String(),
  description: Type.String(),
  filters: Type.Array(Type.Object({ name: Type.String(), path: Type.String(), required: Type.Boolean(), description: Type.String() })),
  schema: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'JSON Schema (draft 2020-12) of the payload' })),
});

export const EventTemplate = Type.Object({ name: Type.String(), description: Type.String(), events: Type.Array(Type.String()) });

export const Attempt = Type.Object({
  attempt: Type.Integer(),
  startedOn: Type.String({ format: 'date-time' }),
  durationMs: Type.Integer(),
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.String({ description: 'succeeded, dropped, retry or dead' }),
});

export const Delivery = Type.Object({
  id: Type.String({ description: 'Delivery id, sent as webhook-id' }),
  state: Type.String({ description: 'pending, in_flight, succeeded, dropped, dead or cancelled' }),
  events: Type.Array(Type.Object({ eventId: Type.String(), name: Type.String() })),
  attempts: Type.Integer(),
  nextAttemptOn: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastStatusCode: Type.Union([Type.Integer(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  createdOn: Type.String({ format: 'date-time' }),
  completedOn: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  history: Type.Array(Attempt),
});

export const DeliveriesQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  state: Type.Optional(Type.Union(['pending', 'in_flight', 'succeeded', 'dropped', 'dead', 'cancelled'].map((s) => Type.Literal(s)))),
}, { additionalProperties: true });
