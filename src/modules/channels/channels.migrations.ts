import { auditColumns, type SchemaMigration } from '../../storage/migrations/types.js';

/** Channel configurations (channels.md §1.3) and tracked links (§1.5). */
export const channelsMigrations: SchemaMigration[] = [
  {
    name: '0250-channel-configs',
    async up({ db, t }) {
      await db.schema
        .createTable('channel_configs')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('channel_id', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('settings', t.json, (c) => c.notNull())
        .addColumn('secrets', 'text')
        .addColumn('revision', 'integer', (c) => c.notNull())
        .$call(auditColumns())
        .addPrimaryKeyConstraint('channel_configs_pk', ['api_space_id', 'channel_id'])
        .execute();
    },
  },
  {
    name: '0251-tracked-links',
    async up({ db, t }) {
      await db.schema
        .createTable('tracked_links')
        .addColumn('token', 'text', (c) => c.primaryKey())
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('channel_id', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('metadata', t.json)
        .addColumn('created_on', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tracked_links_message').on('tracked_links').columns(['api_space_id', 'message_id']).execute();
    },
  },
  {
    // Dispatch limits (channels.md §1.3): a JSON object read back whole, text on both databases.
    name: '0252-channel-limits',
    async up({ db }) {
      await db.schema.alterTable('channel_configs').addColumn('limits', 'text').execute();
    },
  },
];
