import type { SchemaMigration } from '../../storage/migrations/types.js';

export const verifyMigrations: SchemaMigration[] = [
  {
    name: '0310_verify_requests',
    async up({ db, t }) {
      await db.schema
        .createTable('verify_requests')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('phone_number', 'text', (c) => c.notNull())
        // HMAC-SHA256 of the code under a per-request random salt; the code itself is never stored.
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('code_salt', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        /** open | verified | locked | expired */
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('number_status', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text')
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addColumn('valid_until', t.bigint, (c) => c.notNull())
        .addColumn('verified_at', t.bigint)
        .addPrimaryKeyConstraint('verify_requests_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('verify_requests_throttle').on('verify_requests').columns(['api_space_id', 'phone_number', 'created_at']).execute();
    },
  },
];
