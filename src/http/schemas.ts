import { Type, type TSchema } from '@sinclair/typebox';

/** The error body of conventions.md §4, used in every route's response schemas. */
export const ErrorSchema = Type.Object(
  {
    message: Type.String(),
    code: Type.String(),
    status: Type.Integer(),
    validationFailures: Type.Optional(
      Type.Array(Type.Object({ paramName: Type.String(), message: Type.String(), index: Type.Optional(Type.Integer()) })),
    ),
    requestId: Type.String(),
  },
  { $id: undefined, additionalProperties: true, description: 'Error body (conventions.md §4)' },
);

/** Standard error responses for a route: pass the statuses it can answer. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of new Set([400, 401, 403, ...statuses])) out[s] = ErrorSchema;
  return out;
}

/** A path id segment that must be a UUID-form API space id (32-hex and upper case accepted). */
export const SpaceIdParam = Type.String({ pattern: '^([A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}|[A-Fa-f0-9]{32})$', description: 'API space id' });

export const SpaceParams = Type.Object({ apiSpaceId: SpaceIdParam });

/** Free-form JSON object (profiles, metadata). */
export const AnyObject = Type.Object({}, { additionalProperties: true });

export const NoContent = Type.Null({ description: 'No content' });
