import type { SchemaMigration } from '../../storage/migrations/types.js';

export const pnvMigrations: SchemaMigration[] = [
  {
    name: '0320_pnv_jobs',
    async up({ db, t }) {
      await db.schema
        .createTable('pnv_jobs')
        .addColumn('job_id', t.serial, (c) => c.primaryKey())
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'integer', (c) => c.notNull())
        .addColumn('filename', 'text', (c) => c.notNull())
        .addColumn('country_iso_code', 'text', (c) => c.notNull())
        .addColumn('phone_number_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('invalid_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('percent_complete', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('number_column', 'text', (c) => c.notNull())
        .addColumn('delimiter', 'text', (c) => c.notNull())
        .addColumn('has_header', 'integer', (c) => c.notNull())
        .addColumn('is_international', 'integer', (c) => c.notNull())
        .addColumn('status_flag', 'text', (c) => c.notNull())
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addColumn('updated_on', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('pnv_jobs_space').on('pnv_jobs').columns(['api_space_id', 'job_id']).execute();
    },
  },
];
