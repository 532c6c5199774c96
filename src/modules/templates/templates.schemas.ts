import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';
import { MAX_PARTS, PART_TYPE } from '../../lib/message-parts.js';

const TEMPLATE_ID = '^[A-Za-z0-9_-]{1,100}$';

export const MessagePart = Type.Object({
  type: Type.String({ pattern: PART_TYPE.source, maxLength: 255, description: 'MIME type, type/subtype' }),
  name: Type.Optional(Type.String({ maxLength: 255 })),
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  data: Type.Optional(Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })])),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  channels: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })),
}, { additionalProperties: true });

const Parts = Type.Array(MessagePart, { minItems: 1, maxItems: MAX_PARTS });

export const TemplateCreate = Type.Object({
  id: Type.Optional(Type.String({ pattern: TEMPLATE_ID, description: 'Letters, digits, - and _; derived from name when absent' })),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  messageParts: Parts,
}, { additionalProperties: true });

export const TemplateUpdate = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  messageParts: Parts,
}, { additionalProperties: true });

export const Template = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.Optional(Type.String()),
  messageParts: Type.Array(Type.Object({}, { additionalProperties: true })),
  _createdOn: Type.String({ format: 'date-time' }),
  _createdBy: Type.String(),
  _updatedOn: Type.String({ format: 'date-time' }),
  _updatedBy: Type.String(),
  _deleted: Type.Optional(Type.Boolean()),
  _deletedOn: Type.Optional(Type.String({ format: 'date-time' })),
  _deletedBy: Type.Optional(Type.String()),
}, { description: 'templateFull' });

export const TemplateParams = Type.Object({ apiSpaceId: SpaceIdParam, templateId: Type.String({ minLength: 1, maxLength: 200 }) });
export const IncludeDeleted = Type.Object({ includeDeleted: Type.Optional(Type.Boolean()) }, { additionalProperties: true });
