import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';

export const ApiSpace = Type.Object({
  id: Type.String({ description: 'API space id (UUID)' }),
  name: Type.String(),
  accountId: Type.Integer(),
  createdOn: Type.String({ format: 'date-time' }),
  updatedOn: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  updatedBy: Type.String(),
});

export const ApiSpaceBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: true });
export const IdParams = Type.Object({ apiSpaceId: SpaceIdParam });

export const AuthConfigBody = Type.Object({
  issuer: Type.String({ minLength: 1, maxLength: 500 }),
  audience: Type.String({ minLength: 1, maxLength: 500 }),
  sharedSecret: Type.String({ minLength: 16, maxLength: 512 }),
  idClaim: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  allowAnonymous: Type.Optional(Type.Boolean()),
}, { additionalProperties: true });

export const AuthConfig = Type.Object({
  issuer: Type.String(),
  audience: Type.String(),
  sharedSecret: Type.String({ description: 'Masked: ******** and the last 4 characters' }),
  idClaim: Type.String(),
  allowAnonymous: Type.Boolean(),
});

const Days = Type.Union([Type.Integer({ minimum: 1, maximum: 3650 }), Type.Null()]);
export const RETENTION_DEFAULTS: Readonly<Record<string, number | null>> = {
  messagesDays: 90, inboundMessagesDays: 90, conversationMessagesDays: 365, chatsDays: 365, contentDays: 30,
  deletedProfilesDays: 30, inactiveProfilesDays: null, sessionsDays: 30, analyticsDays: 730,
};
const retentionKeys = Object.keys(RETENTION_DEFAULTS);
export const RetentionBody = Type.Record(Type.String(), Type.Unknown(), { description: 'Retention days per data class (1-3650 or null)' });
export const Retention = Type.Object(Object.fromEntries(retentionKeys.map((k) => [k, Days])));
/** Validates a retention body: known keys, integers 1–3650 or null. */
export function retentionProblems(body: Record<string, unknown>): Array<{ paramName: string; message: string }> {
  const out: Array<{ paramName: string; message: string }> = [];
  for (const k of retentionKeys) {
    const v = body[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 3650) out.push({ paramName: k, message: 'Must be an integer from 1 to 3650, or null' });
  }
  return out;
}

export const AccessTokenBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  profileId: Type.String({ minLength: 1, maxLength: 256 }),
  permissions: Type.Optional(Type.Array(Type.String(), { maxItems: 200 })),
  template: Type.Optional(Type.String()),
  expiresOn: Type.Optional(Type.String({ format: 'date-time' })),
}, { additionalProperties: true });

export const AccessTokenRecord = Type.Object({
  id: Type.String(),
  name: Type.String(),
  profileId: Type.String(),
  permissions: Type.Array(Type.String()),
  expiresOn: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  revoked: Type.Boolean(),
  lastUsedOn: Type.Union([Type.String(), Type.Null()]),
  _createdOn: Type.String(),
  _createdBy: Type.String(),
});

export const AccessTokenCreated = Type.Intersect([AccessTokenRecord, Type.Object({ token: Type.String() })]);
export const TokenParams = Type.Object({ apiSpaceId: SpaceIdParam, tokenId: Type.String({ minLength: 1, maxLength: 100 }) });

export const PermissionTemplate = Type.Object({
  id: Type.String(), name: Type.String(), recommended: Type.Optional(Type.Boolean()), permissions: Type.Array(Type.String()),
});
