import { sql } from 'kysely';
import type { Platform } from '../../platform.js';
import type { Tx } from '../../storage/db.js';
import { fromJson } from '../../storage/dialect.js';
import { iso } from '../../lib/clock.js';
import type { AttemptRow, DeliveryRow, WebhookRow } from './webhooks.migrations.js';

/** 1 first attempt + 17 retries (webhooks.md §4.3). */
export const MAX_ATTEMPTS = 18;
/** Completed deliveries (dead letters included) are kept this long (webhooks.md §4.3). */
export const KEEP_MS = 7 * 24 * 3600_000;

export interface NewDelivery {
  id: string;
  apiSpaceId: string;
  webhookId: string;
  seq: number;
  events: Array<{ eventId: string; name: string }>;
  body: string;
  now: number;
}

export interface Completion {
  delivery: DeliveryRow;
  attempt: number;
  startedAt: number;
  durationMs: number;
  status: number | null;
  error: string | null;
  /** Final state, or `pending` with `retryAt`. */
  state: 'succeeded' | 'dropped' | 'dead' | 'pending';
  retryAt?: number;
}

export function deliveryView(d: DeliveryRow, attempts: AttemptRow[]) {
  const rows = attempts.filter((a) => a.delivery_id === d.id);
  if (d.last_attempt_at !== null && d.attempts > 0 && !rows.some((a) => a.attempt === d.attempts)) {
    rows.push({
      delivery_id: d.id, attempt: d.attempts, api_space_id: d.api_space_id, webhook_id: d.webhook_id, started_at: Number(d.last_attempt_at),
      duration_ms: d.last_duration_ms ?? 0, status_code: d.last_status, error: d.last_error, outcome: d.state === 'pending' ? 'retry' : d.state,
    });
  }
  return {
    id: d.id,
    state: d.state,
    events: fromJson<Array<{ eventId: string; name: string }>>(d.events),
    attempts: d.attempts,
    nextAttemptOn: d.state === 'pending' ? iso(Number(d.next_attempt_at)) : null,
    lastStatusCode: d.last_status,
    lastError: d.last_error,
    createdOn: iso(Number(d.created_at)),
    completedOn: d.completed_at === null ? null : iso(Number(d.completed_at)),
    history: rows
      .sort((a, b) => a.attempt - b.attempt)
      .map((a) => ({ attempt: a.attempt, startedOn: iso(Number(a.started_at)), durationMs: a.duration_ms, statusCode: a.status_code, error: a.error, outcome: a.outcome })),
  };
}

export type DeliveriesRepo = ReturnType<typeof createDeliveriesRepo>;

