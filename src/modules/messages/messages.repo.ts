/**
 * Message storage: row types, the resource mapping, bulk insert, and `mutate` — the one way a
 * message changes after acceptance (read, compute, compare-and-set on `revision`, append the
 * `message.*` events and enqueue follow-up jobs in the same transaction).
 */
import { CompiledQuery } from 'kysely';
import type { Db, DialectName, Tx } from '../../storage/db.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import { deferInsert, valuesText } from '../../storage/raw.js';
import { etagFor } from '../../http/etag.js';
import { iso } from '../../lib/clock.js';
import { timeOrderedUuid } from '../../lib/ids.js';
import type { NewJob } from '../../delivery/queue.js';
import type { ModuleContext } from '../module.js';
import type { Uow } from '../../storage/uow.js';
import type { DomainEvent } from '../../events/log.js';
import { eventName, eventPayload, type DispatchState, type StatusDetails } from './lifecycle.js';

export interface MessageRow {
  api_space_id: string;
  id: string;
  status: string;
  revision: number;
  profile_id: string | null;
  channel_id: string | null;
  conversation_id: string | null;
  provider_message_id: string | null;
  request: unknown;
  status_details: unknown;
  state: unknown;
  rendered: unknown;
  expires_at: number | null;
  submitted_at: number;
  sender_profile_id: string | null;
  deleted: number;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
}

export interface InboundRow {
  api_space_id: string;
  id: string;
  channel: string;
  profile_id: string | null;
  status: string;
  revision: number;
  doc: unknown;
  received_at: number;
}

export interface RuleSetRow {
  api_space_id: string;
  id: string;
  name: string;
  doc: unknown;
  revision: number;
}

export interface ProviderRefRow {
  api_space_id: string;
  channel: string;
  provider_message_id: string;
  message_id: string;
}

export interface ChannelWindowRow {
  api_space_id: string;
  profile_id: string;
  channel: string;
  last_inbound_at: number;
}

declare module '../../storage/schema.js' {
  interface Database {
    messages: MessageRow;
    inbound_messages: InboundRow;
    rule_sets: RuleSetRow;
    channel_windows: ChannelWindowRow;
    message_provider_refs: ProviderRefRow;
  }
}

/** A message as loaded: row plus parsed JSON columns. */
export interface Message {
  row: MessageRow;
  request: Record<string, any>;
  details: StatusDetails;
  state: DispatchState;
}

export const parse = (row: MessageRow): Message => ({
  row,
  request: fromJson<Record<string, any>>(row.request),
  details: fromJson<StatusDetails>(row.status_details) ?? {},
  state: fromJson<DispatchState>(row.state),
});

/** The `Message` resource (one-api.md §3.1, §3.3). */
export function toResource(m: Message): Record<string, unknown> {
  const { row } = m;
  const { channelStatus: _cs, ...details } = m.details;
  return {
    messageId: row.id,
    // The conversation an appMessaging send created is the message's from then on (§2.5.2).
    ...(row.conversation_id && m.request.conversationId === undefined ? { conversationId: row.conversation_id } : {}),
    ...m.request,
    ...(row.sender_profile_id ? { senderProfileId: row.sender_profile_id } : {}),
    sentOn: row.created_on,
    status: row.status,
    statusDetails: details,
    _createdOn: row.created_on,
    _createdBy: row.created_by,
    _updatedOn: row.updated_on,
    _updatedBy: row.updated_by,
  };
}

export const etagOf = (m: Message): string => etagFor(m.row.revision, toResource(m));

/**
 * The metadata as sent (one-api.md §2.5.4): with merge fields substituted once a channel took the
 * message (`rendered`, parsed), as the request wrote it before that.
 */
export function sentMetadata(rendered: unknown, request: Record<string, unknown>): unknown {
  const substituted = (rendered as { metadata?: unknown } | null | undefined)?.metadata;
  return substituted !== undefined ? substituted : request.metadata;
}

/** Message ids keep the UUID v4 form (conventions.md §5) but lead with the time (`timeOrderedUuid`). */
export const messageId = timeOrderedUuid;

