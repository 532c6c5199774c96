import { sql, type Generated } from 'kysely';
import { auditColumns, type SchemaMigration } from '../../storage/migrations/types.js';

export interface WebhookRow {
  id: string;
  api_space_id: string;
  account_id: number;
  name: string;
  url: string;
  /** Sealed with the installation's secret box; null when the webhook has no secret. */
  secret: string | null;
  /** The secret before the last change, signed with too until `previous_secret_until`. */
  previous_secret: string | null;
  previous_secret_until: number | null;
  subscriptions: unknown;
  /** Subscriptions before the last change, for events raised before it but fanned out after. */
  previous_subscriptions: unknown;
  subscriptions_changed_on: string | null;
  batch: number;
  max_batch_size: number;
  batch_timeout_ms: number;
  revision: number;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
  deleted_on: string | null;
  deleted_by: string | null;
}

/** One HTTP request to make: a single event, or a batch (webhooks.md §4). */
export interface DeliveryRow {
  // Columns with database defaults are left out of the fan-out's insert (fewer bound values).
  id: string;
  api_space_id: string;
  webhook_id: string;
  /** Log position of the (first) event: first attempts go out in this order. */
  seq: number;
  /** `[{eventId, name}]` of the events in the body. */
  events: unknown;
  /** The exact body bytes (UTF-8); retries resend them unchanged. */
  body: string;
  /** pending | in_flight | succeeded | dropped | dead | cancelled */
  state: string;
  attempts: number;
  max_attempts: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  last_status: number | null;
  last_error: string | null;
  /** Start and duration of the latest attempt (a first-attempt success has no attempts row). */
  last_attempt_at: number | null;
  last_duration_ms: number | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

export interface AttemptRow {
  delivery_id: string;
  attempt: number;
  api_space_id: string;
  webhook_id: string;
  started_at: number;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  /** succeeded | dropped | retry | dead */
  outcome: string;
}

export interface BatchItemRow {
  id: Generated<number>;
  api_space_id: string;
  webhook_id: string;
  seq: number;
  event_id: string;
  name: string;
  envelope: string;
  created_at: number;
}

/** Log positions skipped by the fan-out while they were invisible (PostgreSQL commit order). */
export interface FanoutHoleRow {
  seq: number;
  seen_at: number;
}

declare module '../../storage/schema.js' {
  interface Database {
    webhooks: WebhookRow;
    webhook_deliveries: DeliveryRow;
    webhook_attempts: AttemptRow;
    webhook_batch_items: BatchItemRow;
    webhook_fanout_holes: FanoutHoleRow;
  }
}

export const webhooksMigrations: SchemaMigration[] = [
  {
    name: '0400_webhooks',
    async up({ db, t, dialect }) {
      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('secret', 'text')
        .addColumn('previous_secret', 'text')
        .addColumn('previous_secret_until', t.bigint)
        .addColumn('subscriptions', t.json, (c) => c.notNull())
        .addColumn('previous_subscriptions', t.json)
        .addColumn('subscriptions_changed_on', 'text')
        .addColumn('batch', 'integer', (c) => c.notNull())
        .addColumn('max_batch_size', 'integer', (c) => c.notNull())
        .addColumn('batch_timeout_ms', t.bigint, (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .$call(auditColumns({ softDelete: true }))
        .execute();
      await db.schema.createIndex('webhooks_space').on('webhooks').columns(['api_space_id', 'deleted_on']).execute();

      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('webhook_id', 'text', (c) => c.notNull())
        .addColumn('seq', t.bigint, (c) => c.notNull())
        .addColumn('events', t.json, (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().defaultTo('pending'))
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(18))
        .addColumn('next_attempt_at', t.bigint, (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', t.bigint)
        .addColumn('last_status', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('last_attempt_at', t.bigint)
        .addColumn('last_duration_ms', 'integer')
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .addColumn('completed_at', t.bigint)
        .execute();
      // Claim: due pending deliveries of one webhook in order; the index answers it directly, so
      // a large backlog on one webhook costs nothing when claiming for another.
      await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['webhook_id', 'state', 'next_attempt_at', 'seq']).execute();
      await db.schema.createIndex('webhook_deliveries_recent').on('webhook_deliveries').columns(['webhook_id', 'created_at']).execute();
      // Partial: only rows in flight are indexed, so finishing a delivery touches fewer pages.
      await sql`CREATE INDEX webhook_deliveries_lease ON webhook_deliveries (lease_until) WHERE state = 'in_flight'`.execute(db);

      await db.schema
        .createTable('webhook_attempts')
        .addColumn('delivery_id', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('webhook_id', 'text', (c) => c.notNull())
        .addColumn('started_at', t.bigint, (c) => c.notNull())
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .addColumn('status_code', 'integer')
        .addColumn('error', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('webhook_attempts_pk', ['delivery_id', 'attempt'])
        .execute();

      await db.schema
        .createTable('webhook_batch_items')
        .addColumn('id', t.serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('webhook_id', 'text', (c) => c.notNull())
        .addColumn('seq', t.bigint, (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('envelope', 'text', (c) => c.notNull())
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhook_batch_items_hook').on('webhook_batch_items').columns(['webhook_id', 'id']).execute();

      await db.schema
        .createTable('webhook_fanout_holes')
        .addColumn('seq', t.bigint, (c) => c.primaryKey())
        .addColumn('seen_at', t.bigint, (c) => c.notNull())
        .execute();
    },
  },
];
