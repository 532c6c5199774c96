import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { Kysely, type Transaction } from 'kysely';
import { SQLITE_BUSY_TIMEOUT_MS, TransactionAwarePostgresDialect, TransactionAwareSqliteDialect } from './uow.js';
import { startCheckpointer } from './checkpointer.js';
import type { Database } from './schema.js';

export type DialectName = 'sqlite' | 'postgres';
export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Anything queries can run on: the database or an open transaction. */
export type Executor = Kysely<Database>;

export interface DatabaseHandle {
  readonly db: Db;
  readonly dialect: DialectName;
  /** PostgreSQL only: the pool (LISTEN/NOTIFY needs raw clients). */
  readonly pool?: pg.Pool;
  /** PostgreSQL only: the schema this handle works in (tests isolate by schema). */
  readonly schema?: string;
  /**
   * SQLite only: calls `fn` soon after another connection to the file (another process, such as
   * an API process beside a worker process) committed. PostgreSQL processes tell each other with
   * NOTIFY instead. Returns the unsubscribe function.
   */
  readonly onCommitElsewhere?: (fn: () => void) => () => void;
  close(): Promise<void>;
}

/**
 * How often `onCommitElsewhere` looks at SQLite's `data_version` while anyone listens: every 25 ms
 * after it last saw a change, then half as often each time it finds none, down to every 200 ms.
 * Each look wakes the process (≈ 0.2 ms of CPU on a small VM, whatever the look costs), so a
 * server alone on its file does not pay 40 of them a second.
 */
const COMMIT_WATCH_MS = 25;
const COMMIT_WATCH_IDLE_MS = 200;

/**
 * `PRAGMA data_version` on this connection changes when any other connection has committed since
 * it was last read, and costs a few microseconds to read: polled only while someone listens.
 */
function commitWatcher(sqlite: SqliteDatabase.Database) {
  const listeners = new Set<() => void>();
  const version = sqlite.prepare('PRAGMA data_version').pluck();
  const read = (): unknown => {
    try {
      return version.get();
    } catch {
      return undefined; // the connection is busy iterating a result, or closed: look next time
    }
  };
  let last: unknown;
  let timer: NodeJS.Timeout | undefined;
  const look = (delay: number) => {
    timer = setTimeout(() => {
      const now = read();
      const changed = now !== undefined && now !== last;
      if (changed) {
        last = now;
        for (const fn of listeners) fn();
      }
      if (timer) look(changed ? COMMIT_WATCH_MS : Math.min(COMMIT_WATCH_IDLE_MS, delay * 2));
    }, delay);
    timer.unref();
  };
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return {
    subscribe(fn: () => void): () => void {
      listeners.add(fn);
      if (!timer) {
        last = read();
        look(COMMIT_WATCH_MS);
      }
      return () => {
        listeners.delete(fn);
        if (!listeners.size) stop();
      };
    },
    stop,
  };
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

// int8 (bigint, count(*)) and numeric come back as strings by default; our values fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export interface OpenOptions {
  /** PostgreSQL: work inside this schema (created if missing). */
  schema?: string;
  poolSize?: number;
  /**
   * SQLite: false when another connection of this process runs the background checkpointer on
   * the same file (the workers' thread beside the main thread): one is enough, and two would both
   * take the write lock for their RESTARTs.
   */
  checkpointer?: boolean;
}

/** Opens the database named by a URL: PostgreSQL for postgres URLs, otherwise a SQLite file. */
export function openDatabase(url: string, options: OpenOptions = {}): DatabaseHandle {
  if (isPostgresUrl(url)) {
    const schema = options.schema;
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle client losing its connection must not crash the process.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new TransactionAwarePostgresDialect({ pool }) });
    return { db, dialect: 'postgres', pool, schema, close: () => db.destroy() };
  }
  const file = url.replace(/^sqlite:(\/\/)?/i, '');
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL is durable in WAL mode across process crashes (only an OS crash can lose the last
  // transactions); FULL would add an fsync per commit. See docs/adr/0002-storage.md.
  sqlite.pragma(`synchronous = ${process.env.SQLITE_SYNCHRONOUS ?? 'NORMAL'}`);
  // For the set-up below only: the dialect then sets it to 0 and waits for locks without blocking
  // the event loop (storage/uow.ts `waitingForLocks`).
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  sqlite.pragma('foreign_keys = ON');
  // Checkpoints run on a worker thread (storage/checkpointer.ts): a commit that checkpoints would
  // stop the whole process while the WAL is copied and fsynced. The main connection's automatic
  // checkpoint stays as a backstop at a much larger WAL. Keep more pages cached. See
  // docs/adr/0002-storage.md.
  const backgroundCheckpoints = file !== ':memory:';
  const checkpointer = backgroundCheckpoints && options.checkpointer !== false ? startCheckpointer(file) : undefined;
  sqlite.pragma(`wal_autocheckpoint = ${backgroundCheckpoints ? 100_000 : 10_000}`);
  sqlite.pragma('cache_size = -65536');
  sqlite.pragma('temp_store = MEMORY');
  const db = new Kysely<Database>({ dialect: new TransactionAwareSqliteDialect({ database: sqlite }) });
  const commits = commitWatcher(sqlite);
  return {
    db, dialect: 'sqlite',
    onCommitElsewhere: commits.subscribe,
    async close() {
      commits.stop();
      await checkpointer?.close();
      await db.destroy();
    },
  };
}
