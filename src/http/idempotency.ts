/**
 * `Idempotency-Key` support (conventions.md §10), reusable by every route that accepts the header.
 *
 *   const guard = await idempotency.begin({ scope: apiSpaceId, route: 'messages.send', key, body });
 *   if (guard.replay) return reply.code(guard.replay.status).headers(guard.replay.headers)…
 *   try { result = await service.send(…, { within: (uow) => guard.complete(uow, 201, body, headers) }) }
 *   catch (err) { await guard.abandon(); throw err; }
 *
 * A key is claimed in its own small transaction (a unique constraint decides the winner, never a
 * check-then-insert); the response is recorded inside the work's own transaction, so a committed
 * request always has its replay stored. A claim whose worker died is taken over after its lease.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../storage/db.js';
import { isUniqueViolation, toJson, fromJson } from '../storage/dialect.js';
import type { Uow } from '../storage/uow.js';
import type { Clock } from '../lib/clock.js';
import type { SchemaMigration } from '../storage/migrations/types.js';
import { AppError, errors } from './errors.js';
import { canonicalJson } from './etag.js';

export interface IdempotencyKeyRow {
  scope: string;
  route: string;
  key: string;
  fingerprint: string;
  /** running | done */
  state: string;
  status: number | null;
  response: string | null;
  headers: string | null;
  lease_until: number;
  expires_at: number;
}

declare module '../storage/schema.js' {
  interface Database {
    idempotency_keys: IdempotencyKeyRow;
  }
}

/** Table migration; included by the messages module (first user), in the 0200 range. */
export const idempotencyMigration: SchemaMigration = {
  name: '0200_idempotency_keys',
  async up({ db, t }) {
    await db.schema
      .createTable('idempotency_keys')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('route', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('status', 'integer')
      .addColumn('response', 'text')
      .addColumn('headers', 'text')
      .addColumn('lease_until', t.bigint, (c) => c.notNull())
      .addColumn('expires_at', t.bigint, (c) => c.notNull())
      .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'route', 'key'])
      .execute();
    await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').columns(['expires_at']).execute();
  },
};

export interface StoredResponse {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export interface IdempotencyGuard {
  /** Set when the key was already used with the same body: answer this, with `Idempotent-Replayed: true`. */
  replay?: StoredResponse;
  /** Records the response inside the work's transaction (no-op without a key). */
  complete(uow: Uow, status: number, body: unknown, headers?: Record<string, string>): Promise<void>;
  /** Releases the claim after a failed request so a corrected retry may use the key. */
  abandon(): Promise<void>;
}

export interface Idempotency {
  begin(opts: { scope: string; route: string; key: string | undefined; body: unknown }): Promise<IdempotencyGuard>;
  /** Deletes expired keys (call from a periodic job). */
  purge(): Promise<number>;
}

const TTL_MS = 24 * 3600_000;
const LEASE_MS = 60_000;
const NOOP: IdempotencyGuard = { complete: async () => {}, abandon: async () => {} };

/** Reads and checks the header: 1–255 printable ASCII characters (400 otherwise). */
export function idempotencyKeyFrom(headers: Record<string, string | string[] | undefined>): string | undefined {
  const raw = headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const v = Array.isArray(raw) ? raw[0]! : raw;
  if (!/^[\x20-\x7e]{1,255}$/.test(v)) throw errors.invalidField('header.idempotency-key', 'Must be 1 to 255 printable ASCII characters');
  return v;
}

export function createIdempotency(deps: { db: Db; clock: Clock }): Idempotency {
  const { db, clock } = deps;
  const reused = () => new AppError(422, 'IdempotencyKeyReused', 'This Idempotency-Key was used with a different request body');
  const inProgress = () => new AppError(409, 'IdempotencyKeyInProgress', 'A request with this Idempotency-Key is still in progress', undefined, { 'Retry-After': '1' });

  return {
    async begin({ scope, route, key, body }) {
      if (key === undefined) return NOOP;
      const fingerprint = createHash('sha256').update(canonicalJson(body)).digest('base64url');
      const where = { scope, route, key };
      for (let attempt = 0; attempt < 3; attempt++) {
        const now = clock.now();
        try {
          await db.insertInto('idempotency_keys')
            .values({ ...where, fingerprint, state: 'running', status: null, response: null, headers: null, lease_until: now + LEASE_MS, expires_at: now + TTL_MS })
            .execute();
          return guardFor(where, fingerprint);
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
        }
        const row = await db.selectFrom('idempotency_keys').selectAll().where('scope', '=', scope).where('route', '=', route).where('key', '=', key).executeTakeFirst();
        if (!row) continue;
        if (Number(row.expires_at) <= now) {
          await db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('route', '=', route).where('key', '=', key).where('expires_at', '=', row.expires_at).execute();
          continue;
        }
        if (row.fingerprint !== fingerprint) throw reused();
        if (row.state === 'done') {
          return { ...NOOP, replay: { status: row.status ?? 200, body: row.response === null ? null : JSON.parse(row.response), headers: fromJson<Record<string, string>>(row.headers) ?? {} } };
        }
        if (Number(row.lease_until) > now) throw inProgress();
        // The first request's process died: take the claim over (compare-and-set on the lease).
        const took = await db.updateTable('idempotency_keys').set({ lease_until: now + LEASE_MS })
          .where('scope', '=', scope).where('route', '=', route).where('key', '=', key).where('state', '=', 'running').where('lease_until', '=', row.lease_until)
          .executeTakeFirst();
        if (Number(took.numUpdatedRows) === 1) return guardFor(where, fingerprint);
      }
      throw inProgress();
    },
    async purge() {
      const res = await db.deleteFrom('idempotency_keys').where('expires_at', '<', clock.now()).executeTakeFirst();
      return Number(res.numDeletedRows);
    },
  };

  function guardFor(where: { scope: string; route: string; key: string }, fingerprint: string): IdempotencyGuard {
    return {
      async complete(uow, status, body, headers = {}) {
        await uow.tx.updateTable('idempotency_keys')
          .set({ state: 'done', status, response: JSON.stringify(body ?? null), headers: toJson(headers) })
          .where('scope', '=', where.scope).where('route', '=', where.route).where('key', '=', where.key).where('fingerprint', '=', fingerprint)
          .execute();
      },
      // A committed request has state 'done', so this only ever removes an unfinished claim.
      async abandon() {
        await db.deleteFrom('idempotency_keys')
          .where('scope', '=', where.scope).where('route', '=', where.route).where('key', '=', where.key).where('state', '=', 'running')
          .execute().catch(() => {});
      },
    };
  }
}
