/**
 * TypeBox schemas of the One API (vendor OpenAPI `omnichannel-api.json`,
 * `message-history-api.json`). Message request bodies are described here for OpenAPI but checked
 * by `validate.ts`, which reports every failure of the §2.6 checklist together (with `index` in
 * batches) — something a schema validator stopping at structure cannot do.
 */
import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';

const Free = Type.Object({}, { additionalProperties: true });

export const MessagePart = Type.Object({
  type: Type.String({ description: 'MIME type' }),
  name: Type.Optional(Type.String()),
  url: Type.Optional(Type.String()),
  data: Type.Optional(Type.Union([Type.String(), Free])),
  size: Type.Optional(Type.Integer()),
  channels: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: true });

export const To = Type.Object({
  profileId: Type.Optional(Type.String()),
  phoneNumber: Type.Optional(Type.String()),
  email: Type.Optional(Type.String()),
  fbMessengerId: Type.Optional(Type.String()),
}, { additionalProperties: Type.String(), description: 'Recipient identifiers' });

const requestFields = {
  to: To,
  rules: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 20 })),
  ruleSet: Type.Optional(Type.String()),
  title: Type.Optional(Type.String({ maxLength: 1000 })),
  body: Type.Optional(Type.String()),
  messageParts: Type.Optional(Type.Array(MessagePart, { maxItems: 20 })),
  templateId: Type.Optional(Type.String()),
  customBody: Type.Optional(Free),
  channelOptions: Type.Optional(Free),
  overrides: Type.Optional(Free),
  conversationId: Type.Optional(Type.String()),
  expiresOn: Type.Optional(Type.String({ format: 'date-time' })),
  metadata: Type.Optional(Free),
  requireOptIn: Type.Optional(Type.Boolean()),
  fallbackAfter: Type.Optional(Type.Integer({ minimum: 30, maximum: 86_400 })),
  successStatus: Type.Optional(Type.String({ enum: ['sent', 'delivered', 'read'] })),
};

export const MessageRequest = Type.Object(requestFields, { additionalProperties: true, description: 'MessageBase (one-api.md §2)' });
export const BatchRequest = Type.Array(MessageRequest, { minItems: 1, maxItems: 5000 });

export const Message = Type.Object({
  messageId: Type.String(),
  ...requestFields,
  to: Type.Object({}, { additionalProperties: true }),
  senderProfileId: Type.Optional(Type.String()),
  sentOn: Type.String(),
  status: Type.String({ enum: ['processing', 'retrying', 'sent', 'delivered', 'read', 'expired', 'failed', 'filtered'] }),
  statusDetails: Free,
  _createdOn: Type.String(), _createdBy: Type.String(), _updatedOn: Type.String(), _updatedBy: Type.String(),
}, { additionalProperties: true });

export const BatchResponse = Type.Array(Type.Object({ index: Type.Integer(), messageId: Type.String() }));

export const MessageParams = Type.Object({ apiSpaceId: SpaceIdParam, messageId: Type.String() });
export const StatusParams = Type.Object({ apiSpaceId: SpaceIdParam, messageId: Type.String(), status: Type.String({ enum: ['sent', 'delivered', 'read', 'failed', 'expired', 'filtered'] }) });
export const InboundParams = Type.Object({ apiSpaceId: SpaceIdParam, inboundMessageId: Type.String() });
export const InboundStatusParams = Type.Object({ apiSpaceId: SpaceIdParam, inboundMessageId: Type.String(), status: Type.String({ enum: ['delivered', 'read'] }) });

export const PatchBody = Type.Object({
  redact: Type.Boolean(),
  redactSource: Type.Optional(Type.String({ enum: ['message', 'chat'] })),
});

export const StatusBody = Type.Object({
  channel: Type.String({ minLength: 1 }),
  channelStatus: Type.Optional(Free),
  timestamp: Type.Optional(Type.String({ format: 'date-time' })),
  failureReason: Type.Optional(Type.String()),
});
export const StatusResponse = Type.Object({
  channel: Type.String(),
  channelStatus: Type.Optional(Free),
  timestamp: Type.String(),
  failureReason: Type.Optional(Type.String()),
  applied: Type.Boolean(),
});

export const InboundRequest = Type.Object({
  channel: Type.String(),
  from: Free,
  to: Type.Optional(Free),
  title: Type.Optional(Type.String()),
  body: Type.Optional(Type.String()),
  messageParts: Type.Optional(Type.Array(MessagePart)),
  conversationId: Type.Optional(Type.String()),
  metadata: Type.Optional(Free),
  channelData: Type.Optional(Free),
  correlation: Type.Optional(Type.Object({ messageId: Type.String() }, { additionalProperties: true })),
}, { additionalProperties: true });

export const InboundMessage = Type.Object({
  messageId: Type.String(),
  receivedOn: Type.String(),
  status: Type.String({ enum: ['received', 'delivered', 'read'] }),
  channel: Type.String(),
  from: Free,
}, { additionalProperties: true });

export const InboundStatusBody = Type.Object({
  timestamp: Type.String({ format: 'date-time' }),
  channelStatus: Type.Optional(Free),
});

export const HistoryParams = Type.Object({ apiSpaceId: SpaceIdParam, profileId: Type.String() });
export const HistoryQuery = Type.Object({
  from: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  channelId: Type.Optional(Type.String()),
  direction: Type.Optional(Type.String({ enum: ['inbound', 'outbound'] })),
  conversationId: Type.Optional(Type.String()),
});
export const HistoryEntry = Type.Object({
  messageId: Type.String(),
  submittedOn: Type.String(),
  profileId: Type.Union([Type.String(), Type.Null()]),
  channelId: Type.Union([Type.String(), Type.Null()]),
  direction: Type.String({ enum: ['inbound', 'outbound'] }),
  status: Type.String({ enum: ['processing', 'sent', 'delivered', 'read', 'failed'] }),
  message: Type.Object({ title: Type.Optional(Type.String()), body: Type.Optional(Type.String()), channelData: Type.Optional(Free) }, { additionalProperties: true }),
});
