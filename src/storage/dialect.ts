import { sql, type ColumnDataType, type Expression, type RawBuilder } from 'kysely';
import type { DialectName } from './db.js';

/** Column types that differ between the dialects; everything else is written once. */
export interface ColumnTypes {
  json: ColumnDataType;
  /** Auto-incrementing 64-bit primary key. */
  serial: ColumnDataType;
  bigint: ColumnDataType;
  text: ColumnDataType;
  blob: ColumnDataType;
}

export function columnTypes(dialect: DialectName): ColumnTypes {
  return dialect === 'postgres'
    ? { json: 'jsonb', serial: 'bigserial', bigint: 'bigint', text: 'text', blob: 'bytea' }
    : { json: 'text', serial: 'integer', bigint: 'integer', text: 'text', blob: 'blob' };
}

/** Reads a JSON column: jsonb arrives parsed from pg, text arrives as a string from SQLite. */
export function fromJson<T = unknown>(value: unknown): T {
  if (typeof value === 'string') return JSON.parse(value) as T;
  return value as T;
}

/** Writes a JSON column (pg accepts the text form for jsonb). */
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

/** Unique-constraint violation, on either driver: callers turn it into a 409. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * PostgreSQL detected a deadlock and chose this transaction's statement to fail: the race was lost,
 * as with a unique violation, and callers that can go on (under a savepoint) or answer 409 do.
 */
export function isDeadlock(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === '40P01';
}

/**
 * A text value at a JSON path of a JSON column, for filters and indexes.
 * `path` is a list of object keys (array indexes as numbers).
 */
export function jsonText(dialect: DialectName, column: Expression<unknown> | string, path: ReadonlyArray<string | number>): RawBuilder<string | null> {
  const col = typeof column === 'string' ? sql.ref(column) : column;
  if (dialect === 'postgres') {
    return sql<string | null>`(${col} #>> ${sql.lit(`{${path.map((p) => `"${String(p).replace(/(["\\])/g, '\\$1')}"`).join(',')}}`)})`;
  }
  return sql<string | null>`json_extract(${col}, ${sql.lit(sqlitePath(path))})`;
}

export function sqlitePath(path: ReadonlyArray<string | number>): string {
  return '$' + path.map((p) => (typeof p === 'number' ? `[${p}]` : `."${p.replace(/(["\\])/g, '\\$1')}"`)).join('');
}
