import { sql } from 'kysely';
import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import type { SpaceRef } from '../../auth/space-directory.js';
import type { ProfileDirectory } from '../profiles/profiles.contract.js';
import type { MessagesApi } from '../messages/messages.contract.js';
import type { Uow } from '../../storage/uow.js';
import { iso, parseDateTime } from '../../lib/clock.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import { AppError, errors, type ValidationFailure } from '../../http/errors.js';
import { FRAMES_CHANNEL, type Frame, type FrameDelivery } from '../../realtime/frames.js';
import type { AmConversationRow, AmEventRow, AmMessageRow } from './appmessaging.migrations.js';
import { amErrors } from './appmessaging.errors.js';
import { buildFrame, callerProfile, conversationView, isBound, nextEventId, participantIds, roleOf } from './conversations.model.js';
import type { ConversationsService } from './conversations.service.js';

export interface MessagePart {
  type?: string;
  name?: string;
  url?: string;
  data?: string;
  size?: number;
  [k: string]: unknown;
}

export interface MessageInput {
  parts: MessagePart[];
  metadata?: Record<string, unknown>;
  alert?: Record<string, unknown>;
  from?: { profileId: string; name?: string; avatarUrl?: string };
  direction?: 'inbound' | 'outbound';
}

export interface StatusUpdateInput {
  messageIds: string[];
  status: 'delivered' | 'read';
  timestamp?: string;
}

type StatusUpdates = Record<string, { status: 'delivered' | 'read'; on: string }>;
const RANK = { none: 0, delivered: 1, read: 2 } as const;
const MAX_METADATA = 16 * 1024;

export type ConversationMessagesService = ReturnType<typeof createMessagesService>;

