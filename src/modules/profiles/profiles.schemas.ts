import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';

export const ProfileParams = Type.Object({ apiSpaceId: SpaceIdParam, id: Type.String({ description: 'Profile id' }) });
export const LinkParams = Type.Object({ apiSpaceId: SpaceIdParam, id: Type.String(), linkedId: Type.String() });
export const DeviceParams = Type.Object({ apiSpaceId: SpaceIdParam, id: Type.String(), deviceId: Type.String() });
export const ImportParams = Type.Object({ apiSpaceId: SpaceIdParam, importId: Type.String() });
export const AudienceParams = Type.Object({ apiSpaceId: SpaceIdParam, audienceId: Type.String() });

/** A profile document (free-form, with `_` system fields). */
export const Profile = Type.Object({ id: Type.String() }, { additionalProperties: true, description: 'Profile (profiles.md §1)' });
export const ProfileInput = Type.Object({}, { additionalProperties: true, description: 'Profile properties; `_` properties are ignored' });

/** Free-form query strings: filters (profiles.md §2.2) and `$` controls, parsed by the service. */
export const FilterQuery = Type.Object({}, { additionalProperties: Type.Union([Type.String(), Type.Array(Type.String())]), description: 'Filters and $ controls (profiles.md §2)' });

const QBool = Type.Optional(Type.String({ description: 'true/false/1/0' }));
export const ReadQuery = Type.Object({ includeDeleted: QBool }, { additionalProperties: true });
export const PutQuery = Type.Object({ undelete: QBool }, { additionalProperties: true });
export const PatchQuery = Type.Object({ allowcreate: QBool, deletes: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])) }, { additionalProperties: true });
export const DeleteQuery = Type.Object({ forget: QBool }, { additionalProperties: true });
export const BulkDeleteQuery = Type.Object({ id: Type.Union([Type.String(), Type.Array(Type.String())]) }, { additionalProperties: true });
export const OptOutQuery = Type.Object({ channel: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])) }, { additionalProperties: true });
export const ExportQuery = Type.Object({ query: Type.Optional(Type.String()) }, { additionalProperties: true });

export const BulkBody = Type.Array(Type.Unknown(), { minItems: 1, maxItems: 1000, description: 'Profiles, each with an id' });
export const BulkResult = Type.Array(Type.Object({
  id: Type.Optional(Type.String()), index: Type.Optional(Type.Integer()), result: Type.String(), message: Type.Optional(Type.String()),
}));
export const BulkDeleteResult = Type.Array(Type.Object({ id: Type.String(), result: Type.String() }));

export const OptInBody = Type.Object({ channels: Type.Array(Type.String(), { minItems: 1 }) }, { additionalProperties: true });
export const OptInDefaults = Type.Record(Type.String(), Type.Boolean(), { description: 'Default opt-in per channel' });
export const OptInDefaultsBody = Type.Object({}, { additionalProperties: true });

export const PushValidationBody = Type.Object({ ids: Type.Array(Type.String(), { minItems: 1, maxItems: 1000 }) });
export const PushValidationResult = Type.Array(Type.Object({
  id: Type.String(), pushDevicesCount: Type.Integer(), fcm: Type.Array(Type.String()), apns: Type.Array(Type.String()),
}));

export const SchemaSummary = Type.Array(Type.Object({
  name: Type.String(), path: Type.String(), probability: Type.Number(),
  types: Type.Array(Type.Object({ name: Type.String(), probability: Type.Number(), examples: Type.Array(Type.Unknown()) })),
}));

export const ExportBody = Type.Object({
  format: Type.Union([Type.Literal('json'), Type.Literal('csv')]),
  fields: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  fieldSeparator: Type.Optional(Type.String({ minLength: 1, maxLength: 1 })),
  includeHeaders: Type.Optional(Type.Boolean()),
}, { additionalProperties: true });

export const ImportJob = Type.Object({
  id: Type.String(), status: Type.String(), mode: Type.String(), filename: Type.Union([Type.String(), Type.Null()]),
  rowCount: Type.Integer(), validRowCount: Type.Integer(),
  invalidRows: Type.Array(Type.Object({ row: Type.Integer(), message: Type.String() })),
  duplicateCount: Type.Integer(), existingCount: Type.Integer(), processedCount: Type.Integer(),
  createdCount: Type.Integer(), updatedCount: Type.Integer(), failedCount: Type.Integer(),
  _createdOn: Type.String(), _createdBy: Type.String(), _updatedOn: Type.String(), _updatedBy: Type.String(),
});
export const ImportDuplicates = Type.Array(Type.Object({ id: Type.String(), rows: Type.Array(Type.Integer()), existsInSpace: Type.Boolean() }));
export const ImportQuery = Type.Object({ separator: Type.Optional(Type.String()), mode: Type.Optional(Type.String()), start: QBool, filename: Type.Optional(Type.String()) }, { additionalProperties: true });

export const Audience = Type.Object({
  id: Type.String(), name: Type.String(), description: Type.Optional(Type.String()), query: Type.String(), profileCount: Type.Optional(Type.Integer()),
  _createdOn: Type.String(), _createdBy: Type.String(), _updatedOn: Type.String(), _updatedBy: Type.String(),
});
export const AudienceBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }), description: Type.Optional(Type.String({ maxLength: 2000 })), query: Type.String(),
}, { additionalProperties: true });
export const AudienceListQuery = Type.Object({ $limit: Type.Optional(Type.String()), $skip: Type.Optional(Type.String()), includeCount: QBool }, { additionalProperties: true });

/** Boolean query values: true/false in any case, 1/0 (conventions.md §2.3); anything else → 400. */
export function queryBool(value: string | undefined, name: string): boolean {
  if (value === undefined || value === '') return false;
  const v = value.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw errors.invalidField(`query.${name}`, 'Must be true or false');
}

/** Array query values: repeated keys and comma-separated values, mixed (conventions.md §2.3). */
export function queryList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}