const READ_CHUNK = 500;
const COLUMNS = [
  'api_space_id', 'id', 'status', 'revision', 'profile_id', 'channel_id', 'conversation_id', 'provider_message_id', 'request', 'status_details', 'state',
  'rendered', 'expires_at', 'submitted_at', 'sender_profile_id', 'deleted', 'created_on', 'created_by', 'updated_on', 'updated_by',
] as const satisfies ReadonlyArray<keyof MessageRow>;

/**
 * Message inserts, written at the end of the caller's transaction with the rows other units of a
 * group commit defer (multi-row statements, `storage/raw.ts`).
 */
export function deferMessages(uow: Uow, dialect: DialectName, rows: MessageRow[]): void {
  deferInsert(uow, dialect, 'messages', COLUMNS, rows);
}

/** Several messages of one space in one read (chunks of 500 ids). */
export async function loadMessages(ex: Db | Tx, apiSpaceId: string, ids: readonly string[]): Promise<Map<string, Message>> {
  const out = new Map<string, Message>();
  for (let i = 0; i < ids.length; i += READ_CHUNK) {
    const rows = await ex.selectFrom('messages').selectAll().where('api_space_id', '=', apiSpaceId).where('id', 'in', ids.slice(i, i + READ_CHUNK)).execute();
    for (const row of rows) out.set(row.id, parse(row));
  }
  return out;
}

export async function loadMessage(ex: Db | Tx, apiSpaceId: string, id: string): Promise<Message | undefined> {
  const row = await ex.selectFrom('messages').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
  return row ? parse(row) : undefined;
}

export interface MessageEvent {
  status: string;
  channel: string | null;
  failureReason?: string;
  errorCode?: string;
  channelDetails?: Record<string, unknown>;
  /** When the channel reported the status (a receipt's `timestamp`); the write time otherwise. */
  statusOn?: string;
  /** The metadata as sent, when the change does not carry it in `rendered` (merge fields substituted). */
  metadata?: unknown;
}

/** What one `mutate` step writes; return `undefined` from the step to write nothing. */
export interface Change {
  status?: string;
  details?: StatusDetails;
  state?: DispatchState;
  channelId?: string | null;
  providerMessageId?: string | null;
  profileId?: string | null;
  senderProfileId?: string | null;
  /** The conversation a channel created for the message (appMessaging without `conversationId`). */
  conversationId?: string;
  rendered?: unknown;
  request?: Record<string, unknown>;
  deleted?: boolean;
  events?: MessageEvent[];
  jobs?: NewJob[];
  actor?: string;
  /** Records the provider's id of an accepted attempt (receipt look-up). */
  providerRef?: { channel: string; providerMessageId: string };
  /** More work in the same transaction (a dispatch job completing itself with the change). */
  also?: (tx: Tx) => Promise<void>;
}

export class ConcurrentUpdate extends Error {}

export interface MutationItem {
  apiSpaceId: string;
  id: string;
  step: (m: Message) => { change?: Change; result: unknown };
  /** A copy the caller just read, tried first; the revision check catches any change since. */
  known?: Message;
}

export interface Mutator {
  /**
   * Applies `step` to the current message in one transaction; retried on a concurrent write.
   * Resolves to the step's result and the message after the write (or as read when no change).
   */
  mutate<R>(apiSpaceId: string, id: string, step: (m: Message) => { change?: Change; result: R }, known?: Message): Promise<{ result: R; message: Message } | undefined>;
  /**
   * Applies every item's step in ONE transaction (rows written in id order), then `also` in the
   * same transaction. A step whose copy is stale is re-run on the row read inside the
   * transaction. Any error rolls back every item; callers fall back to `mutate` one by one.
   */
  mutateAll(items: MutationItem[], also?: (tx: Tx, uow: Uow) => Promise<void>): Promise<void>;
}

