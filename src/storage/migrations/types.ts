import type { CreateTableBuilder, Kysely } from 'kysely';
import type { DialectName } from '../db.js';
import type { ColumnTypes } from '../dialect.js';

export interface MigrationContext {
  db: Kysely<any>;
  dialect: DialectName;
  t: ColumnTypes;
}

/**
 * One schema step for both dialects. Names sort in application order; each module owns a range:
 * 0001–0099 platform, 0100 profiles, 0200 One API, 0300 SMS/e-mail/verify/PNV, 0400 webhooks,
 * 0500 App Messaging, 0600 chat, 0700 billing/analytics/rules.
 */
export interface SchemaMigration {
  name: string;
  up(ctx: MigrationContext): Promise<void>;
}

/**
 * The audit columns of a tenant resource (conventions.md §7): created/updated on and by, plus
 * deleted on and by for soft-deleted resources. Use as `.$call(auditColumns({ softDelete: true }))`.
 */
export function auditColumns(options: { softDelete?: boolean } = {}) {
  return (table: CreateTableBuilder<any, any>): CreateTableBuilder<any, any> => {
    const audited = table
      .addColumn('created_on', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_on', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'text', (c) => c.notNull());
    return options.softDelete ? audited.addColumn('deleted_on', 'text').addColumn('deleted_by', 'text') : audited;
  };
}
