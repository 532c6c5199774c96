import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import pino from 'pino';
import { createStatistics } from '../../src/storage/statistics.js';
import { pgArray, unnestInsert } from '../../src/storage/raw.js';
import { eachDatabase } from '../helpers/harness.js';
import { createQueueDb, type QueueDb } from '../fixtures/queue-db.js';

it('pgArray writes array literals with quotes, backslashes and NULLs escaped, numbers bare', () => {
  assert.equal(pgArray(['a', null, 'say "hi"', 'back\\slash', '', 'NULL', 3, 1.5, -2, 1e21, true]), '{"a",NULL,"say \\"hi\\"","back\\\\slash","","NULL",3,1.5,-2,1e+21,"true"}');
  assert.equal(pgArray([]), '{}');
});

eachDatabase('planner statistics after bursts of writes', (dialect) => {
  let qdb: QueueDb;
  before(async () => {
    qdb = await createQueueDb(dialect);
    await sql`CREATE TABLE burst (k INTEGER NOT NULL, v TEXT NOT NULL)`.execute(qdb.handle.db);
  });
  after(() => qdb.close());

  // -1 until PostgreSQL has analysed the table (or vacuumed it).
  const tuples = async () => Number((await sql<{ n: number }>`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass('burst')`.execute(qdb.handle.db)).rows[0]!.n);

  if (dialect === 'postgres') {
    it('round-trips pgArray literals through PostgreSQL', async () => {
      const values = ['a', null, 'say "hi"', 'back\\slash', '', 'NULL', '{braces},commas', 'ünïcödé ✓', ' spaced ', JSON.stringify({ t: 'a "q" \\ b\nc\u0001', e: '😀' }),
        'raw "line"\nbreak\ttab', '"quoted" 😀 emoji', '\u2028 sep "x"', 'C:\\path\\"x"'];
      const r = await sql<{ a: Array<string | null> }>`SELECT ${pgArray(values)}::text[] AS a`.execute(qdb.handle.db);
      assert.deepEqual(r.rows[0]!.a, values);
      const n = await sql<{ a: number[] }>`SELECT ${pgArray([1, -2.5, 1e21, 0.1, 1e-7, null])}::float8[] AS a`.execute(qdb.handle.db);
      assert.deepEqual(n.rows[0]!.a, [1, -2.5, 1e21, 0.1, 1e-7, null]);
      const t = await sql<{ a: string[] }>`SELECT ${pgArray([7, 'x', -0.5])}::text[] AS a`.execute(qdb.handle.db);
      assert.deepEqual(t.rows[0]!.a, ['7', 'x', '-0.5']);
    });

    it('unnestInsert sends a column with one value in every row once, and still inserts every row', async () => {
      await sql`CREATE TABLE un (k TEXT, n INTEGER, j JSONB, t TEXT)`.execute(qdb.handle.db);
      type Row = { k: string; n: number | null; j: string | null; t: string | null };
      const cols = ['k', 'n', 'j', 't'] as const;
      const opts = { types: { n: 'integer' }, json: new Set(['j']) };
      const mixed: Row[] = [{ k: 'a', n: 7, j: '{"x":1}', t: null }, { k: 'b', n: 7, j: '{"x":1}', t: null }, { k: 'c', n: 7, j: '{"x":1}', t: null }];
      const q = unnestInsert('un', cols, mixed, opts);
      assert.deepEqual(q.parameters, ['{"a","b","c"}', 7, '{"x":1}', null], 'k as an array; n, j and t once');
      await qdb.handle.db.executeQuery(q);
      // Identical rows: one column stays an array, so every row is inserted.
      const same: Row[] = [{ k: 'z', n: null, j: null, t: 'q' }, { k: 'z', n: null, j: null, t: 'q' }];
      await qdb.handle.db.executeQuery(unnestInsert('un', cols, same, opts));
      await qdb.handle.db.executeQuery(unnestInsert('un', cols, [{ k: 'one', n: 1, j: '[1]', t: 'x' }], opts));
      const rows = (await sql<Row & { j: unknown }>`SELECT k, n, j, t FROM un ORDER BY k`.execute(qdb.handle.db)).rows;
      assert.deepEqual(rows, [
        { k: 'a', n: 7, j: { x: 1 }, t: null }, { k: 'b', n: 7, j: { x: 1 }, t: null }, { k: 'c', n: 7, j: { x: 1 }, t: null },
        { k: 'one', n: 1, j: [1], t: 'x' }, { k: 'z', n: null, j: null, t: 'q' }, { k: 'z', n: null, j: null, t: 'q' },
      ]);
    });

    it('analyses the listed columns once the rows added reach the threshold or the table\'s size then; a refresh analyses all', async () => {
      const stats = createStatistics(qdb.handle, pino({ level: 'silent' }), [{ table: 'burst', columns: ['k'] }], 100);
      const insert = async (n: number) => {
        await sql`INSERT INTO burst (k, v) SELECT g, 'x' FROM generate_series(1, ${n}::int) g`.execute(qdb.handle.db);
        stats.grew(n);
      };
      const settle = async (expected: number) => {
        for (let i = 0; i < 100 && (await tuples()) !== expected; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(await tuples(), expected);
      };
      await insert(60);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await tuples(), -1, 'below the threshold: not analysed');
      await insert(100);
      await settle(160);
      await insert(150);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await tuples(), 160, 'less than the table held at the last run: not yet');
      await insert(20);
      await settle(330);
      const columnsAnalysed = async () => (await sql<{ c: string }>`SELECT attname AS c FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'burst' ORDER BY attname`.execute(qdb.handle.db)).rows.map((r) => r.c);
      assert.deepEqual(await columnsAnalysed(), ['k'], 'growth analyses the listed columns only');
      // At the growth runs' small target a histogram has at most 11 bounds; the default allows 101.
      const bounds = async () => Number((await sql<{ n: number }>`SELECT cardinality(histogram_bounds::text::text[]) AS n FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'burst' AND attname = 'k'`.execute(qdb.handle.db)).rows[0]!.n);
      assert.equal(await bounds(), 11, 'growth runs take a small sample');
      stats.refresh();
      await stats.close();
      assert.deepEqual(await columnsAnalysed(), ['k', 'v'], 'a refresh analyses every column');
      assert.ok((await bounds()) > 11, 'a refresh uses the default target');
      await insert(1_000);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await tuples(), 330, 'closed: nothing more runs');
    });
  } else {
    it('does nothing on SQLite', async () => {
      const stats = createStatistics(qdb.handle, pino({ level: 'silent' }), [{ table: 'burst', columns: ['k'] }], 1);
      stats.grew(1_000);
      await stats.close();
      assert.equal((await sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'`.execute(qdb.handle.db)).rows[0]!.n, 0);
    });
  }
});
