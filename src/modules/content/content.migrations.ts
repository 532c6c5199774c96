import type { SchemaMigration } from '../../storage/migrations/types.js';

/** Uploaded files' metadata (spaces-and-billing.md §10); the bytes live under DATA_DIR/content. */
export const contentMigrations: SchemaMigration[] = [
  {
    name: '0270-content-files',
    async up({ db, t }) {
      await db.schema
        .createTable('content_files')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('folder', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('size', t.bigint, (c) => c.notNull())
        .addColumn('etag', 'text', (c) => c.notNull())
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('content_files_pk', ['api_space_id', 'id'])
        .execute();
    },
  },
];
