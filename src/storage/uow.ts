import { AsyncLocalStorage } from 'node:async_hooks';
import { CompiledQuery, PostgresDialect, SqliteDialect, type DatabaseConnection, type Driver, type SqliteDatabase, type SqliteDialectConfig, type TransactionSettings } from 'kysely';
import type { Db, Tx } from './db.js';

/**
 * A unit of work: one database transaction plus what to do once it has committed (wake workers,
 * publish realtime frames). Nothing in `afterCommit` runs if the transaction rolls back; then
 * `afterRollback` runs instead (return what was reserved in memory for the work).
 */
export interface Uow {
  readonly tx: Tx;
  afterCommit(fn: () => void): void;
  afterRollback(fn: () => void): void;
  /** Runs inside the transaction after the unit's own work, just before COMMIT (deferred writes). */
  beforeCommit(fn: () => Promise<void>): void;
  /**
   * Runs after every `beforeCommit` hook: the transaction's last statements (`storage/raw.ts`
   * writes deferred rows here). Register before the transaction ends; neither hook may be added
   * once these run.
   */
  lastly(fn: () => Promise<void>): void;
}

const runAll = (fns: Array<() => void>) => {
  for (const fn of fns) {
    try {
      fn();
    } catch {
      // Best effort by definition; durable work lives in jobs and events.
    }
  }
};

interface Scope {
  active: boolean;
  /** The connection the transaction holds, lent to queries made on `db` inside it. */
  connection?: DatabaseConnection;
  /** The driver that connection belongs to: another database's queries never borrow it. */
  owner?: object;
  borrowed: number;
}
const scope = new AsyncLocalStorage<Scope>();

/** Whether the caller runs inside an open `inTransaction` (its queries would borrow its connection). */
export function insideTransaction(): boolean {
  return !!scope.getStore()?.active;
}

/** Runs `fn` outside any transaction scope (work started for several callers belongs to none). */
export function detached<T>(fn: () => T): T {
  return scope.exit(fn);
}

/**
 * Something a transaction gathers as it goes and writes at its end — deferred rows, jobs to
 * complete, messages to dispatch: `get(uow, arg)` makes the value on its first use in that
 * transaction (`make(arg)`) and registers `flush` for the `phase` hook, which receives it once.
 * Units sharing a group commit share one transaction, so they share one value.
 */
export function perTransaction<T, A = void>(make: (arg: A) => T, flush: (value: T, uow: Uow) => Promise<void>, phase: 'beforeCommit' | 'lastly' = 'beforeCommit'): (uow: Uow, arg: A) => T {
  const values = new WeakMap<Tx, T>();
  return (uow, arg) => {
    let value = values.get(uow.tx);
    if (value === undefined) {
      const mine = (value = make(arg));
      values.set(uow.tx, mine);
      uow[phase](async () => {
        values.delete(uow.tx);
        await flush(mine, uow);
      });
    }
    return value;
  };
}

export async function inTransaction<T>(db: Db, fn: (uow: Uow) => Promise<T>): Promise<T> {
  const callbacks: Array<() => void> = [];
  const undo: Array<() => void> = [];
  const outer = scope.getStore();
  // A nested call shares the outer scope, so on SQLite its BEGIN fails at once instead of waiting
  // forever for the connection the outer transaction holds.
  const current: Scope = outer?.active ? outer : { active: true, borrowed: 0 };
  let result: T;
  try {
    result = await scope.run(current, () => db.transaction().execute(async (tx) => {
      const before: Array<() => Promise<void>> = [];
      const last: Array<() => Promise<void>> = [];
      let ending = false;
      const r = await fn({
        tx,
        afterCommit: (cb) => callbacks.push(cb),
        afterRollback: (cb) => undo.push(cb),
        beforeCommit: (cb) => {
          if (ending) throw new Error('beforeCommit after the last statements of the transaction began');
          before.push(cb);
        },
        lastly: (cb) => {
          if (ending) throw new Error('lastly while the last statements of the transaction run');
          last.push(cb);
        },
      });
      // A hook may add another (a deferred write that defers more): run until none is left.
      for (let i = 0; i < before.length; i++) await before[i]!();
      ending = true;
      for (const hook of last) await hook();
      return r;
    }));
  } catch (err) {
    runAll(undo);
    throw err;
  } finally {
    if (current !== outer) {
      current.active = false;
      current.connection = undefined;
      current.owner = undefined;
    }
  }
  runAll(callbacks);
  return result;
}

