import { sql } from 'kysely';
import type { SchemaMigration } from './types.js';

export const platformMigrations: SchemaMigration[] = [
  {
    name: '0001_platform',
    async up({ db, t, dialect }) {
      await db.schema
        .createTable('accounts')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_on', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('users')
        .addColumn('account_id', 'integer', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('token_generation', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addColumn('updated_on', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('users_pk', ['username'])
        .execute();
      await db.schema
        .createTable('api_spaces')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('account_id', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addColumn('updated_on', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .addColumn('deleted_on', 'text')
        .execute();
      await db.schema.createIndex('api_spaces_account').on('api_spaces').columns(['account_id']).execute();
      await db.schema
        .createTable('access_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('permissions', 'text', (c) => c.notNull())
        .addColumn('expires_on', 'text')
        .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_used_on', 'text')
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('access_tokens_space').on('access_tokens').columns(['api_space_id']).execute();
      await db.schema
        .createTable('space_settings')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('updated_on', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('space_settings_pk', ['api_space_id', 'key'])
        .execute();
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('api_space_id', 'text')
        .addColumn('payload', t.json, (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('run_at', t.bigint, (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', t.bigint)
        .addColumn('last_error', 'text')
        .addColumn('dedupe_key', 'text')
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .execute();
      // Claim order: due queued jobs by run_at; expired leases are found through the same index.
      await db.schema.createIndex('jobs_due').on('jobs').columns(['state', 'run_at']).execute();
      await sql`CREATE UNIQUE INDEX jobs_dedupe ON jobs (kind, dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running')`.execute(db);
      await db.schema
        .createTable('events')
        .addColumn('id', t.serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('payload', t.json, (c) => c.notNull())
        .addColumn('meta', t.json, (c) => c.notNull())
        .addColumn('created_on', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_space').on('events').columns(['api_space_id', 'id']).execute();
      await db.schema
        .createTable('event_cursors')
        .addColumn('consumer', 'text', (c) => c.primaryKey())
        .addColumn('position', t.bigint, (c) => c.notNull())
        .addColumn('updated_on', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('kv')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  {
    // A job's payload is only ever read back whole: text on PostgreSQL too (like SQLite), so the
    // server does not parse every accepted message's job into jsonb and print it again for the
    // worker (docs/adr/0006-one-api-hot-path.md, "JSON read back whole is text").
    name: '0002_jobs_payload_text',
    async up({ db, dialect }) {
      if (dialect === 'postgres') await sql`ALTER TABLE jobs ALTER COLUMN payload TYPE text USING payload::text`.execute(db);
    },
  },
  {
    // Events' documents are read back whole too (docs/adr/0006-one-api-hot-path.md, decision 13):
    // as jsonb every append paid for parsing them, ~25 % of the statement with profile documents.
    name: '0003_events_json_text',
    async up({ db, dialect }) {
      if (dialect === 'postgres') await sql`ALTER TABLE events ALTER COLUMN payload TYPE text USING payload::text, ALTER COLUMN meta TYPE text USING meta::text`.execute(db);
    },
  },
  {
    // No query reads events by space (consumers read the log in order of id), and the index cost
    // every append an entry: about a fifth of an event insert on PostgreSQL, an eighth on SQLite
    // (docs/adr/0006-one-api-hot-path.md, "The events_space index").
    name: '0004_events_without_space_index',
    async up({ db }) {
      await db.schema.dropIndex('events_space').ifExists().execute();
    },
  },
];
