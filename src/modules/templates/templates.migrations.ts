import { auditColumns, type SchemaMigration } from '../../storage/migrations/types.js';

/** Message templates (one-api.md §3.10), soft-deleted. */
export const templatesMigrations: SchemaMigration[] = [
  {
    name: '0260-templates',
    async up({ db, t }) {
      await db.schema
        .createTable('templates')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('message_parts', t.json, (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .$call(auditColumns({ softDelete: true }))
        .addPrimaryKeyConstraint('templates_pk', ['api_space_id', 'id'])
        .execute();
    },
  },
];