/** `missing`: called once when a message is not found; true when it now exists (batches.ts). */
export function createMutator(ctx: ModuleContext, hooks: { missing?: (apiSpaceId: string, id: string) => Promise<boolean> } = {}): Mutator {
  const accountOf = async (apiSpaceId: string) => (await ctx.services.spaces.get(apiSpaceId))?.accountId ?? 0;

  /** The columns `change` writes over `m` (only the changed ones; JSON serialised once), and the result. */
  function prepareWrite(m: Message, change: Change): { set: Partial<MessageRow>; next: Message } {
    const set: Partial<MessageRow> = { revision: m.row.revision + 1, updated_on: iso(ctx.clock.now()), updated_by: change.actor ?? 'system' };
    if (change.status !== undefined) set.status = change.status;
    if (change.details !== undefined) set.status_details = toJson(change.details);
    if (change.state !== undefined) set.state = toJson(change.state);
    if (change.channelId !== undefined) set.channel_id = change.channelId;
    if (change.providerMessageId !== undefined) set.provider_message_id = change.providerMessageId;
    if (change.profileId !== undefined) set.profile_id = change.profileId;
    if (change.senderProfileId !== undefined) set.sender_profile_id = change.senderProfileId;
    if (change.conversationId !== undefined) set.conversation_id = change.conversationId;
    if (change.rendered !== undefined) set.rendered = toJson(change.rendered);
    if (change.request !== undefined) set.request = toJson(change.request);
    if (change.deleted) set.deleted = 1;
    const row: MessageRow = { ...m.row, ...set };
    return { set, next: { row, request: change.request ?? m.request, details: change.details ?? m.details, state: change.state ?? m.state } };
  }

  /** The `message.*` events of a written change, payloads serialised (built before its transaction where possible). */
  function eventsOf(accountId: number, m: Message, next: Message, change: Change): DomainEvent[] {
    if (!change.events?.length) return [];
    const { row } = next;
    const etag = etagOf(next);
    const metadata = sentMetadata(change.rendered !== undefined ? change.rendered : fromJson(m.row.rendered), next.request);
    return change.events.map((e): DomainEvent => {
      // What the accepting send reported stays in a receipt's `additionalInfo` (provider id, HTTP status…).
      const sent = e.channel ? m.details.channelStatus?.[e.channel]?.details : undefined;
      const payload = eventPayload({
        messageId: row.id, status: e.status, channel: e.channel, to: next.request.to ?? {}, conversationId: row.conversation_id ?? undefined,
        metadata: e.metadata !== undefined ? e.metadata : metadata, updatedOn: row.updated_on, statusOn: e.statusOn, failureReason: e.failureReason, errorCode: e.errorCode,
        channelDetails: e.channelDetails, sentDetails: sent as Record<string, unknown> | undefined, channelData: e.channel ? next.state.channelData?.[e.channel] : undefined,
      });
      return { apiSpaceId: row.api_space_id, accountId, name: eventName(e.status), payload, payloadJson: toJson(payload), meta: { revision: row.revision, etag } };
    });
  }

  /** What a written change brings with it in the same transaction besides its events: follow-up jobs, the provider reference, and `also`. */
  async function sideEffects(uow: Uow, next: Message, change: Change): Promise<void> {
    for (const job of change.jobs ?? []) await ctx.queue.enqueue(uow, job);
    if (change.providerRef) {
      await uow.tx.insertInto('message_provider_refs')
        .values({ api_space_id: next.row.api_space_id, channel: change.providerRef.channel, provider_message_id: change.providerRef.providerMessageId, message_id: next.row.id })
        .onConflict((oc) => oc.doNothing()).execute();
    }
    await change.also?.(uow.tx);
  }

  /**
   * What a written change brings with it in the same transaction: its `message.*` events (into
   * `events` when the caller appends a group's events together) and its side effects.
   */
  async function afterWrite(uow: Uow, accountId: number, m: Message, next: Message, change: Change, events?: DomainEvent[]): Promise<void> {
    for (const event of eventsOf(accountId, m, next, change)) {
      if (events) events.push(event);
      else await ctx.events.append(uow, event);
    }
    await sideEffects(uow, next, change);
  }

  /**
   * Writes `change` over `m` (compare-and-set on revision); undefined when the row moved on.
   * Dispatch writes one row per message sent, so only the changed columns are written.
   */
  async function write(uow: Uow, accountId: number, apiSpaceId: string, id: string, m: Message, change: Change, events?: DomainEvent[]): Promise<Message | undefined> {
    const { set, next } = prepareWrite(m, change);
    const res = await uow.tx.executeQuery(updateStatement(ctx.handle.dialect, [{ set, apiSpaceId, id, revision: m.row.revision }]));
    if (res.rows.length !== 1) return undefined;
    await afterWrite(uow, accountId, m, next, change, events);
    return next;
  }

  /**
   * Several changes at once: one UPDATE per set of changed columns (a dispatch group writes the
   * same columns for every message), each row still guarded by its revision. Planned before the
   * transaction (`planMany`: the rows, statements and events, JSON included), so that the write
   * lock is held only for the statements — on SQLite an API process or thread waits for it.
   */
  interface Planned { it: MutationItem; change: Change; next: Message; events: DomainEvent[] }
  type Plan = Array<{ list: Planned[]; statements: CompiledQuery[] }>;
  function planMany(accounts: Map<string, number>, items: Array<{ it: MutationItem; m: Message; change: Change }>): Plan {
    const byColumns = new Map<string, { list: Planned[]; rows: Array<{ set: Partial<MessageRow>; apiSpaceId: string; id: string; revision: number }> }>();
    for (const x of items) {
      const { set, next } = prepareWrite(x.m, x.change);
      const key = Object.keys(set).join();
      let cols = byColumns.get(key);
      if (!cols) byColumns.set(key, (cols = { list: [], rows: [] }));
      cols.list.push({ it: x.it, change: x.change, next, events: eventsOf(accounts.get(x.it.apiSpaceId)!, x.m, next, x.change) });
      cols.rows.push({ set, apiSpaceId: x.it.apiSpaceId, id: x.it.id, revision: x.m.row.revision });
    }
    return [...byColumns.values()].map(({ list, rows }) => {
      const statements: CompiledQuery[] = [];
      for (let i = 0; i < rows.length; i += UPDATE_CHUNK) statements.push(updateStatement(ctx.handle.dialect, rows.slice(i, i + UPDATE_CHUNK)));
      return { list, statements };
    });
  }

  /** Runs a plan; returns the items whose row moved on since their copy was read (the caller re-reads and retries those). */
  async function writeMany(uow: Uow, plan: Plan, events: DomainEvent[]): Promise<MutationItem[]> {
    const stale: MutationItem[] = [];
    for (const { list, statements } of plan) {
      const written = new Set<string>();
      for (const q of statements) {
        for (const r of (await uow.tx.executeQuery<{ api_space_id: string; id: string }>(q)).rows) written.add(`${r.api_space_id}:${r.id}`);
      }
      for (const x of list) {
        if (!written.has(`${x.it.apiSpaceId}:${x.it.id}`)) stale.push(x.it);
        else {
          for (const e of x.events) events.push(e);
          await sideEffects(uow, x.next, x.change);
        }
      }
    }
    return stale;
  }

  return {
    async mutate(apiSpaceId, id, step, known) {
      // Resolved before the transaction: on SQLite a read outside `uow.tx` would wait for the
      // connection the transaction holds.
      const accountId = await accountOf(apiSpaceId);
      let looked = false;
      for (let attempt = 0; attempt < 8; attempt++) {
        try {
          const done = await ctx.transaction(async (uow) => {
            // A copy the caller just read is tried first; the revision check catches any change since.
            const m = attempt === 0 && known ? known : await loadMessage(uow.tx, apiSpaceId, id);
            if (!m) return undefined;
            const { change, result } = step(m);
            if (!change) return { result, message: m };
            const next = await write(uow, accountId, apiSpaceId, id, m, change);
            if (!next) throw new ConcurrentUpdate();
            return { result, message: next };
          });
          if (done || looked || !hooks.missing) return done;
          looked = true;
          if (!(await hooks.missing(apiSpaceId, id))) return done;
        } catch (err) {
          if (!(err instanceof ConcurrentUpdate)) throw err;
        }
      }
      throw new Error(`message ${id}: too many concurrent updates`);
    },
    async mutateAll(items, also) {
      const accounts = new Map<string, number>();
      for (const it of items) if (!accounts.has(it.apiSpaceId)) accounts.set(it.apiSpaceId, await accountOf(it.apiSpaceId));
      const ordered = [...items].sort((a, b) => (a.apiSpaceId + a.id < b.apiSpaceId + b.id ? -1 : a.apiSpaceId + a.id > b.apiSpaceId + b.id ? 1 : 0));
      // Steps over the copies the callers read, written together; the rest one by one below.
      const first: Array<{ it: MutationItem; m: Message; change: Change }> = [];
      const single: MutationItem[] = [];
      for (const it of ordered) {
        if (!it.known) single.push(it);
        else {
          const { change } = it.step(it.known);
          if (change) first.push({ it, m: it.known, change });
        }
      }
      const plan = planMany(accounts, first);
      await ctx.transaction(async (uow) => {
        const events: DomainEvent[] = [];
        const stale = first.length ? await writeMany(uow, plan, events) : [];
        for (const it of [...single, ...stale]) {
          let written = false;
          for (let attempt = 0; attempt < 8 && !written; attempt++) {
            const m = await loadMessage(uow.tx, it.apiSpaceId, it.id);
            if (!m) break;
            const { change } = it.step(m);
            if (!change) break;
            written = !!(await write(uow, accounts.get(it.apiSpaceId)!, it.apiSpaceId, it.id, m, change, events));
            if (!written && attempt === 7) throw new Error(`message ${it.id}: too many concurrent updates`);
          }
        }
        if (events.length) await ctx.events.appendMany(uow, events);
        await also?.(uow.tx, uow);
      });
    },
  };
}

