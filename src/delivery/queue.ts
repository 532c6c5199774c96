import { CompiledQuery, sql } from 'kysely';
import { escapeLiteral } from 'pg';
import type { DatabaseHandle, Db, Tx } from '../storage/db.js';
import { fromJson, isUniqueViolation, toJson } from '../storage/dialect.js';
import { perTransaction, type Uow } from '../storage/uow.js';
import type { Clock } from '../lib/clock.js';
import { timeOrderedUuid, type Ids } from '../lib/ids.js';
import type { JobRow } from '../storage/schema.js';
import { deferInsert, deferNotify, insertStatements, mark, valuesText } from '../storage/raw.js';

const JOB_COLUMNS = [
  'id', 'kind', 'api_space_id', 'payload', 'state', 'run_at', 'attempts', 'max_attempts', 'lease_owner', 'lease_until', 'last_error', 'dedupe_key', 'created_at', 'updated_at',
] as const satisfies ReadonlyArray<keyof JobRow>;

export interface NewJob {
  kind: string;
  /** Versioned payload: always carry `v`. */
  payload: { v: number } & Record<string, unknown>;
  apiSpaceId?: string;
  /** Epoch ms; default now. */
  runAt?: number;
  maxAttempts?: number;
  /** At most one queued/running job per (kind, dedupeKey); a duplicate enqueue is a no-op. */
  dedupeKey?: string;
}

export interface Job {
  id: string;
  kind: string;
  apiSpaceId: string | null;
  payload: { v: number } & Record<string, any>;
  runAt: number;
  attempts: number;
  maxAttempts: number;
  leaseOwner: string;
  leaseUntil: number;
  lastError: string | null;
}

export type JobState = 'queued' | 'running' | 'dead';

