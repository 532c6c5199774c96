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
 * Multi-row `INSERT INTO <table> (<columns>) VALUES …` statements for `rows`, as many as needed
 * to keep each under the parameter limit; `suffix` is appended to each (e.g. `RETURNING id`).
 */
export function insertStatements<R>(dialect: DialectName, table: string, columns: ReadonlyArray<keyof R & string>, rows: readonly R[], suffix = ''): CompiledQuery[] {
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
  const out: CompiledQuery[] = [];
  const head = `INSERT INTO ${table} (${columns.join(',')}) VALUES `;
  for (let i = 0; i < rows.length; i += perStatement) {
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const row of rows.slice(i, i + perStatement)) {
      const marks: string[] = [];
      for (const c of columns) {
        params.push(row[c]);
        marks.push(mark(dialect, params.length));
      }
      tuples.push(`(${marks.join(',')})`);
    }
    out.push(CompiledQuery.raw(`${head}${tuples.join(',')}${suffix ? ` ${suffix}` : ''}`, params));
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
