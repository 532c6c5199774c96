import { CompiledQuery } from 'kysely';
import type { DialectName, Tx } from './db.js';
import type { Uow } from './uow.js';

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

interface Deferred {
  columns: readonly string[];
  rows: unknown[];
}
const deferred = new WeakMap<Tx, Map<string, Deferred>>();

/**
 * Inserts `rows` at the end of the transaction, together with every other row deferred to the
 * same table in it: units sharing a group commit then cost one multi-row statement per table
 * instead of one each (on PostgreSQL every statement is a round trip). Only for rows nothing in
 * the transaction reads back, and without conflict handling: an error surfaces at commit and fails
 * the transaction. Tables are written in the order they were first deferred to.
 */
export function deferInsert<R>(uow: Uow, dialect: DialectName, table: string, columns: ReadonlyArray<keyof R & string>, rows: readonly R[]): void {
  let tables = deferred.get(uow.tx);
  if (!tables) {
    const mine = (tables = new Map());
    deferred.set(uow.tx, mine);
    uow.beforeCommit(async () => {
      deferred.delete(uow.tx);
      for (const [name, d] of mine) {
        for (const q of insertStatements(dialect, name, d.columns as ReadonlyArray<string>, d.rows as Array<Record<string, unknown>>)) await uow.tx.executeQuery(q);
      }
    });
  }
  let d = tables.get(table);
  if (!d) tables.set(table, (d = { columns, rows: [] }));
  else if (d.columns !== columns) throw new Error(`deferInsert: ${table} deferred with two column lists`);
  for (const r of rows) d.rows.push(r);
}
