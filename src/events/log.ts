import type { Db, DialectName, Tx } from '../storage/db.js';
import type { EventRow } from '../storage/schema.js';
import { insertStatements, unnestInsert } from '../storage/raw.js';
import { fromJson, toJson } from '../storage/dialect.js';
import type { Uow } from '../storage/uow.js';
import type { Clock } from '../lib/clock.js';
import { iso } from '../lib/clock.js';
import type { EventBus } from './bus.js';

/** A domain event as written to the transactional event log. */
export interface DomainEvent {
  apiSpaceId: string;
  accountId: number;
  /** Catalogue name, e.g. `profile.update`, `message.delivered` (webhooks.md §5). */
  name: string;
  payload: unknown;
  /** `payload` already serialised, when the writer has its JSON at hand (stored instead of serialising it again). */
  payloadJson?: string;
  /** Envelope extras: revision, etag, conversationId, conversationEventId, profileId, actor… */
  meta?: Record<string, unknown>;
}

export interface StoredEvent extends DomainEvent {
  /** Log position (increasing; may have gaps from rolled-back transactions). */
  id: number;
  meta: Record<string, unknown>;
  createdOn: string;
}

const EVENT_COLUMNS = ['api_space_id', 'account_id', 'name', 'payload', 'meta', 'created_on'] as const satisfies ReadonlyArray<keyof EventRow>;

const EVENT_PG = { types: { account_id: 'integer' }, suffix: 'RETURNING id' };

/**
 * Bus channel on which every committed event is announced: its `StoredEvent` without the payload
 * (`payload` undefined, as `readAfter` with `payloads: false` gives it, meta included). Most
 * announcements wake a consumer or are dropped by one; the rare consumer that needs a payload reads
 * it from the log (`loadPayloads`). Serialising every payload for every other thread or process —
 * each message's status events, each profile of a bulk upsert — cost both sides CPU for nothing.
 */
export const EVENTS_CHANNEL = 'events';

export interface EventLog {
  /** Appends inside the caller's transaction; announced on the bus after commit. */
  append(uow: Uow, event: DomainEvent): Promise<number>;
  /** Appends many events with one statement (bulk writers); same semantics as `append`. */
  appendMany(uow: Uow, events: readonly DomainEvent[]): Promise<number[]>;
  /**
   * Events after `position`, oldest first (for durable consumers such as webhooks). With
   * `payloads: false` only ids, spaces, names and dates are read (payload undefined, meta empty):
   * a consumer that needs few of them reads those with `loadPayloads`.
   */
  readAfter(position: number, limit: number, ex?: Db | Tx, options?: { payloads: boolean }): Promise<StoredEvent[]>;
  /** Reads the payload and meta of events read without them (in place). */
  loadPayloads(list: StoredEvent[], ex?: Db | Tx): Promise<void>;
  /** `ex`: run on an open transaction (consumers that save their cursor with their own writes). */
  cursor(consumer: string, ex?: Db | Tx): Promise<number>;
  saveCursor(consumer: string, position: number, ex?: Db | Tx): Promise<void>;
  /** Hooks run after commit for each appended event (e.g. wake the webhook fan-out). */
  onAppended(fn: (event: StoredEvent) => void): void;
}