/**
 * Queries made on `db` (not `uow.tx`) inside `inTransaction` borrow the transaction's connection
 * and run inside it. On SQLite (one connection behind a mutex) such a query would otherwise wait
 * for the transaction that waits for it — a silent deadlock; on PostgreSQL it would take a second
 * pooled connection, read outside the transaction, and under load exhaust the pool with every
 * transaction waiting for a connection that only another transaction can free. Both dialects
 * therefore behave alike. A nested transaction fails at once instead of committing the outer one.
 */
function transactionAware(inner: Driver): Driver {
  const self = {};
  const lent = (s: Scope | undefined): s is Scope & { connection: DatabaseConnection } => !!s?.active && !!s.connection && s.owner === self;
  return {
    init: () => inner.init(),
    async acquireConnection() {
      const s = scope.getStore();
      if (lent(s)) {
        s.borrowed++;
        return s.connection;
      }
      return inner.acquireConnection();
    },
    async beginTransaction(connection, settings) {
      const held = scope.getStore();
      if (lent(held) && held.connection === connection) {
        // Kysely does not roll back a transaction whose BEGIN failed, so the outer one is untouched.
        throw new Error('Nested transaction: pass the outer unit of work (uow) down instead of opening another transaction');
      }
      await inner.beginTransaction(connection, settings);
      const s = scope.getStore();
      if (s?.active && !s.connection) {
        s.connection = connection;
        s.owner = self;
      }
    },
    commitTransaction: (connection) => inner.commitTransaction(connection),
    rollbackTransaction: (connection) => inner.rollbackTransaction(connection),
    ...(inner.savepoint ? { savepoint: inner.savepoint.bind(inner) } : {}),
    ...(inner.rollbackToSavepoint ? { rollbackToSavepoint: inner.rollbackToSavepoint.bind(inner) } : {}),
    ...(inner.releaseSavepoint ? { releaseSavepoint: inner.releaseSavepoint.bind(inner) } : {}),
    async releaseConnection(connection) {
      const s = scope.getStore();
      if (s && s.owner === self && s.borrowed > 0 && connection === s.connection) {
        s.borrowed--;
        return;
      }
      if (s?.owner === self && s.connection === connection) {
        s.connection = undefined;
        s.owner = undefined;
      }
      await inner.releaseConnection(connection);
    },
    destroy: () => inner.destroy(),
  };
}

/** How long a statement or a transaction waits for another connection's write lock. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;
/** SQLITE_BUSY or one of its extended codes: another connection holds the lock. */
export const isSqliteBusy = (err: unknown) => (err as { code?: string } | undefined)?.code?.startsWith('SQLITE_BUSY') === true;
const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');

/**
 * Lock releases of this process's threads on one SQLite file (`WORKER_THREAD`): a counter every
 * thread bumps after it commits, rolls back or finishes a writing statement outside a
 * transaction, so that a thread waiting for the write lock wakes when the other lets go instead
 * of at its next poll.
 */
let releases: Int32Array | undefined;

/** Shares `buffer` (from `lockReleasesBuffer`, one per file) with the other threads on the file; none: stop. */
export function shareLockReleases(buffer: SharedArrayBuffer | undefined): void {
  releases = buffer && new Int32Array(buffer);
}
export const lockReleasesBuffer = () => new SharedArrayBuffer(4);

function released(): void {
  if (!releases) return;
  Atomics.add(releases, 0, 1);
  Atomics.notify(releases, 0);
}

/**
 * Whether a statement run outside a transaction may have held the write lock: a SELECT from the
 * query builder never does (WAL readers take no lock), so its end wakes no waiter for nothing.
 */
const mayHaveWritten = (q: CompiledQuery): boolean => q.query.kind !== 'SelectQueryNode';

/** Waits for another thread's release, or about a millisecond (another process's lock). */
function nextTry(attempt: number, seen: number): Promise<unknown> {
  if (releases) {
    // ES2024's `Atomics.waitAsync` (V8 has it; the compiler's lib here predates it).
    const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, ms: number): { async: boolean; value: Promise<unknown> } }).waitAsync(releases, 0, seen, 1);
    return w.async ? w.value : Promise.resolve();
  }
  return new Promise((resolve) => (attempt < 3 ? setImmediate(resolve) : setTimeout(resolve, 1)));
}

