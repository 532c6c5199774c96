import { CompiledQuery } from 'kysely';
import type { DialectName } from './db.js';
import { asWholeTransaction, perTransaction, type Uow } from './uow.js';

/**
 * Statements written directly for the hottest writes. Kysely's builder costs tens of
 * microseconds per query (immutable nodes, compilation) — more than SQLite takes to run a small
 * insert — and for thousands of values more than the insert itself. Identifiers here are fixed
 * names from the code, never input; every value is a parameter.
 */

/** Placeholder `n` (1-based) of the dialect. */
export const mark = (dialect: DialectName, n: number): string => (dialect === 'postgres' ? `$${n}` : '?');

/** Most parameters per statement: below SQLite's 32,766 and PostgreSQL's 65,535. */
const MAX_PARAMS = 10_000;

/**
 * `(…),(…)`: `rows` tuples of `width` placeholders, numbered from `first`. On PostgreSQL a
 * placeholder takes the cast `casts[k]` when given: parameters in a VALUES list outside an INSERT
 * have no column to take their type from.
 */
export function valuesText(dialect: DialectName, rows: number, width: number, casts?: ReadonlyArray<string | undefined>, first = 1): string {
  const pg = dialect === 'postgres';
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    const marks: string[] = [];
    for (let k = 0; k < width; k++) {
      const cast = pg ? casts?.[k] : undefined;
      marks.push(`${mark(dialect, first + r * width + k)}${cast ? `::${cast}` : ''}`);
    }
    tuples.push(`(${marks.join(',')})`);
  }
  return tuples.join(',');
}

/**
 * The text of `INSERT INTO <table> (<columns>) VALUES …` for `rows` rows (plus `suffix`), built
 * once per shape: the same string each time, so the SQLite statement cache prepares it once.
 */
const texts = new WeakMap<readonly string[], Map<string, string>>();
export function insertText(dialect: DialectName, table: string, columns: readonly string[], rows: number, suffix = ''): string {
  let byShape = texts.get(columns);
  if (!byShape) texts.set(columns, (byShape = new Map()));
  const key = `${dialect}:${table}:${rows}:${suffix}`;
  let text = byShape.get(key);
  if (text === undefined) {
    text = `INSERT INTO ${table} (${columns.join(',')}) VALUES ${valuesText(dialect, rows, columns.length)}${suffix ? ` ${suffix}` : ''}`;
    // Bounded: remainders of large batches come in many sizes, and a text can be ~100 kB.
    if (byShape.size >= 64) byShape.clear();
    byShape.set(key, text);
  }
  return text;
}

/**
 * Multi-row inserts of `rows`, as many statements as needed to keep each under the parameter
 * limit; `suffix` is appended to each (e.g. `RETURNING id`).
 */
export function insertStatements<R>(dialect: DialectName, table: string, columns: ReadonlyArray<keyof R & string>, rows: readonly R[], suffix = ''): CompiledQuery[] {
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
  const out: CompiledQuery[] = [];
  for (let i = 0; i < rows.length; i += perStatement) {
    const chunk = rows.slice(i, i + perStatement);
    const params: unknown[] = [];
    for (const row of chunk) for (const c of columns) params.push(row[c]);
    out.push(CompiledQuery.raw(insertText(dialect, table, columns, chunk.length, suffix), params));
  }
  return out;
}

/** Column types and suffix of `unnestInsert` (a column with one value in every row is sent once by itself). */
export interface UnnestOptions {
  /** PostgreSQL element type per column; `text` when absent. */
  types?: Readonly<Record<string, string>>;
  /** Columns holding JSON text, cast to `jsonb` as they are inserted. */
  json?: ReadonlySet<string>;
  /** Appended to the statement, e.g. `RETURNING id`. */
  suffix?: string;
}

/** Characters that `JSON.stringify` escapes differently from an array literal. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const NOT_JSON_SAFE = /[\u0000-\u001f\ud800-\udfff]/;

/**
 * A PostgreSQL array literal (`{"a","b",NULL}`) of scalar values, for an array parameter cast to
 * its element type. The driver builds the same text for a JavaScript array, but runs two regular
 * expressions over every element; bulk writes send tens of thousands of elements per statement.
 * An element with quotes or backslashes (every JSON document) is quoted by `JSON.stringify`, which
 * escapes exactly those two the same way, unless it holds control characters or surrogates (JSON
 * would write `\n`, which an array literal reads as `n`): four times faster for documents.
 */
export function pgArray(values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i) out += ',';
    const v = values[i];
    if (v === null || v === undefined) {
      out += 'NULL';
      continue;
    }
    // Numbers need no quotes in any array type (a text[] reads them as their digits).
    if (typeof v === 'number') {
      out += v;
      continue;
    }
    const text = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
    out += text.indexOf('"') === -1 && text.indexOf('\\') === -1 ? `"${text}"` : NOT_JSON_SAFE.test(text) ? `"${text.replace(/["\\]/g, '\\$&')}"` : JSON.stringify(text);
  }
  return `${out}}`;
}

/**
 * `unnest($first::type[], …) AS <alias>(<columns>)` with one array parameter per column of
 * `rows` (`types`: PostgreSQL element type per column, `text` when absent), and its parameters.
 */
export function unnestFrom<R>(columns: ReadonlyArray<keyof R & string>, rows: readonly R[], alias: string, types?: Readonly<Record<string, string>>, first = 1): { sql: string; params: string[] } {
  const params = columns.map((c) => pgArray(rows.map((r) => r[c])));
  const arrays = columns.map((c, k) => `$${first + k}::${types?.[c] ?? 'text'}[]`);
  return { sql: `unnest(${arrays.join(', ')}) AS ${alias}(${columns.join(',')})`, params };
}

