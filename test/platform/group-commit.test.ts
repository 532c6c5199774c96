import { it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import pg from 'pg';
import { createGroupCommit } from '../../src/storage/group-commit.js';
import { inTransaction } from '../../src/storage/uow.js';
import { deferInsert, deferNotify } from '../../src/storage/raw.js';
import { eachDatabase } from '../helpers/harness.js';
import { createQueueDb, type QueueDb } from '../fixtures/queue-db.js';

eachDatabase('group commit', (dialect) => {
  let qdb: QueueDb;
  before(async () => {
    qdb = await createQueueDb(dialect);
  });
  after(() => qdb.close());
  beforeEach(async () => {
    await sql`DELETE FROM job_runs`.execute(qdb.handle.db);
  });

  const insert = (id: string) => async (uow: Parameters<Parameters<typeof inTransaction>[1]>[0]) => {
    await sql`INSERT INTO job_runs (job_id, worker, phase, at_ms, seq) VALUES (${id}, 'w', 'p', 0, 0)`.execute(uow.tx);
    return id;
  };
  const stored = async () => (await sql<{ job_id: string }>`SELECT job_id FROM job_runs ORDER BY job_id`.execute(qdb.handle.db)).rows.map((r) => r.job_id);

  it('units submitted together share transactions, and each caller gets its own result after commit', async () => {
    const group = createGroupCommit(qdb.handle.db);
    let txs = 0;
    const counting = (id: string) => async (uow: Parameters<Parameters<typeof inTransaction>[1]>[0]) => {
      uow.afterCommit(() => txs++);
      return insert(id)(uow);
    };
    const ids = Array.from({ length: 40 }, (_, i) => `u${String(i).padStart(2, '0')}`);
    const results = await Promise.all(ids.map((id) => group.submit(counting(id))));
    assert.deepEqual(results, ids);
    assert.deepEqual(await stored(), ids);
    assert.equal(txs, 40, 'every unit\'s after-commit callback ran once');
  });

  it('a failing unit fails alone: the others commit, nothing of the failed unit is stored', async () => {
    const group = createGroupCommit(qdb.handle.db);
    const failing = async (uow: Parameters<Parameters<typeof inTransaction>[1]>[0]) => {
      await insert('bad')(uow);
      throw new Error('unit failed');
    };
    const settled = await Promise.allSettled([group.submit(insert('a')), group.submit(failing), group.submit(insert('c'))]);
    assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.equal(((settled[1] as PromiseRejectedResult).reason as Error).message, 'unit failed');
    assert.deepEqual(await stored(), ['a', 'c']);
  });

  it('refuses a unit submitted from inside a transaction (it would wait for itself)', async () => {
    const group = createGroupCommit(qdb.handle.db);
    await assert.rejects(inTransaction(qdb.handle.db, () => group.submit(insert('x'))), /inside a transaction/);
    assert.deepEqual(await stored(), []);
  });

  it('keeps at most maxUnits per transaction', async () => {
    const group = createGroupCommit(qdb.handle.db, { maxUnits: 3 });
    const seen: number[] = [];
    let current = 0;
    const unit = (id: string) => async (uow: Parameters<Parameters<typeof inTransaction>[1]>[0]) => {
      current++;
      uow.afterCommit(() => {
        if (current) seen.push(current);
        current = 0;
      });
      return insert(id)(uow);
    };
    await Promise.all(Array.from({ length: 7 }, (_, i) => group.submit(unit(`m${i}`))));
    assert.ok(seen.every((n) => n <= 3), `group sizes ${seen.join(',')}`);
    assert.equal((await stored()).length, 7);
  });

  it('deferred rows of the units in a group are written together just before commit', async () => {
    const group = createGroupCommit(qdb.handle.db);
    type Run = { job_id: string; worker: string; phase: string; at_ms: number; seq: number };
    const columns = ['job_id', 'worker', 'phase', 'at_ms', 'seq'] as const;
    const seenInside: number[] = [];
    const unit = (id: string) => async (uow: Parameters<Parameters<typeof inTransaction>[1]>[0]) => {
      deferInsert<Run>(uow, qdb.handle.dialect, 'job_runs', columns, [{ job_id: id, worker: 'w', phase: 'p', at_ms: 0, seq: 0 }]);
      // Not written yet: deferred rows are not for reading back inside the transaction.
      seenInside.push((await stored()).length);
      return id;
    };
    const ids = ['d1', 'd2', 'd3', 'd4'];
    assert.deepEqual(await Promise.all(ids.map((id) => group.submit(unit(id)))), ids);
    assert.deepEqual(await stored(), ids);
    assert.ok(seenInside.every((n) => n === 0), `rows seen inside: ${seenInside.join(',')}`);
    // A deferred row that cannot be written fails the unit that deferred it, at commit.
    await assert.rejects(inTransaction(qdb.handle.db, async (uow) => {
      deferInsert<Record<string, unknown>>(uow, qdb.handle.dialect, 'job_runs', ['job_id', 'no_such_column'], [{ job_id: 'x', no_such_column: 1 }]);
    }));
    assert.deepEqual(await stored(), ids);
  });

  it('deferred rows of several tables and NOTIFYs commit together or not at all', async () => {
    type Run = { job_id: string; worker: string; phase: string; at_ms: number; seq: number };
    const runColumns = ['job_id', 'worker', 'phase', 'at_ms', 'seq'] as const;
    type Marker = { id: string; kind: string; payload: string; state: string; run_at: number; attempts: number; max_attempts: number; created_at: number; updated_at: number };
    const jobColumns = ['id', 'kind', 'payload', 'state', 'run_at', 'attempts', 'max_attempts', 'created_at', 'updated_at'] as const;
    const marker = (id: string): Marker => ({ id, kind: 'defer.test', payload: '{}', state: 'dead', run_at: 0, attempts: 0, max_attempts: 1, created_at: 0, updated_at: 0 });
    const markers = async () => (await sql<{ id: string }>`SELECT id FROM jobs WHERE kind = 'defer.test' ORDER BY id`.execute(qdb.handle.db)).rows.map((r) => r.id);
    await sql`DELETE FROM jobs WHERE kind = 'defer.test'`.execute(qdb.handle.db);
    await inTransaction(qdb.handle.db, async (uow) => {
      deferInsert<Run>(uow, qdb.handle.dialect, 'job_runs', runColumns, [{ job_id: 'r1', worker: 'w', phase: 'p', at_ms: 0, seq: 0 }]);
      deferInsert<Marker>(uow, qdb.handle.dialect, 'jobs', jobColumns, [marker('m1'), marker('m2')]);
      deferInsert<Run>(uow, qdb.handle.dialect, 'job_runs', runColumns, [{ job_id: 'r2', worker: 'w', phase: 'p', at_ms: 0, seq: 0 }]);
      if (dialect === 'postgres') deferNotify(uow, 'sb_defer_test');
    });
    assert.deepEqual(await stored(), ['r1', 'r2']);
    assert.deepEqual(await markers(), ['m1', 'm2']);
    // One table's rows failing (a duplicate key) leaves the other table untouched too.
    await assert.rejects(inTransaction(qdb.handle.db, async (uow) => {
      deferInsert<Run>(uow, qdb.handle.dialect, 'job_runs', runColumns, [{ job_id: 'r3', worker: 'w', phase: 'p', at_ms: 0, seq: 0 }]);
      deferInsert<Marker>(uow, qdb.handle.dialect, 'jobs', jobColumns, [marker('m3'), marker('m1')]);
      if (dialect === 'postgres') deferNotify(uow, 'sb_defer_test');
    }));
    assert.deepEqual(await stored(), ['r1', 'r2']);
    assert.deepEqual(await markers(), ['m1', 'm2']);
  });

  it('on PostgreSQL, BEGIN goes with the first statement, and deferred rows alone are the whole transaction', { skip: dialect !== 'postgres' && 'PostgreSQL only' }, async () => {
    type Run = { job_id: string; worker: string; phase: string; at_ms: number; seq: number };
    const columns = ['job_id', 'worker', 'phase', 'at_ms', 'seq'] as const;
    const sent: string[] = [];
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const q = args[0] as string | { text: string };
      sent.push((typeof q === 'string' ? q : q.text).split(' ')[0]!.toLowerCase());
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      const run = async (fn: Parameters<typeof inTransaction>[1]) => {
        sent.length = 0;
        await inTransaction(qdb.handle.db, fn);
        return [...sent];
      };
      const row = (id: string): Run => ({ job_id: id, worker: 'w', phase: 'p', at_ms: 0, seq: 0 });
      assert.deepEqual(await run(async () => {}), [], 'nothing ran: no BEGIN, no COMMIT');
      assert.deepEqual(await run(async (uow) => {
        deferInsert<Run>(uow, qdb.handle.dialect, 'job_runs', columns, [row('w1')]);
        deferNotify(uow, 'sb_defer_test');
      }), ['with'], 'deferred rows and a NOTIFY: one statement');
      assert.deepEqual(await run(async (uow) => {
        await insert('w2')(uow);
        deferInsert<Run>(uow, qdb.handle.dialect, 'job_runs', columns, [row('w3')]);
      }), ['begin', 'insert', 'insert', 'commit'], 'with a statement of its own: a transaction as before');
      assert.deepEqual(await stored(), ['w1', 'w2', 'w3']);
      // A unit that fails after deferring rolls back with nothing sent at all.
      await assert.rejects(inTransaction(qdb.handle.db, async (uow) => {
        deferInsert<Run>(uow, qdb.handle.dialect, 'job_runs', columns, [row('w4')]);
        throw new Error('unit failed');
      }));
      assert.deepEqual(await stored(), ['w1', 'w2', 'w3']);
    } finally {
      pg.Client.prototype.query = query;
    }
  });
});
