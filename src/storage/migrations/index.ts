import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import { inTransaction, isSqliteBusy } from '../uow.js';
import type { DatabaseHandle } from '../db.js';
import { columnTypes } from '../dialect.js';
import type { SchemaMigration } from './types.js';
import { platformMigrations } from './0001-platform.js';

/**
 * Applies the platform's and the given modules' pending migrations (names sort in order; each
 * module owns a range, see types.ts). Safe to run from several processes at once on PostgreSQL.
 */
export async function migrate(handle: DatabaseHandle, moduleMigrations: SchemaMigration[] = []): Promise<string[]> {
  const migrations = [...platformMigrations, ...moduleMigrations].sort((a, b) => a.name.localeCompare(b.name));
  const { db, dialect } = handle;
  const t = columnTypes(dialect);
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const m of migrations) out[m.name] = { up: (trxDb) => m.up({ db: trxDb, dialect, t }) };
      return out;
    },
  };
  // Kysely looks for its own tables in every schema unless told which one: pin it to ours, or a
  // parallel test schema's tables would be taken for this one's.
  // Each module numbers its own range (types.ts), so a module's new step sorts before steps of
  // later modules a database already ran: unordered application is expected, not corruption.
  const migrator = new Migrator({ db, provider, allowUnorderedMigrations: true, ...(handle.schema ? { migrationTableSchema: handle.schema } : {}) });
  if (dialect === 'sqlite') return migrateSqlite(handle, migrator);
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    // Kysely's introspection reads the catalog of every schema; another schema dropped at that
    // moment (parallel test suites, a tenant removed) fails the read with 3F000 (its schema),
    // 42P01 (one of its tables) or 42703 (a column of one of its tables, e.g. `column "key" of
    // relation "space_settings" does not exist`). The migrations run in one locked transaction,
    // so trying again is safe; a genuine error fails again and is thrown after the last attempt.
    const code = (error as { code?: string }).code;
    if (!VANISHED.has(code ?? '') || attempt >= 5) throw error instanceof Error ? error : new Error(String(error));
    await new Promise((r) => setTimeout(r, 50 * attempt));
  }
}

/** Catalog errors of objects another session dropped while Kysely's introspection read them. */
const VANISHED = new Set(['3F000', '42P01', '42703']);

/** How long a process waits for another one migrating the same SQLite file. */
const SQLITE_MIGRATION_WAIT_MS = 120_000;

/**
 * On SQLite Kysely runs migrations outside a transaction and without a lock, so two processes
 * starting on one file (an API process and a worker process, ARCHITECTURE.md "Processes") both
 * found the same migrations pending and the second failed half-way ("table … already exists").
 * Here the whole run is one `BEGIN IMMEDIATE` transaction (SQLite's DDL is transactional): the
 * other process waits for it, then finds nothing left to do, and a failed migration leaves
 * nothing behind. The wait for the lock is retried beyond the usual statement wait (migrations can
 * take longer than that).
 */
async function migrateSqlite(handle: DatabaseHandle, migrator: Migrator): Promise<string[]> {
  const started = performance.now();
  for (;;) {
    try {
      const results = await inTransaction(handle.db, async () => {
        const { error, results: done } = await migrator.migrateToLatest();
        if (error) throw error instanceof Error ? error : new Error(String(error));
        return done ?? [];
      });
      return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
    } catch (err) {
      if (!isSqliteBusy(err) || performance.now() - started > SQLITE_MIGRATION_WAIT_MS) throw err;
    }
  }
}