/** Rows per multi-row UPDATE (13 parameters each at most: far below both databases' limits). */
const UPDATE_CHUNK = 100;
/**
 * PostgreSQL types of the columns a change writes that are not text (parameters in a VALUES list
 * need them); the JSON columns are text (migration 0205).
 */
const PG_TYPES: Partial<Record<keyof MessageRow, string>> = { revision: 'integer', deleted: 'integer' };

/**
 * `UPDATE messages SET <cols> = v.<cols> FROM (VALUES …) v WHERE <key> = v.<key> AND revision =
 * v.revision RETURNING api_space_id, id`, written directly (hot path): one row, or several that
 * all change the same columns, each guarded by its own revision; the returned keys are the rows
 * written.
 */
function updateStatement(dialect: DialectName, rows: Array<{ set: Partial<MessageRow>; apiSpaceId: string; id: string; revision: number }>): CompiledQuery {
  const cols = Object.keys(rows[0]!.set) as Array<keyof MessageRow>;
  const params: unknown[] = [];
  for (const r of rows) {
    params.push(r.apiSpaceId, r.id, r.revision);
    for (const c of cols) params.push(r.set[c]);
  }
  const tuples = valuesText(dialect, rows.length, cols.length + 3, ['text', 'text', 'integer', ...cols.map((c) => PG_TYPES[c] ?? 'text')]);
  if (dialect === 'postgres') {
    const names = ['k_space', 'k_id', 'k_rev', ...cols].join(', ');
    const assignments = cols.map((c) => `${c} = v.${c}`).join(', ');
    return CompiledQuery.raw(`UPDATE messages AS m SET ${assignments} FROM (VALUES ${tuples}) AS v(${names}) WHERE m.api_space_id = v.k_space AND m.id = v.k_id AND m.revision = v.k_rev RETURNING m.api_space_id, m.id`, params);
  }
  const assignments = cols.map((c, i) => `${c} = v.column${i + 4}`).join(', ');
  return CompiledQuery.raw(`UPDATE messages SET ${assignments} FROM (VALUES ${tuples}) AS v WHERE messages.api_space_id = v.column1 AND messages.id = v.column2 AND messages.revision = v.column3 RETURNING messages.api_space_id, messages.id`, params);
}