/** Runs `run` until it does not fail with SQLITE_BUSY, for at most SQLITE_BUSY_TIMEOUT_MS. */
async function untilFree<T>(run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    // Read before trying: a release between the failure and the wait must not be missed.
    const seen = releases ? Atomics.load(releases, 0) : 0;
    try {
      return await run();
    } catch (err) {
      if (!isSqliteBusy(err) || performance.now() - started > SQLITE_BUSY_TIMEOUT_MS) throw err;
    }
    await nextTry(attempt, seen);
  }
}

/**
 * Waits for other connections' locks without blocking the event loop. Another process on the
 * same file (an API process beside a worker process) may hold the write lock; SQLite's own busy
 * handler would sleep the whole thread meanwhile, in growing steps (1, 2, 5, 10 … 100 ms), and
 * every request of this process would wait with it. So the connection runs with
 * `busy_timeout = 0` and waits here instead, polling about every millisecond: a transaction at
 * its `BEGIN IMMEDIATE` (taking the lock at BEGIN also means a transaction never fails half-way
 * when its read snapshot cannot be upgraded to a write, SQLITE_BUSY_SNAPSHOT), and a statement
 * outside a transaction — its own implicit transaction, which has done nothing when it reports
 * SQLITE_BUSY — by running it again. Statements inside a transaction hold the lock already.
 */
function waitingForLocks(inner: Driver): Driver {
  /** Connections (as handed out here) with a transaction open. */
  const open = new WeakSet<DatabaseConnection>();
  const wrapped = new WeakMap<DatabaseConnection, DatabaseConnection>();
  const wrap = (c: DatabaseConnection): DatabaseConnection => {
    let w = wrapped.get(c);
    if (!w) {
      const self: DatabaseConnection = {
        executeQuery: <R>(q: CompiledQuery) => (open.has(self) ? c.executeQuery<R>(q) : untilFree(() => c.executeQuery<R>(q)).finally(() => mayHaveWritten(q) && released())),
        streamQuery: (q, chunkSize) => c.streamQuery(q, chunkSize),
      };
      wrapped.set(c, (w = self));
    }
    return w;
  };
  // The driver ends a transaction through the connection it is given (COMMIT / ROLLBACK run
  // directly: the transaction is still open), then the connection is outside one again.
  const ending = (end: (c: DatabaseConnection) => Promise<void>) => async (c: DatabaseConnection) => {
    try {
      await end(c);
    } finally {
      open.delete(c);
      released();
    }
  };
  return {
    init: () => inner.init(),
    acquireConnection: async () => wrap(await inner.acquireConnection()),
    async beginTransaction(c) {
      await c.executeQuery(BEGIN_IMMEDIATE);
      open.add(c);
    },
    commitTransaction: ending((c) => inner.commitTransaction(c)),
    rollbackTransaction: ending((c) => inner.rollbackTransaction(c)),
    ...(inner.savepoint ? { savepoint: inner.savepoint.bind(inner) } : {}),
    ...(inner.rollbackToSavepoint ? { rollbackToSavepoint: inner.rollbackToSavepoint.bind(inner) } : {}),
    ...(inner.releaseSavepoint ? { releaseSavepoint: inner.releaseSavepoint.bind(inner) } : {}),
    releaseConnection: (c) => inner.releaseConnection(c),
    destroy: () => inner.destroy(),
  };
}

/**
 * SQLite dialect with transaction-aware connections, a prepared-statement cache, and lock waits
 * that never block the event loop (`waitingForLocks`; it sets the connection's busy timeout to 0).
 */
export class TransactionAwareSqliteDialect extends SqliteDialect {
  constructor(config: SqliteDialectConfig) {
    const db = config.database;
    const keep = (d: SqliteDatabase) => {
      (d as unknown as { pragma(source: string): unknown }).pragma('busy_timeout = 0');
      return withStatementCache(d);
    };
    super({ ...config, database: typeof db === 'function' ? async () => keep(await db()) : keep(db) });
  }

  override createDriver(): Driver {
    return transactionAware(waitingForLocks(super.createDriver()));
  }
}

/** Statements that may make up a whole transaction on their own (`asWholeTransaction`). */
const wholeTransactions = new WeakSet<CompiledQuery>();

/**
 * Marks `q`, a transaction's last statement (run in `Uow.lastly`), as one that may run as the
 * whole transaction: on PostgreSQL, when nothing ran in the transaction before it, it runs without
 * BEGIN and COMMIT (a single statement is atomic on its own). A group of accepted messages, whose
 * units only defer rows, then commits in one round trip instead of three.
 */