/** The per-webhook delivery table is the queue: claimed by lease, completed in batches. */
export function createDeliveriesRepo(p: Platform) {
  const { db } = p;
  const pg = p.handle.dialect === 'postgres';

  return {
    async insert(tx: Tx, rows: NewDelivery[]): Promise<void> {
      // One small statement per 2000 rows whatever their number (values as arrays / one JSON
      // array): building and planning a 200-row VALUES list cost more than the insert itself.
      // state, attempts, max_attempts (MAX_ATTEMPTS) and the nullable columns take their defaults.
      for (let i = 0; i < rows.length; i += 2000) {
        const chunk = rows.slice(i, i + 2000);
        if (pg) {
          const col = <T>(f: (d: NewDelivery) => T) => chunk.map(f);
          await sql`INSERT INTO webhook_deliveries (id, api_space_id, webhook_id, seq, events, body, next_attempt_at, created_at, updated_at)
            SELECT id, api_space_id, webhook_id, seq, events::jsonb, body, at, at, at
            FROM unnest(${col((d) => d.id)}::text[], ${col((d) => d.apiSpaceId)}::text[], ${col((d) => d.webhookId)}::text[], ${col((d) => d.seq)}::bigint[],
              ${col((d) => JSON.stringify(d.events))}::text[], ${col((d) => d.body)}::text[], ${col((d) => d.now)}::bigint[])
              AS v(id, api_space_id, webhook_id, seq, events, body, at)`.execute(tx);
        } else {
          const json = JSON.stringify(chunk.map((d) => [d.id, d.apiSpaceId, d.webhookId, d.seq, JSON.stringify(d.events), d.body, d.now]));
          await sql`INSERT INTO webhook_deliveries (id, api_space_id, webhook_id, seq, events, body, next_attempt_at, created_at, updated_at)
            SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 6, value ->> 6
            FROM json_each(${json})`.execute(tx);
        }
      }
    },

    /**
     * Leases up to `want` due deliveries of one live webhook, in order. The webhook row is locked
     * for the claim (PostgreSQL), so claims for one webhook are serialised across processes; while
     * another process holds leases on the webhook this one claims nothing (its lane is elsewhere),
     * which keeps the per-webhook cap exact.
     */
    async claim(webhookId: string, owner: string, want: number, leaseMs: number, now: number): Promise<{ webhook: WebhookRow; rows: DeliveryRow[] } | undefined> {
      return db.transaction().execute(async (tx) => {
        const webhook = await tx.selectFrom('webhooks').selectAll().where('id', '=', webhookId).where('deleted_on', 'is', null)
          .$if(pg, (q) => q.forUpdate()).executeTakeFirst();
        if (!webhook) return undefined;
        if (want <= 0) return { webhook, rows: [] };
        const due = tx.selectFrom('webhook_deliveries').select('id')
          .where('webhook_id', '=', webhookId).where('state', '=', 'pending').where('next_attempt_at', '<=', now)
          .orderBy('next_attempt_at').orderBy('seq').limit(want);
        const rows = await tx.updateTable('webhook_deliveries')
          .set({ state: 'in_flight', lease_owner: owner, lease_until: now + leaseMs, updated_at: now })
          .where('id', 'in', due)
          .where((eb) => eb.not(eb.exists(eb.selectFrom('webhook_deliveries as o').select('o.id')
            .where('o.webhook_id', '=', webhookId).where('o.state', '=', 'in_flight').where('o.lease_owner', '<>', owner).where('o.lease_until', '>=', now))))
          .returningAll().execute();
        rows.sort((a, b) => Number(a.next_attempt_at) - Number(b.next_attempt_at) || Number(a.seq) - Number(b.seq));
        return { webhook, rows };
      });
    },

    /** Records finished attempts in one transaction; rows whose lease was lost are left alone. */
    async complete(owner: string, items: Completion[], now: number): Promise<void> {
      if (!items.length) return;
      await db.transaction().execute(async (tx) => {
        // One statement for the whole group, whatever its size (no per-row statements or CASE
        // lists to build, parse and plan).
        if (pg) {
          // PostgreSQL: the values travel as 8 array parameters.
          for (let i = 0; i < items.length; i += 2000) {
            const chunk = items.slice(i, i + 2000);
            const col = <T>(f: (c: Completion) => T) => chunk.map(f);
            await sql`UPDATE webhook_deliveries AS d SET
                state = v.state, attempts = v.attempt, next_attempt_at = COALESCE(v.retry_at, d.next_attempt_at),
                last_status = v.status, last_error = v.error, last_attempt_at = v.started_at, last_duration_ms = v.duration_ms,
                lease_owner = NULL, lease_until = NULL, updated_at = ${now},
                completed_at = CASE WHEN v.state = 'pending' THEN d.completed_at ELSE ${now}::bigint END
              FROM unnest(${col((c) => c.delivery.id)}::text[], ${col((c) => c.state)}::text[], ${col((c) => c.attempt)}::int[],
                ${col((c) => c.status)}::int[], ${col((c) => c.error)}::text[], ${col((c) => c.startedAt)}::bigint[],
                ${col((c) => c.durationMs)}::int[], ${col((c) => (c.state === 'pending' ? c.retryAt! : null))}::bigint[])
                AS v(id, state, attempt, status, error, started_at, duration_ms, retry_at)
              WHERE d.id = v.id AND d.state = 'in_flight' AND d.lease_owner = ${owner}`.execute(tx);
          }
        } else {
          // SQLite: the same single statement, the values as one JSON array read by json_each.
          for (let i = 0; i < items.length; i += 2000) {
            const rows = JSON.stringify(items.slice(i, i + 2000).map((c) => [c.delivery.id, c.state, c.attempt, c.status, c.error, c.startedAt, c.durationMs, c.state === 'pending' ? c.retryAt! : null]));
            await sql`UPDATE webhook_deliveries SET
                state = v.state, attempts = v.attempt, next_attempt_at = COALESCE(v.retry_at, webhook_deliveries.next_attempt_at),
                last_status = v.status, last_error = v.error, last_attempt_at = v.started_at, last_duration_ms = v.duration_ms,
                lease_owner = NULL, lease_until = NULL, updated_at = ${now},
                completed_at = CASE WHEN v.state = 'pending' THEN webhook_deliveries.completed_at ELSE ${now} END
              FROM (SELECT value ->> 0 AS id, value ->> 1 AS state, value ->> 2 AS attempt, value ->> 3 AS status, value ->> 4 AS error,
                      value ->> 5 AS started_at, value ->> 6 AS duration_ms, value ->> 7 AS retry_at FROM json_each(${rows})) AS v
              WHERE webhook_deliveries.id = v.id AND webhook_deliveries.state = 'in_flight' AND webhook_deliveries.lease_owner = ${owner}`.execute(tx);
          }
        }
        // A success is fully described by the delivery row; only the other outcomes get a row.
        const attempts: AttemptRow[] = items.filter((c) => c.state !== 'succeeded').map((c) => ({
          delivery_id: c.delivery.id, attempt: c.attempt, api_space_id: c.delivery.api_space_id, webhook_id: c.delivery.webhook_id,
          started_at: c.startedAt, duration_ms: c.durationMs, status_code: c.status, error: c.error,
          outcome: c.state === 'pending' ? 'retry' : c.state,
        }));
        for (let i = 0; i < attempts.length; i += 200) {
          await tx.insertInto('webhook_attempts').values(attempts.slice(i, i + 200)).onConflict((oc) => oc.doNothing()).execute();
        }
      });
    },

    /** Gives leased but unsent deliveries back (graceful stop). */
    async release(owner: string, ids: string[]): Promise<void> {
      if (!ids.length) return;
      await db.updateTable('webhook_deliveries').set({ state: 'pending', lease_owner: null, lease_until: null })
        .where('id', 'in', ids).where('state', '=', 'in_flight').where('lease_owner', '=', owner).execute();
    },

    /** Leases of crashed processes expire: their deliveries become due again. */
    async reclaimExpired(now: number): Promise<number> {
      const res = await db.updateTable('webhook_deliveries').set({ state: 'pending', lease_owner: null, lease_until: null, updated_at: now })
        .where('state', '=', 'in_flight').where('lease_until', '<', now).executeTakeFirst();
      return Number(res.numUpdatedRows);
    },

    /** Earliest pending delivery per live webhook (one index probe each). */
    async dueByWebhook(): Promise<Array<{ id: string; due: number }>> {
      const rows = await db.selectFrom('webhooks as w')
        .select(['w.id', (eb) => eb.selectFrom('webhook_deliveries as d').select((e) => e.fn.min('d.next_attempt_at').as('m'))
          .whereRef('d.webhook_id', '=', 'w.id').where('d.state', '=', 'pending').as('due')])
        .where('w.deleted_on', 'is', null).execute();
      return rows.filter((r) => r.due !== null && r.due !== undefined).map((r) => ({ id: r.id, due: Number(r.due) }));
    },

    async cancelAll(tx: Tx, webhookId: string, now: number): Promise<void> {
      await tx.updateTable('webhook_deliveries').set({ state: 'cancelled', lease_owner: null, lease_until: null, updated_at: now, completed_at: now })
        .where('webhook_id', '=', webhookId).where('state', 'in', ['pending', 'in_flight']).execute();
      await tx.deleteFrom('webhook_batch_items').where('webhook_id', '=', webhookId).execute();
    },

    /** Deletes finished deliveries older than KEEP_MS, webhook by webhook (through the `recent` index). */
    async purge(now: number): Promise<void> {
      const hooks = await db.selectFrom('webhooks').select('id').execute();
      for (const { id } of hooks) {
        const old = db.selectFrom('webhook_deliveries').select('id').where('webhook_id', '=', id).where('created_at', '<', now - KEEP_MS)
          .where('state', 'not in', ['pending', 'in_flight']).where('completed_at', '<', now - KEEP_MS);
        await db.deleteFrom('webhook_attempts').where('delivery_id', 'in', old).execute();
        await db.deleteFrom('webhook_deliveries').where('id', 'in', old).execute();
      }
    },

    async get(webhookId: string, deliveryId: string): Promise<DeliveryRow | undefined> {
      return db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId).where('id', '=', deliveryId).executeTakeFirst();
    },

    async attemptsOf(deliveryIds: string[]): Promise<AttemptRow[]> {
      if (!deliveryIds.length) return [];
      return db.selectFrom('webhook_attempts').selectAll().where('delivery_id', 'in', deliveryIds).execute();
    },

    async recent(webhookId: string, opts: { limit: number; state?: string }) {
      let q = db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId).orderBy('created_at', 'desc').orderBy('seq', 'desc').limit(opts.limit);
      if (opts.state) q = q.where('state', '=', opts.state);
      const rows = await q.execute();
      const attempts = await this.attemptsOf(rows.map((r) => r.id));
      return rows.map((r) => deliveryView(r, attempts));
    },

    /** Manual retry: one more attempt now (a dead letter stays dead if it fails again). */
    async requeue(webhookId: string, deliveryId: string, attempts: number, now: number): Promise<void> {
      await db.updateTable('webhook_deliveries')
        .set({ state: 'pending', next_attempt_at: now, max_attempts: attempts + 1, completed_at: null, updated_at: now })
        .where('webhook_id', '=', webhookId).where('id', '=', deliveryId).where('state', 'not in', ['pending', 'in_flight']).execute();
    },

    /** The fan-out cursor row, locked for this transaction (PostgreSQL: skipped when another process holds it). */
    async lockCursor(tx: Tx, consumer: string): Promise<number | undefined> {
      if (!pg) return p.events.cursor(consumer, tx);
      const res = await sql<{ position: number }>`SELECT position FROM event_cursors WHERE consumer = ${consumer} FOR UPDATE SKIP LOCKED`.execute(tx);
      const r = res.rows[0];
      return r ? Number(r.position) : undefined;
    },
  };
}