export function createEventLog(deps: { db: Db; dialect: DialectName; bus: EventBus; clock: Clock }): EventLog {
  const { db, dialect, bus, clock } = deps;
  const listeners: Array<(e: StoredEvent) => void> = [];
  const toStored = (r: { id: number; api_space_id: string; account_id: number; name: string; payload: unknown; meta: unknown; created_on: string }): StoredEvent => ({
    id: Number(r.id),
    apiSpaceId: r.api_space_id,
    accountId: r.account_id,
    name: r.name,
    payload: fromJson(r.payload),
    meta: fromJson<Record<string, unknown>>(r.meta) ?? {},
    createdOn: r.created_on,
  });
  async function appendMany(uow: Uow, list: readonly DomainEvent[]): Promise<number[]> {
    if (!list.length) return [];
    const createdOn = iso(clock.now());
    const rows: Array<Omit<EventRow, 'id'>> = list.map((event) => ({
      api_space_id: event.apiSpaceId, account_id: event.accountId, name: event.name,
      payload: event.payloadJson ?? toJson(event.payload), meta: toJson(event.meta ?? {}), created_on: createdOn,
    }));
    // Written directly (`storage/raw.ts`): every message state change appends. On PostgreSQL the
    // rows go as column arrays (1,000 events of a bulk upsert: ~40 ms as a VALUES list).
    const statements = dialect === 'postgres'
      ? [unnestInsert('events', EVENT_COLUMNS, rows, EVENT_PG)]
      : insertStatements(dialect, 'events', EVENT_COLUMNS, rows, 'RETURNING id');
    const ids: number[] = [];
    for (const q of statements) {
      for (const r of (await uow.tx.executeQuery<{ id: number }>(q)).rows) ids.push(Number(r.id));
    }
    // Ids are assigned in row order, statement after statement; RETURNING order is not promised.
    ids.sort((a, b) => a - b);
    // Built member by member: on Node 20 a spread followed by keys the source lacks (`{ ...e, id }`)
    // costs microseconds per object (docs/adr/0006-one-api-hot-path.md, "Spreads").
    const stored = list.map((e, j): StoredEvent => ({ apiSpaceId: e.apiSpaceId, accountId: e.accountId, name: e.name, payload: e.payload, meta: e.meta ?? {}, id: ids[j]!, createdOn }));
    uow.afterCommit(() => {
      for (const e of stored) {
        bus.publish(EVENTS_CHANNEL, { id: e.id, apiSpaceId: e.apiSpaceId, accountId: e.accountId, name: e.name, payload: undefined, meta: e.meta, createdOn: e.createdOn } satisfies StoredEvent);
        for (const l of listeners) l(e);
      }
    });
    return ids;
  }

  return {
    async append(uow, event) {
      const [id] = await appendMany(uow, [event]);
      return id!;
    },
    appendMany,
    async readAfter(position, limit, ex = db, options = { payloads: true }) {
      if (options.payloads) {
        const rows = await ex.selectFrom('events').selectAll().where('id', '>', position).orderBy('id').limit(limit).execute();
        return rows.map(toStored);
      }
      const rows = await ex.selectFrom('events').select(['id', 'api_space_id', 'account_id', 'name', 'created_on']).where('id', '>', position).orderBy('id').limit(limit).execute();
      return rows.map((r) => ({ id: Number(r.id), apiSpaceId: r.api_space_id, accountId: r.account_id, name: r.name, payload: undefined, meta: {}, createdOn: r.created_on }));
    },
    async loadPayloads(list, ex = db) {
      const byId = new Map(list.map((e) => [e.id, e]));
      const ids = [...byId.keys()];
      for (let i = 0; i < ids.length; i += 500) {
        for (const r of await ex.selectFrom('events').select(['id', 'payload', 'meta']).where('id', 'in', ids.slice(i, i + 500)).execute()) {
          const e = byId.get(Number(r.id))!;
          e.payload = fromJson(r.payload);
          e.meta = fromJson<Record<string, unknown>>(r.meta) ?? {};
        }
      }
    },
    async cursor(consumer, ex = db) {
      const row = await ex.selectFrom('event_cursors').select('position').where('consumer', '=', consumer).executeTakeFirst();
      return row ? Number(row.position) : 0;
    },
    async saveCursor(consumer, position, ex = db) {
      const updated_on = iso(clock.now());
      await ex
        .insertInto('event_cursors')
        .values({ consumer, position, updated_on })
        .onConflict((oc) => oc.column('consumer').doUpdateSet({ position, updated_on }))
        .execute();
    },
    onAppended(fn) {
      listeners.push(fn);
    },
  };
}