/**
 * PostgreSQL `INSERT … SELECT … FROM unnest(<one array per column>)` of `rows`: one short
 * statement whatever their number. A `VALUES` list with a parameter per value makes PostgreSQL
 * parse and plan thousands of parameters (a bulk request writes thousands of rows). A column with
 * one value in every row (a batch's timestamps and actor, nulls) is one parameter after the
 * arrays, not an array for PostgreSQL to parse element by element; one array at least makes the
 * rows. JSON columns are cast to `jsonb`.
 */
export function unnestInsert<R>(table: string, columns: ReadonlyArray<keyof R & string>, rows: readonly R[], options: UnnestOptions = {}): CompiledQuery {
  const { types, json, suffix } = options;
  const constant = new Set<string>();
  if (rows.length > 1) for (const c of columns) if (sameInEvery(rows, c)) constant.add(c);
  if (columns.length && constant.size === columns.length) constant.delete(columns[0]!);
  const from = unnestFrom(columns.filter((c) => !constant.has(c)), rows, 'u', types);
  const params: unknown[] = from.params;
  const exprs = columns.map((c) => {
    if (!constant.has(c)) return json?.has(c) ? `u.${c}::jsonb` : `u.${c}`;
    params.push(rows[0]![c]);
    return `$${params.length}::${json?.has(c) ? 'jsonb' : (types?.[c] ?? 'text')}`;
  });
  return CompiledQuery.raw(`INSERT INTO ${table} (${columns.join(',')}) SELECT ${exprs.join(', ')} FROM ${from.sql}${suffix ? ` ${suffix}` : ''}`, params);
}

/** Whether column `c` holds the same scalar (or null) in every row. */
function sameInEvery<R>(rows: readonly R[], c: keyof R): boolean {
  const v = rows[0]![c];
  if (v !== null && v !== undefined && typeof v === 'object') return false;
  for (let i = 1; i < rows.length; i++) if (rows[i]![c] !== v) return false;
  return true;
}

interface Deferred {
  columns: readonly string[];
  rows: unknown[];
}
/** What a transaction defers to its end: rows by table (in first-deferred order), NOTIFY channels. */
interface DeferredWork {
  dialect: DialectName;
  tables: Map<string, Deferred>;
  notify: Set<string>;
}

const deferredWork = perTransaction((dialect: DialectName): DeferredWork => ({ dialect, tables: new Map(), notify: new Set() }), async (work, uow) => {
  const statements = deferredStatements(work.dialect, work);
  // One statement after nothing else: on PostgreSQL it is the whole transaction.
  if (statements.length === 1) asWholeTransaction(statements[0]!);
  for (const q of statements) await uow.tx.executeQuery(q);
}, 'lastly');

/**
 * The statements that write a transaction's deferred work. On PostgreSQL, where every statement is
 * a round trip, all of it goes in one when it fits under the parameter limit: each table's rows
 * in a data-modifying `WITH` clause and the notifications in its `SELECT` (an accepted message
 * costs BEGIN, one statement and COMMIT instead of an insert per table and a NOTIFY between them).
 * The clauses of one statement run against the same snapshot in no promised order, which deferred
 * rows allow: nothing in the transaction reads them back and no table here references another.
 */
function deferredStatements(dialect: DialectName, work: DeferredWork): CompiledQuery[] {
  const tables = [...work.tables];
  let params = work.notify.size;
  for (const [, d] of tables) params += d.rows.length * d.columns.length;
  if (dialect === 'postgres' && tables.length + (work.notify.size ? 1 : 0) > 1 && params <= MAX_PARAMS) {
    const values: unknown[] = [];
    const clauses = tables.map(([name, d], i) => {
      const first = values.length + 1;
      for (const row of d.rows as Array<Record<string, unknown>>) for (const c of d.columns) values.push(row[c]);
      return `d${i} AS (INSERT INTO ${name} (${d.columns.join(',')}) VALUES ${valuesText(dialect, d.rows.length, d.columns.length, undefined, first)})`;
    });
    const notices = [...work.notify].map((channel) => {
      values.push(channel);
      return `pg_notify($${values.length}, '')`;
    });
    return [CompiledQuery.raw(`WITH ${clauses.join(', ')} SELECT ${notices.length ? notices.join(', ') : '1'}`, values)];
  }
  const out: CompiledQuery[] = [];
  for (const [name, d] of tables) out.push(...insertStatements(dialect, name, d.columns as ReadonlyArray<string>, d.rows as Array<Record<string, unknown>>));
  for (const channel of work.notify) out.push(CompiledQuery.raw(`SELECT pg_notify($1, '')`, [channel]));
  return out;
}

/**
 * Inserts `rows` at the end of the transaction, together with every other row deferred to the
 * same table in it: units sharing a group commit then cost one multi-row statement per table
 * instead of one each (on PostgreSQL every statement is a round trip, and there the tables go in
 * one statement). Only for rows nothing in the transaction reads back, and without conflict
 * handling: an error surfaces at commit and fails the transaction. Tables are written in the order
 * they were first deferred to, or, on PostgreSQL, in one statement in no promised order.
 */
export function deferInsert<R>(uow: Uow, dialect: DialectName, table: string, columns: ReadonlyArray<keyof R & string>, rows: readonly R[]): void {
  const { tables } = deferredWork(uow, dialect);
  let d = tables.get(table);
  if (!d) tables.set(table, (d = { columns, rows: [] }));
  else if (d.columns !== columns) throw new Error(`deferInsert: ${table} deferred with two column lists`);
  for (const r of rows) d.rows.push(r);
}

/** PostgreSQL `NOTIFY channel` sent with the transaction's deferred rows (one per channel). */
export function deferNotify(uow: Uow, channel: string): void {
  deferredWork(uow, 'postgres').notify.add(channel);
}