export function asWholeTransaction(q: CompiledQuery): CompiledQuery {
  wholeTransactions.add(q);
  return q;
}

/**
 * PostgreSQL transactions that send BEGIN with their first statement instead of at once (every
 * statement is a round trip), and none at all when their only statement is marked with
 * `asWholeTransaction`. A transaction in which nothing ran sends neither BEGIN nor COMMIT.
 */
function lazyBegin(inner: Driver): Driver {
  interface State { pending: boolean; alone: boolean; settings: TransactionSettings }
  const states = new WeakMap<DatabaseConnection, State>();
  const innerOf = new WeakMap<DatabaseConnection, DatabaseConnection>();
  const wrapped = new WeakMap<DatabaseConnection, DatabaseConnection>();
  /** Sends the pending BEGIN, unless `q` may run as the whole transaction. */
  const begin = async (self: DatabaseConnection, q?: CompiledQuery) => {
    const st = states.get(self);
    // Anything after a statement that ran as the whole transaction would run outside one.
    if (st?.alone) throw new Error('A statement ran after the one marked as the whole transaction');
    if (!st?.pending) return;
    st.pending = false;
    if (q && wholeTransactions.has(q)) st.alone = true;
    else await inner.beginTransaction(innerOf.get(self)!, st.settings);
  };
  const wrap = (c: DatabaseConnection): DatabaseConnection => {
    let w = wrapped.get(c);
    if (!w) {
      const self: DatabaseConnection = {
        async executeQuery(q) {
          await begin(self, q);
          return c.executeQuery(q);
        },
        async *streamQuery(q, chunkSize) {
          await begin(self);
          yield* c.streamQuery(q, chunkSize);
        },
      };
      wrapped.set(c, (w = self));
      innerOf.set(self, c);
    }
    return w;
  };
  /** Ends the transaction on the server only if one was begun there. */
  const ending = (end: (c: DatabaseConnection) => Promise<void>) => async (self: DatabaseConnection) => {
    const st = states.get(self);
    states.delete(self);
    if (st && (st.pending || st.alone)) return;
    await end(innerOf.get(self)!);
  };
  const begun = <A extends unknown[]>(fn: ((c: DatabaseConnection, ...a: A) => Promise<void>) | undefined) =>
    fn && (async (self: DatabaseConnection, ...a: A) => {
      await begin(self);
      await fn.call(inner, innerOf.get(self)!, ...a);
    });
  return {
    init: () => inner.init(),
    acquireConnection: async () => wrap(await inner.acquireConnection()),
    async beginTransaction(self, settings) {
      states.set(self, { pending: true, alone: false, settings });
    },
    commitTransaction: ending((c) => inner.commitTransaction(c)),
    rollbackTransaction: ending((c) => inner.rollbackTransaction(c)),
    ...(inner.savepoint ? { savepoint: begun(inner.savepoint) } : {}),
    ...(inner.rollbackToSavepoint ? { rollbackToSavepoint: begun(inner.rollbackToSavepoint) } : {}),
    ...(inner.releaseSavepoint ? { releaseSavepoint: begun(inner.releaseSavepoint) } : {}),
    releaseConnection: (self) => inner.releaseConnection(innerOf.get(self)!),
    destroy: () => inner.destroy(),
  };
}

/** PostgreSQL dialect with transaction-aware connections that begin lazily (`lazyBegin`). */
export class TransactionAwarePostgresDialect extends PostgresDialect {
  override createDriver(): Driver {
    return transactionAware(lazyBegin(super.createDriver()));
  }
}

/**
 * Kysely prepares every query afresh; on better-sqlite3 preparing costs about as much as running a
 * small query. Statements are reusable, so keep the most recent ones by SQL text (a statement still
 * busy iterating a stream is not shared: a fresh one is prepared instead).
 */
function withStatementCache(db: SqliteDatabase, max = 500): SqliteDatabase {
  type Statement = ReturnType<SqliteDatabase['prepare']> & { busy?: boolean };
  const cache = new Map<string, Statement>();
  return {
    close: () => db.close(),
    prepare(sql: string) {
      const hit = cache.get(sql);
      if (hit && !hit.busy) {
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const stmt = db.prepare(sql) as Statement;
      cache.set(sql, stmt);
      if (cache.size > max) cache.delete(cache.keys().next().value!);
      return stmt;
    },
  };
}
