import { sql } from 'kysely';
import { auditColumns, type SchemaMigration } from '../../storage/migrations/types.js';
import { idempotencyMigration } from '../../http/idempotency.js';

/** One API tables (0200 range): messages, inbound messages, rule sets, channel windows. */
export const messagesMigrations: SchemaMigration[] = [
  idempotencyMigration,
  {
    name: '0201_messages',
    async up({ db, t }) {
      await db.schema
        .createTable('messages')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('profile_id', 'text')
        .addColumn('channel_id', 'text')
        .addColumn('conversation_id', 'text')
        .addColumn('provider_message_id', 'text')
        .addColumn('request', t.json, (c) => c.notNull())
        .addColumn('status_details', t.json, (c) => c.notNull())
        .addColumn('state', t.json, (c) => c.notNull())
        .addColumn('rendered', t.json)
        .addColumn('expires_at', t.bigint)
        .addColumn('submitted_at', t.bigint, (c) => c.notNull())
        .addColumn('sender_profile_id', 'text')
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .$call(auditColumns())
        .addPrimaryKeyConstraint('messages_pk', ['api_space_id', 'id'])
        .execute();
      // Partial indexes: most rows of a large batch have neither a profile nor (yet) a provider id,
      // and every skipped index entry makes the accept path cheaper.
      await db.schema.createIndex('messages_profile').on('messages').columns(['api_space_id', 'profile_id', 'submitted_at']).where(sql.ref('profile_id'), 'is not', null).execute();
      await db.schema.createIndex('messages_provider_id').on('messages').columns(['api_space_id', 'provider_message_id']).where(sql.ref('provider_message_id'), 'is not', null).execute();

      await db.schema
        .createTable('inbound_messages')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('doc', t.json, (c) => c.notNull())
        .addColumn('received_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('inbound_messages_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('inbound_messages_profile').on('inbound_messages').columns(['api_space_id', 'profile_id', 'received_at']).execute();

      await db.schema
        .createTable('rule_sets')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('doc', t.json, (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('rule_sets_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('rule_sets_name').on('rule_sets').columns(['api_space_id', 'name']).unique().execute();

      await db.schema
        .createTable('channel_windows')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('last_inbound_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('channel_windows_pk', ['api_space_id', 'profile_id', 'channel'])
        .execute();
    },
  },
  {
    // Provider ids of every accepted attempt: receipts that only carry the provider's id still
    // find their message after timed fallback moved it to another channel (one-api.md §2.3 step 6).
    name: '0202_message_provider_refs',
    async up({ db }) {
      await db.schema
        .createTable('message_provider_refs')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('provider_message_id', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('message_provider_refs_pk', ['api_space_id', 'channel', 'provider_message_id'])
        .execute();
    },
  },
  {
    // Forgetting a profile (profiles.md §3.5) finds the messages it sent as well as those to it.
    name: '0203_messages_sender_profile',
    async up({ db }) {
      await db.schema.createIndex('messages_sender_profile').on('messages').columns(['api_space_id', 'sender_profile_id']).where(sql.ref('sender_profile_id'), 'is not', null).execute();
    },
  },
  {
    // Batch envelopes (batches.ts): a batch is accepted as one row and expanded into message rows
    // by its `message.batch` job, or at once by the first read that needs one of its messages.
    name: '0204_message_batches',
    async up({ db, t }) {
      await db.schema
        .createTable('message_batches')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        // Text, not jsonb, on PostgreSQL too: the envelope is only ever read back whole, and
        // parsing a 5,000-item document into jsonb would cost the accept path for nothing.
        .addColumn('doc', 'text', (c) => c.notNull())
        .addColumn('submitted_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('message_batches_pk', ['api_space_id', 'id'])
        .execute();
    },
  },
  {
    // The message's JSON columns are only ever read back whole (no query looks inside them):
    // text on PostgreSQL too, as on SQLite, so no write parses them into jsonb and no read prints
    // them again; every accepted and dispatched message writes and reads them (ADR 0006).
    name: '0205_messages_json_text',
    async up({ db, dialect }) {
      if (dialect !== 'postgres') return;
      await sql`ALTER TABLE messages
        ALTER COLUMN request TYPE text USING request::text,
        ALTER COLUMN status_details TYPE text USING status_details::text,
        ALTER COLUMN state TYPE text USING state::text,
        ALTER COLUMN rendered TYPE text USING rendered::text`.execute(db);
    },
  },
  {
    // The next free send slot of each paced channel (pacing.ts), shared by every worker process.
    name: '0206_channel_pacing',
    async up({ db, t }) {
      await db.schema
        .createTable('channel_pacing')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('channel_id', 'text', (c) => c.notNull())
        .addColumn('next_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('channel_pacing_pk', ['api_space_id', 'channel_id'])
        .execute();
    },
  },
];
