import type { SchemaMigration } from '../../storage/migrations/types.js';

export const smsMigrations: SchemaMigration[] = [
  {
    name: '0300_sms_parts_and_senders',
    async up({ db, t }) {
      // One row per submitted part: receipts arrive per SMSC message id (sms.md §6.2).
      await db.schema
        .createTable('sms_parts')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('provider_id', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('part_ids', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('sms_parts_pk', ['api_space_id', 'provider_id'])
        .execute();
      await db.schema.createIndex('sms_parts_message').on('sms_parts').columns(['api_space_id', 'message_id']).execute();
      // Sender stitching: the pool number last used for a recipient (sms.md §2).
      await db.schema
        .createTable('sms_senders')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('used_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('sms_senders_pk', ['api_space_id', 'recipient'])
        .execute();
    },
  },
];