export interface JobQueue {
  /** Enqueues inside the caller's transaction; workers are woken after commit. */
  enqueue(uow: Uow, job: NewJob): Promise<string | undefined>;
  /**
   * Enqueues inside the caller's transaction already leased to `owner` (attempt 1), for a worker
   * of this process to run right after commit without claiming it; if that process dies, the job
   * is taken over when the lease expires, like any other. No de-duplication.
   */
  enqueueLeased(uow: Uow, job: NewJob, owner: string, leaseMs: number): Promise<Job>;
  /** Enqueues outside any transaction (tests, tools). */
  enqueueNow(job: NewJob): Promise<string | undefined>;
  /** Leases up to `limit` due jobs (queued and due, or running with an expired lease). */
  claim(owner: string, limit: number, leaseMs: number, kinds?: readonly string[]): Promise<Job[]>;
  heartbeat(job: Job, leaseMs: number): Promise<boolean>;
  /** Deletes a finished job; inside `tx` when the handler's own writes must commit with it. */
  complete(job: Job, tx?: Tx): Promise<boolean>;
  /**
   * Deletes a finished job just before `uow` commits, in one statement with the other jobs
   * completed in that unit; the commit fails (rolls back) if any of their leases was lost.
   */
  completeAtCommit(uow: Uow, job: Job): void;
  /** Schedules another attempt at `runAt`, or marks the job dead. */
  fail(job: Job, error: string, retryAt: number | 'dead'): Promise<boolean>;
  /** Next due time of a queued job (or lease expiry of a running one), for the worker's sleep. */
  nextRunAt(kinds?: readonly string[]): Promise<number | undefined>;
  depth(): Promise<{ queued: number; running: number; dead: number; oldestDueMs: number | undefined }>;
  get(id: string): Promise<(Job & { state: JobState }) | undefined>;
  list(filter: { state?: JobState; kind?: string; limit?: number }): Promise<Array<Job & { state: JobState }>>;
  /**
   * Wake-up signal: called after commit of an enqueue in this process, on NOTIFY, and on SQLite
   * after another process's commit — unless `otherProcesses: false` (this process's enqueues only).
   */
  onWake(fn: () => void, opts?: { otherProcesses?: boolean }): () => void;
  wake(): void;
  /** Resolves once cross-process wake-ups are live (PostgreSQL: LISTEN issued); at once on SQLite. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

const toJob = (r: JobRow): Job & { state: JobState } => ({
  id: r.id,
  kind: r.kind,
  apiSpaceId: r.api_space_id,
  payload: fromJson(r.payload),
  runAt: Number(r.run_at),
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  leaseOwner: r.lease_owner ?? '',
  leaseUntil: Number(r.lease_until ?? 0),
  lastError: r.last_error,
  state: r.state as JobState,
});

/**
 * The durable job table behind one port for both dialects. SQLite has a single writer, so the
 * claiming UPDATE … RETURNING is atomic; PostgreSQL adds `FOR UPDATE SKIP LOCKED` so concurrent
 * workers never lease the same row, and `NOTIFY` (delivered at commit) wakes other processes. On
 * SQLite, a worker beside other processes on the same file wakes when one of them commits
 * (`onCommitElsewhere`), not only at its idle poll.
 */
export function createJobQueue(deps: { handle: DatabaseHandle; clock: Clock; ids: Ids }): JobQueue {
  const { handle, clock, ids } = deps;
  const db: Db = handle.db;
  const pg = handle.dialect === 'postgres';
  const channel = `sb_jobs_${handle.schema ?? 'public'}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const w of wakers) w();
  };
  let listener: { release(destroy?: boolean): void; removeAllListeners(): void } | undefined;
  let stopWatching: (() => void) | undefined;
  let watchers = 0;
  let closed = false;
  let markReady: () => void = () => {};
  const listening = new Promise<void>((resolve) => (markReady = resolve));
  if (!pg || !handle.pool) markReady();

  if (pg && handle.pool) {
    const pool = handle.pool;
    const connectListener = async (): Promise<void> => {
      if (closed) return;
      try {
        const client = await pool.connect();
        client.on('notification', () => wake());
        client.on('error', () => {
          listener = undefined;
          try { client.release(true as never); } catch {}
          setTimeout(() => void connectListener(), 1000).unref();
        });
        await client.query(`LISTEN ${channel}`);
        if (closed) {
          client.removeAllListeners();
          client.release(true as never);
          return;
        }
        listener = client;
        markReady();
        // Jobs enqueued while the listener was down would otherwise wait for the idle poll.
        wake();
      } catch {
        setTimeout(() => void connectListener(), 1000).unref();
      }
    };
    void connectListener();
  }

  const completeSql = `DELETE FROM jobs WHERE id = ${mark(handle.dialect, 1)} AND lease_owner = ${mark(handle.dialect, 2)} AND attempts = ${mark(handle.dialect, 3)}`;
  /** Jobs `completeAtCommit` deletes just before their transaction commits. */
  const completing = perTransaction((): Job[] => [], async (jobs, uow) => {
    for (let i = 0; i < jobs.length; i += 300) {
      const chunk = jobs.slice(i, i + 300);
      const params = chunk.flatMap((j) => [j.id, j.leaseOwner, j.attempts]);
      const tuples = valuesText(handle.dialect, chunk.length, 3, [undefined, undefined, 'integer']);
      const res = await uow.tx.executeQuery<{ id: string }>(CompiledQuery.raw(`DELETE FROM jobs WHERE (id, lease_owner, attempts) IN (VALUES ${tuples}) RETURNING id`, params));
      if (res.rows.length !== chunk.length) {
        const gone = new Set(res.rows.map((r) => r.id));
        throw new Error(`lease lost on job ${chunk.find((j) => !gone.has(j.id))?.id}`);
      }
    }
  });
  const wakeQueued = new WeakSet<Tx>();
  /** `uow`: inside the caller's transaction (the row is written just before its commit, with the others). */
  const insert = async (target: Uow | Db, job: NewJob, lease?: { owner: string; ms: number }): Promise<JobRow | undefined> => {
    const now = clock.now();
    // Time-led ids: a burst of jobs lands on the same primary-key pages.
    const id = timeOrderedUuid(now, ids.uuid());
    const row: JobRow = {
      id,
      kind: job.kind,
      api_space_id: job.apiSpaceId ?? null,
      payload: toJson(job.payload),
      state: lease ? 'running' : 'queued',
      run_at: job.runAt ?? now,
      attempts: lease ? 1 : 0,
      max_attempts: job.maxAttempts ?? 10,
      lease_owner: lease?.owner ?? null,
      lease_until: lease ? now + lease.ms : null,
      last_error: null,
      dedupe_key: job.dedupeKey ?? null,
      created_at: now,
      updated_at: now,
    };
    const uow = 'tx' in target ? target : undefined;
    if (uow && !job.dedupeKey) {
      // Every accepted message enqueues: a group commit's jobs go in one statement at its end.
      deferInsert(uow, handle.dialect, 'jobs', JOB_COLUMNS, [row]);
    } else {
      const [q] = insertStatements(handle.dialect, 'jobs', JOB_COLUMNS, [row], job.dedupeKey ? 'ON CONFLICT DO NOTHING' : '');
      const res = await (uow ? uow.tx : db).executeQuery(q!);
      if (Number(res.numAffectedRows ?? 0) === 0) return undefined;
    }
    // One NOTIFY per transaction, sent with its deferred rows: delivered at commit, and only if
    // the transaction commits. A leased job wakes nobody.
    if (pg && !lease) {
      if (uow) deferNotify(uow, channel);
      else await sql`SELECT pg_notify(${channel}, '')`.execute(db);
    }
    return row;
  };

  return {
    async enqueueLeased(uow, job, owner, leaseMs) {
      const row = await insert(uow, { ...job, dedupeKey: undefined }, { owner, ms: leaseMs });
      return toJob(row!);
    },
    async enqueue(uow, job) {
      try {
        const id = (await insert(uow, job))?.id;
        if (!wakeQueued.has(uow.tx)) {
          wakeQueued.add(uow.tx);
          uow.afterCommit(wake);
        }
        return id;
      } catch (err) {
        if (isUniqueViolation(err)) return undefined;
        throw err;
      }
    },
    async enqueueNow(job) {
      const id = (await insert(db, job))?.id;
      wake();
      return id;
    },
    async claim(owner, limit, leaseMs, kinds) {
      const now = clock.now();
      // Queued and expired jobs are read separately so each branch walks the (state, run_at)
      // index in order and stops at `limit`: with one OR of the two, both databases sorted every
      // due row to take the first few (milliseconds per claim at a backlog of thousands; on
      // PostgreSQL 5–14 ms with 15,000 queued).
      // PostgreSQL: the branches lock their rows in CTEs (SKIP LOCKED) so concurrent workers never
      // lease the same row; a row lock re-checks the branch's condition against the latest version.
      // Rows locked but not picked are released when the statement ends. A queue table's
      // statistics are always out of date (when it was last analysed it may have been empty), and
      // expecting few due rows the planner bitmap-scans and sorts all of them; without bitmap scans
      // it walks the index in order (and no JIT compiles a statement that runs in microseconds).
      // SET LOCAL lasts for the one transaction that a simple query of several statements runs as:
      // still one round trip, values as literals.
      // SQLite: a single writer makes the UPDATE … WHERE id IN (…) atomic on its own.
      if (pg) {
        const kinds$ = kinds && kinds.length ? `AND kind IN (${kinds.map(escapeLiteral).join(', ')})` : '';
        const branch = (where: string) => `SELECT id, run_at FROM jobs WHERE ${where} ${kinds$} ORDER BY run_at LIMIT ${Number(limit)} FOR UPDATE SKIP LOCKED`;
        const results = (await handle.pool!.query(`SET LOCAL enable_bitmapscan = off; SET LOCAL jit = off;
          WITH queued AS (${branch(`state = 'queued' AND run_at <= ${now}`)}),
            expired AS (${branch(`state = 'running' AND lease_until < ${now}`)}),
            picked AS (SELECT id FROM (SELECT id, run_at FROM queued UNION ALL SELECT id, run_at FROM expired) AS due ORDER BY run_at LIMIT ${Number(limit)})
          UPDATE jobs SET state = 'running', lease_owner = ${escapeLiteral(owner)}, lease_until = ${now + leaseMs}, attempts = jobs.attempts + 1, updated_at = ${now}
          FROM picked WHERE jobs.id = picked.id RETURNING jobs.*`)) as unknown as Array<{ rows: JobRow[] }>;
        return results[results.length - 1]!.rows.map(toJob).sort((a, b) => a.runAt - b.runAt);
      }
      const kindFilter = kinds && kinds.length ? sql`AND kind IN (${sql.join(kinds)})` : sql``;
      const set = sql`state = 'running', lease_owner = ${owner}, lease_until = ${now + leaseMs}, attempts = jobs.attempts + 1, updated_at = ${now}`;
      const rows = await sql<JobRow>`
            UPDATE jobs SET ${set}
            WHERE id IN (SELECT id FROM (
              SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'queued' AND run_at <= ${now} ${kindFilter} ORDER BY run_at LIMIT ${limit})
              UNION ALL
              SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'running' AND lease_until < ${now} ${kindFilter} ORDER BY run_at LIMIT ${limit})
            ) ORDER BY run_at LIMIT ${limit})
            RETURNING *`.execute(db);
      return rows.rows.map(toJob).sort((a, b) => a.runAt - b.runAt);
    },
    async heartbeat(job, leaseMs) {
      const until = clock.now() + leaseMs;
      const res = await db
        .updateTable('jobs')
        .set({ lease_until: until })
        .where('id', '=', job.id)
        .where('lease_owner', '=', job.leaseOwner)
        .where('attempts', '=', job.attempts)
        .where('state', '=', 'running')
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) {
        job.leaseUntil = until;
        return true;
      }
      return false;
    },
    async complete(job, tx) {
      const res = await (tx ?? db).executeQuery(CompiledQuery.raw(completeSql, [job.id, job.leaseOwner, job.attempts]));
      return Number(res.numAffectedRows ?? 0) === 1;
    },
    completeAtCommit(uow, job) {
      completing(uow).push(job);
    },
    async fail(job, error, retryAt) {
      const res = await db
        .updateTable('jobs')
        .set(
          retryAt === 'dead'
            ? { state: 'dead', lease_owner: null, lease_until: null, last_error: error.slice(0, 2000), updated_at: clock.now() }
            : { state: 'queued', run_at: retryAt, lease_owner: null, lease_until: null, last_error: error.slice(0, 2000), updated_at: clock.now() },
        )
        .where('id', '=', job.id)
        .where('lease_owner', '=', job.leaseOwner)
        .where('attempts', '=', job.attempts)
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    },
    async nextRunAt(kinds) {
      let queued = db.selectFrom('jobs').select((eb) => eb.fn.min('run_at').as('next')).where('state', '=', 'queued');
      let running = db.selectFrom('jobs').select((eb) => eb.fn.min('lease_until').as('next')).where('state', '=', 'running');
      if (kinds && kinds.length) {
        queued = queued.where('kind', 'in', kinds);
        running = running.where('kind', 'in', kinds);
      }
      const row = await queued.executeTakeFirst();
      const lease = await running.executeTakeFirst();
      const candidates = [row?.next, lease?.next].filter((v) => v !== null && v !== undefined).map(Number);
      return candidates.length ? Math.min(...candidates) : undefined;
    },
    async depth() {
      const rows = await db
        .selectFrom('jobs')
        .select(['state', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.min('run_at').as('oldest')])
        .groupBy('state')
        .execute();
      const by = Object.fromEntries(rows.map((r) => [r.state, r]));
      const oldest = by.queued?.oldest;
      return {
        queued: Number(by.queued?.n ?? 0),
        running: Number(by.running?.n ?? 0),
        dead: Number(by.dead?.n ?? 0),
        oldestDueMs: oldest === undefined || oldest === null ? undefined : Math.max(0, clock.now() - Number(oldest)),
      };
    },
    async get(id) {
      const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toJob(row) : undefined;
    },
    async list(filter) {
      let q = db.selectFrom('jobs').selectAll().orderBy('run_at').limit(filter.limit ?? 100);
      if (filter.state) q = q.where('state', '=', filter.state);
      if (filter.kind) q = q.where('kind', '=', filter.kind);
      return (await q.execute()).map(toJob);
    },
    onWake(fn, opts = {}) {
      // SQLite: another process's commit may have added due jobs (PostgreSQL: NOTIFY above).
      const watching = opts.otherProcesses !== false;
      if (watching && !watchers++) stopWatching = handle.onCommitElsewhere?.(wake);
      wakers.add(fn);
      return () => {
        if (!wakers.delete(fn)) return;
        if (watching && !--watchers) {
          stopWatching?.();
          stopWatching = undefined;
        }
      };
    },
    wake,
    ready: () => listening,
    async close() {
      closed = true;
      stopWatching?.();
      stopWatching = undefined;
      markReady();
      if (listener) {
        listener.removeAllListeners();
        // Destroy rather than return it to the pool: the connection is still LISTENing.
        try { listener.release(true); } catch {}
        listener = undefined;
      }
    },
  };
}