/** Conversation messages, the event stream and status updates (app-messaging.md §5). */
export function createMessagesService(ctx: ModuleContext, deps: { profiles?: ProfileDirectory; conversations: ConversationsService; oneApi?: () => MessagesApi | undefined }) {
  const { db, clock, ids, bus, log } = ctx;
  const { profiles, conversations } = deps;

  async function lockConversation(uow: Uow, apiSpaceId: string, conversationId: string): Promise<void> {
    await uow.tx.updateTable('am_conversations').set({ last_event_id: sql`last_event_id` }).where('api_space_id', '=', apiSpaceId).where('id', '=', conversationId).execute();
  }

  function publish(uow: Uow, apiSpaceId: string, to: string[], f: Frame): void {
    if (to.length) uow.afterCommit(() => bus.publish(FRAMES_CHANNEL, { s: apiSpaceId, to, f } satisfies FrameDelivery));
  }

  const frameOf = (space: SpaceRef, e: AmEventRow): Frame => buildFrame({
    eventId: e.event_id, apiSpaceId: space.id, accountId: space.accountId, name: `conversationMessage.${e.name}`,
    conversationId: e.conversation_id, conversationEventId: Number(e.seq), payload: fromJson(e.payload), actor: e.created_by,
    createdOn: e.created_on, publishedOn: e.created_on,
  });

  const messageView = (m: AmMessageRow) => {
    const doc = fromJson<{ metadata: Record<string, unknown>; context: Record<string, unknown>; parts: Array<Record<string, unknown>>; alert?: Record<string, unknown> }>(m.doc);
    return {
      id: m.id, sentEventId: Number(m.sent_event_id), metadata: doc.metadata ?? {}, context: doc.context, parts: doc.parts,
      statusUpdates: fromJson<StatusUpdates>(m.status_updates) ?? {}, ...(doc.alert !== undefined ? { alert: doc.alert } : {}),
    };
  };

  function partProblems(parts: MessagePart[]): { parts: MessagePart[]; failures: ValidationFailure[] } {
    const failures: ValidationFailure[] = [];
    const out = parts.map((p, i) => {
      if (p.data === undefined && p.url === undefined) failures.push({ paramName: `parts[${i}]`, message: 'A part needs data or url' });
      return { ...p, type: p.type ?? (p.data !== undefined ? 'text/plain' : 'application/octet-stream') };
    });
    return { parts: out, failures };
  }

  /** Stores a message and its `sent` event; shared by the REST send and the One API channel. */
  async function store(space: SpaceRef, conv: AmConversationRow, p: {
    actor: string; from: { id: string; name?: string; avatarUrl?: string }; direction?: 'inbound' | 'outbound';
    parts: MessagePart[]; metadata: Record<string, unknown>; alert?: Record<string, unknown>; sourceMessageId?: string;
  }, uow: Uow): Promise<{ id: string; eventId: number }> {
    const now = iso(clock.now());
    const messageId = ids.uuid();
    const scope = conv.message_scope as 'a2p' | 'p2p';
    const context = {
      from: p.from, conversationId: conv.id, sentBy: p.actor, sentOn: now, scope,
      ...(scope === 'a2p' ? { direction: p.direction ?? 'inbound' } : {}),
    };
    const seq = await nextEventId(uow.tx, space.id, conv.id);
    const doc = { metadata: p.metadata, context, parts: p.parts, ...(p.alert !== undefined ? { alert: p.alert } : {}) };
    await uow.tx.insertInto('am_messages').values({
      api_space_id: space.id, conversation_id: conv.id, id: messageId, sent_event_id: seq, from_id: p.from.id, doc: toJson(doc),
      status_updates: toJson({}), source_message_id: p.sourceMessageId ?? null, sent_on: now,
    }).execute();
    const payload = { messageId, ...doc };
    const event: AmEventRow = {
      api_space_id: space.id, conversation_id: conv.id, seq, event_id: ids.uuid(), name: 'sent', message_id: messageId, profile_id: p.from.id,
      payload: toJson(payload), created_by: p.actor, created_on: now,
    };
    await uow.tx.insertInto('am_events').values(event).execute();
    await uow.tx.updateTable('am_conversations').set({ latest_sent_event_id: seq }).where('api_space_id', '=', space.id).where('id', '=', conv.id).execute();
    await ctx.events.append(uow, {
      apiSpaceId: space.id, accountId: space.accountId, name: 'conversationMessage.sent',
      payload: { metadata: p.metadata, context, parts: p.parts, id: messageId, conversationEventId: seq },
      meta: { actor: p.actor, conversationId: conv.id, conversationEventId: seq, revision: seq, scope },
    });
    const everyone = await participantIds(uow.tx, space.id, conv.id);
    publish(uow, space.id, everyone, frameOf(space, event));
    if (p.alert) {
      const recipients = everyone.filter((x) => x !== p.from.id);
      if (recipients.length) {
        await ctx.queue.enqueue(uow, { kind: 'push.notify', apiSpaceId: space.id, payload: { v: 1, conversationId: conv.id, messageId, senderId: p.from.id, recipients, alert: p.alert } });
      }
    }
    return { id: messageId, eventId: seq };
  }

  /**
   * Redaction of a stored message (one-api.md §3.4 applied to the conversation copy): part data
   * and urls and the alert are removed (type, name, size kept), in the message and in its `sent`
   * event. Metadata, context and status updates stay. Idempotent.
   */
  async function redactRows(rows: AmMessageRow[]): Promise<number> {
    let n = 0;
    for (const m of rows) {
      const doc = fromJson<{ parts?: MessagePart[]; alert?: unknown; redacted?: boolean } & Record<string, unknown>>(m.doc);
      if (doc.redacted) continue;
      const { alert: _alert, ...rest } = doc;
      const parts = (doc.parts ?? []).map((p) => ({ ...(p.type !== undefined ? { type: p.type } : {}), ...(p.name !== undefined ? { name: p.name } : {}), ...(p.size !== undefined ? { size: p.size } : {}) }));
      const next = { ...rest, parts, redacted: true };
      await ctx.transaction(async (uow) => {
        await uow.tx.updateTable('am_messages').set({ doc: toJson(next) }).where('api_space_id', '=', m.api_space_id).where('id', '=', m.id).execute();
        const sent = await uow.tx.selectFrom('am_events').select('payload').where('api_space_id', '=', m.api_space_id)
          .where('conversation_id', '=', m.conversation_id).where('seq', '=', m.sent_event_id).executeTakeFirst();
        if (sent) {
          const { alert: _a, ...payload } = fromJson<Record<string, unknown>>(sent.payload) ?? {};
          await uow.tx.updateTable('am_events').set({ payload: toJson({ ...payload, parts }) }).where('api_space_id', '=', m.api_space_id)
            .where('conversation_id', '=', m.conversation_id).where('seq', '=', m.sent_event_id).execute();
        }
      });
      n++;
    }
    return n;
  }

  return {
    store,
    messageView,

    /** Redacts the conversation message a One API `appMessaging` send produced (one-api.md §3.4). */
    async redactFromSource(apiSpaceId: string, sourceMessageId: string): Promise<number> {
      return redactRows(await db.selectFrom('am_messages').selectAll().where('api_space_id', '=', apiSpaceId).where('source_message_id', '=', sourceMessageId).execute());
    },

    /** Redacts every conversation message a (forgotten) profile sent (profiles.md §3.5). */
    async redactFromProfile(apiSpaceId: string, profileId: string): Promise<number> {
      return redactRows(await db.selectFrom('am_messages').selectAll().where('api_space_id', '=', apiSpaceId).where('from_id', '=', profileId).execute());
    },

    /** `within` runs inside the write transaction (idempotency records its replay there). */
    async send(actor: Actor, space: SpaceRef, conversationId: string, input: MessageInput, within?: (uow: Uow, result: { id: string; eventId: number }) => Promise<void>) {
      const conv = await conversations.load(space.id, conversationId);
      const me = callerProfile(actor);
      if (isBound(actor)) {
        const role = await roleOf(db, space.id, conversationId, me);
        if (!role) throw amErrors.notAParticipant(conversationId);
        if (!conversationView(conv).roles[role].canSend) throw amErrors.roleNotAllowed('sending');
        if (input.from && input.from.profileId !== me) throw errors.forbidden('A session can only send as itself');
      }
      const fromId = input.from?.profileId ?? me;
      if (!fromId) throw errors.forbidden('The token has no profileId to send as');
      const { parts, failures } = partProblems(input.parts);
      if (input.metadata !== undefined && Buffer.byteLength(JSON.stringify(input.metadata)) > MAX_METADATA) failures.push({ paramName: 'metadata', message: 'Must be at most 16 KiB' });
      if (failures.length) throw errors.validation(failures);
      const from = { id: fromId, ...(input.from?.name !== undefined ? { name: input.from.name } : {}), ...(input.from?.avatarUrl !== undefined ? { avatarUrl: input.from.avatarUrl } : {}) };
      const direction = input.direction ?? (isBound(actor) ? 'inbound' : 'outbound');
      const oneApi = deps.oneApi?.();
      const result = await ctx.transaction(async (uow) => {
        const r = await store(space, conv, { actor: actor.actor, from, direction, parts, metadata: input.metadata ?? {}, alert: input.alert }, uow);
        await within?.(uow, r);
        // a2p: an end user's message is also an inbound One API message (one-api.md §5), written in
        // the same transaction so that neither is stored without the other. One the One API
        // refuses (its own checks) does not fail the conversation message.
        if (oneApi && isBound(actor) && conv.message_scope === 'a2p') {
          const text = parts.filter((p) => typeof p.data === 'string' && p.type?.startsWith('text/')).map((p) => p.data).join('\n');
          await oneApi.ingestInbound(space.id, { channelId: 'appMessaging', from: { profileId: fromId }, body: text || undefined, messageParts: parts, providerMessageId: r.id, conversationId, raw: { conversationId } }, uow)
            .catch((err) => {
              if (!(err instanceof AppError && err.status < 500)) throw err;
              log.warn({ err }, 'appMessaging inbound message refused by the One API');
            });
        }
        return r;
      });
      if (profiles) await profiles.touchActivity(space.id, fromId).catch(() => {});
      return result;
    },

    /** Backwards page of messages (§5.4). */
    async page(actor: Actor, space: SpaceRef, conversationId: string, limit: number, from: number | undefined) {
      const conv = await conversations.readable(actor, space.id, conversationId);
      const L = Number(conv.last_event_id);
      const latest = from === undefined ? L : Math.min(from, L);
      const rows = latest < 1 ? [] : await db.selectFrom('am_messages').selectAll().where('api_space_id', '=', space.id).where('conversation_id', '=', conversationId)
        .where('sent_event_id', '<=', latest).orderBy('sent_event_id', 'desc').limit(limit).execute();
      const oldest = rows.length ? Number(rows[rows.length - 1]!.sent_event_id) : 0;
      const earliest = rows.length === limit && oldest > 1 ? oldest : 0;
      const messages = rows.map(messageView);
      const inPage = new Set(messages.map((m) => m.id));
      const statusEvents = latest < 1 ? [] : await db.selectFrom('am_events').selectAll().where('api_space_id', '=', space.id).where('conversation_id', '=', conversationId)
        .where('seq', '>=', Math.max(earliest, 1)).where('seq', '<=', latest).where('name', '!=', 'sent').orderBy('seq').execute();
      const orphanedEvents = statusEvents.filter((e) => !inPage.has(e.message_id)).map((e) => ({
        id: Number(e.seq), data: { name: e.name, eventId: e.event_id, profileId: e.profile_id, payload: fromJson(e.payload) },
      }));
      return { earliestEventId: earliest, latestEventId: latest, messages, orphanedEvents };
    },

    /** Forward read of the event stream (§5.6): frame fields plus `{id, data}`. */
    async events(actor: Actor, space: SpaceRef, conversationId: string, from: number, limit: number) {
      await conversations.readable(actor, space.id, conversationId);
      if (limit === 0) return [];
      const rows = await db.selectFrom('am_events').selectAll().where('api_space_id', '=', space.id).where('conversation_id', '=', conversationId)
        .where('seq', '>=', from).orderBy('seq').limit(limit).execute();
      return rows.map((e) => {
        const payload = fromJson(e.payload);
        return { ...frameOf(space, e), id: Number(e.seq), data: { name: e.name, eventId: e.event_id, profileId: e.profile_id, payload } };
      });
    },

    /** Delivered/read receipts (§5.5). */
    async statusUpdates(actor: Actor, space: SpaceRef, conversationId: string, updates: StatusUpdateInput[]): Promise<void> {
      const conv = await conversations.load(space.id, conversationId);
      const me = callerProfile(actor);
      if (!me || (actor.kind === 'access' && !actor.profileId)) throw errors.forbidden('The token has no profileId');
      if (isBound(actor) && !(await roleOf(db, space.id, conversationId, me))) throw amErrors.notAParticipant(conversationId);
      const failures: ValidationFailure[] = [];
      const stamps = updates.map((u, i) => {
        if (u.timestamp === undefined) return clock.now();
        const t = parseDateTime(u.timestamp);
        if (t === undefined) failures.push({ paramName: `[${i}].timestamp`, message: 'Must be an RFC 3339 date-time' });
        return t ?? 0;
      });
      if (failures.length) throw errors.validation(failures);
      const receipts: Array<{ sourceMessageId: string; status: 'delivered' | 'read'; at: number }> = [];
      const scope = conv.message_scope;
      await ctx.transaction(async (uow) => {
        // Take the conversation's row lock before touching messages: the same lock order as a
        // send, so concurrent receipts serialise instead of deadlocking or losing updates.
        await lockConversation(uow, space.id, conversationId);
        const everyone = await participantIds(uow.tx, space.id, conversationId);
        for (const [i, u] of updates.entries()) {
          const rows = await uow.tx.selectFrom('am_messages').selectAll().where('api_space_id', '=', space.id).where('conversation_id', '=', conversationId)
            .where('id', 'in', [...new Set(u.messageIds)]).execute();
          for (const m of rows) {
            if (m.from_id === me) continue;
            const su = fromJson<StatusUpdates>(m.status_updates) ?? {};
            if (RANK[u.status] <= RANK[su[me]?.status ?? 'none']) continue;
            const on = iso(stamps[i]!);
            su[me] = { status: u.status, on };
            await uow.tx.updateTable('am_messages').set({ status_updates: toJson(su) }).where('api_space_id', '=', space.id).where('id', '=', m.id).execute();
            const seq = await nextEventId(uow.tx, space.id, conversationId);
            const payload = { messageId: m.id, conversationId, profileId: me, timestamp: on, isPublicConversation: conv.is_public === 1 };
            const event: AmEventRow = {
              api_space_id: space.id, conversation_id: conversationId, seq, event_id: ids.uuid(), name: u.status, message_id: m.id, profile_id: me,
              payload: toJson(payload), created_by: actor.actor, created_on: iso(clock.now()),
            };
            await uow.tx.insertInto('am_events').values(event).execute();
            const direction = (fromJson<{ context: { direction?: string } }>(m.doc).context.direction);
            await ctx.events.append(uow, {
              apiSpaceId: space.id, accountId: space.accountId, name: `conversationMessage.${u.status}`,
              payload: { conversationId, scope, ...(direction ? { direction } : {}), isPublicConversation: conv.is_public === 1, profileId: me, timestamp: on, id: m.id, conversationEventId: seq },
              meta: { actor: actor.actor, conversationId, conversationEventId: seq, revision: seq, scope },
            });
            publish(uow, space.id, everyone, frameOf(space, event));
            if (m.source_message_id) receipts.push({ sourceMessageId: m.source_message_id, status: u.status, at: stamps[i]! });
          }
        }
      });
      const oneApi = deps.oneApi?.();
      for (const r of receipts) {
        await oneApi?.applyReceipt(space.id, 'appMessaging', { messageId: r.sourceMessageId, status: r.status, at: r.at })
          .catch((err) => log.warn({ err }, 'appMessaging receipt for the One API failed'));
      }
    },
  };
}
