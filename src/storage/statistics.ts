import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { DatabaseHandle } from './db.js';

/** `default_statistics_target` of the growth runs (300 × this many rows sampled a table). */
const GROWTH_SAMPLE_TARGET = 10;

/**
 * Keeps PostgreSQL's planner statistics in step with tables that grow in bursts (bulk upserts,
 * imports). Until a table has been analysed the planner takes `column = value` to match 0.5 % of
 * its rows; after a burst its last statistics describe a table a fraction of today's size. Either
 * way a condition on the space alone looks selective, and batch statements keyed by ids read the
 * whole space instead of probing the primary key (a bulk merge on a freshly loaded space of 40k
 * profiles spent 90 µs of server CPU per row instead of 27, docs/adr/0003-profile-storage.md).
 * autovacuum corrects this within a minute or so where it runs; a burst is over by then, and some
 * installations turn it off.
 *
 * `grew(n)` after a commit that added `n` rows: once the rows added since the last ANALYZE reach
 * what the first table held then (at least `minRows`), the listed columns — those the plans turn
 * on, which keeps each run short — are analysed in the background, one run at a time, so the cost
 * stays logarithmic in the table's growth. A no-op on SQLite, whose planner here needs no
 * statistics (ADR 0003).
 */
export function createStatistics(handle: DatabaseHandle, log: Logger, tables: ReadonlyArray<{ table: string; columns: readonly string[] }>, minRows = 2_000) {
  let added = 0;
  let base = 0;
  let running: Promise<void> | undefined;
  let closed = false;
  async function analyze(all: boolean): Promise<void> {
    // Growth runs take the key columns with a small sample: they only need the table's size and
    // the spread of those columns, and the default target (30,000 rows a table) cost 130–190 ms of
    // server CPU a run at 100k profiles instead of ~22. One simple query is one transaction: the
    // setting ends with it, and so does a failure. Names are the module's own constants.
    const list = tables.map((t) => (all ? `"${t.table}"` : `"${t.table}" (${t.columns.map((c) => `"${c}"`).join(', ')})`)).join(', ');
    await handle.pool!.query(`${all ? '' : `SET LOCAL default_statistics_target = ${GROWTH_SAMPLE_TARGET}; `}ANALYZE ${list}`);
    const r = await sql<{ n: number }>`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass(${tables[0]!.table})`.execute(handle.db);
    base = Math.max(0, Number(r.rows[0]?.n ?? 0));
  }
  /** Runs an ANALYZE in the background, after the one under way if any. */
  function start(all: boolean): void {
    const run: Promise<void> = (running ?? Promise.resolve())
      .then(() => analyze(all))
      .catch((err: unknown) => log.warn({ err, tables }, 'ANALYZE after a burst of writes failed'))
      .finally(() => {
        if (running === run) running = undefined;
      });
    running = run;
  }
  return {
    grew(rows: number): void {
      if (handle.dialect !== 'postgres' || closed) return;
      added += rows;
      if (running || added < Math.max(minRows, base)) return;
      added = 0;
      start(false);
    },
    /**
     * After a large change of the data itself (an import's end): every column of the tables,
     * so that filters on values are planned on today's distribution too.
     */
    refresh(): void {
      if (handle.dialect !== 'postgres' || closed) return;
      added = 0;
      start(true);
    },
    /** Waits for a running ANALYZE; later growth is ignored (the pool is closing). */
    async close(): Promise<void> {
      closed = true;
      while (running) await running;
    },
  };
}

export type Statistics = ReturnType<typeof createStatistics>;
