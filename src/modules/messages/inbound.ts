/**
 * Inbound processing (one-api.md §5): store, resolve the sender profile, correlate with the
 * outbound message it answers, record the channel window, run the rules hooks, emit
 * `message.inbound` — the row, the window and the event in one transaction.
 */
import type { InboundReport } from '../../channels/adapter.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import { iso, parseDateTime } from '../../lib/clock.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import type { Uow } from '../../storage/uow.js';
import type { ModuleContext } from '../module.js';
import type { Ports } from './dispatch.js';
import { messageId, sentMetadata } from './messages.repo.js';
import { isChannelId, isCustomChannel, normaliseEmail, normalisePhone } from './validate.js';

const CORRELATION_WINDOW_MS = 7 * 86_400_000;
const ORDER: Record<string, number> = { received: 0, delivered: 1, read: 2 };
const IDENTIFIERS = ['phoneNumber', 'email', 'fbMessengerId', 'twitterId'] as const;

export type InboundDoc = Record<string, any> & { messageId: string };
/** Rules seam (§5 step 5–6): opt-out and inbound rules, chat routing. Called inside the transaction. */
export type InboundHook = (apiSpaceId: string, inbound: InboundDoc, uow: Uow) => Promise<void>;

export interface InboundService {
  /** `uow`: write in the caller's transaction instead of one of its own (an a2p reply stored with its conversation message). */
  ingest(apiSpaceId: string, actor: string, body: unknown, opts?: { lenientCorrelation?: boolean; within?: (uow: Uow, doc: InboundDoc) => Promise<void>; uow?: Uow }): Promise<InboundDoc>;
  fromReport(apiSpaceId: string, report: InboundReport, uow?: Uow): Promise<InboundDoc>;
  get(apiSpaceId: string, id: string): Promise<InboundDoc>;
  setStatus(apiSpaceId: string, actor: string, id: string, status: string, body: { timestamp: string; channelStatus?: Record<string, unknown> }): Promise<InboundDoc>;
  onInbound(hook: InboundHook): void;
}

const isObj = (v: unknown): v is Record<string, any> => !!v && typeof v === 'object' && !Array.isArray(v);

function validate(b: unknown): ValidationFailure[] {
  const f: ValidationFailure[] = [];
  if (!isObj(b)) return [{ paramName: 'body', message: 'An inbound message object is required' }];
  if (typeof b.channel !== 'string' || !isChannelId(b.channel)) f.push({ paramName: 'channel', message: 'Required channel id' });
  if (!isObj(b.from) || !Object.values(b.from).some((v) => typeof v === 'string' && v !== '')) f.push({ paramName: 'from', message: 'Required object with at least one sender identifier' });
  else for (const [k, v] of Object.entries(b.from)) if (typeof v !== 'string') f.push({ paramName: `from.${k}`, message: 'Must be a string' });
  if (b.to !== undefined && !isObj(b.to)) f.push({ paramName: 'to', message: 'Must be an object' });
  if (b.body !== undefined && typeof b.body !== 'string') f.push({ paramName: 'body', message: 'Must be a string' });
  if (b.title !== undefined && typeof b.title !== 'string') f.push({ paramName: 'title', message: 'Must be a string' });
  if (b.messageParts !== undefined) {
    if (!Array.isArray(b.messageParts)) f.push({ paramName: 'messageParts', message: 'Must be an array' });
    else b.messageParts.forEach((p, i) => { if (!isObj(p) || typeof p.type !== 'string' || !/^[\w.+-]+\/[\w.+-]+$/.test(p.type)) f.push({ paramName: `messageParts[${i}].type`, message: 'Required MIME type' }); });
  }
  if (b.body === undefined && !(Array.isArray(b.messageParts) && b.messageParts.length)) f.push({ paramName: 'body', message: 'Supply body or messageParts' });
  for (const k of ['metadata', 'channelData']) if (b[k] !== undefined && !isObj(b[k])) f.push({ paramName: k, message: 'Must be an object' });
  if (b.conversationId !== undefined && typeof b.conversationId !== 'string') f.push({ paramName: 'conversationId', message: 'Must be a string' });
  if (b.correlation !== undefined && (!isObj(b.correlation) || typeof b.correlation.messageId !== 'string')) f.push({ paramName: 'correlation.messageId', message: 'Required string' });
  return f;
}

/** The outbound message an inbound one correlates with, and its metadata as sent. */
function correlationOf(row: { id: string; request: unknown; rendered: unknown }): { id: string; metadata: unknown } {
  return { id: row.id, metadata: sentMetadata(fromJson(row.rendered), fromJson<Record<string, unknown>>(row.request)) };
}

export function createInbound(ctx: ModuleContext, ports: Ports): InboundService {
  const { db, clock, ids } = ctx;
  const hooks: InboundHook[] = [];

  /**
   * Finds the sender's profile before the transaction (look-ups must not run on the database
   * while a SQLite transaction holds its only connection); creation happens inside it.
   */
  async function findSender(apiSpaceId: string, channel: string, from: Record<string, string>): Promise<{ id: string; init: Record<string, string> } | undefined> {
    if (from.profileId) return { id: from.profileId, init: {} };
    const norm: Partial<Record<(typeof IDENTIFIERS)[number], string>> = {};
    for (const f of IDENTIFIERS) {
      const v = from[f];
      if (!v) continue;
      norm[f] = f === 'phoneNumber' ? normalisePhone(v) ?? v.replace(/\D/g, '') : f === 'email' ? (normaliseEmail(v) ?? v).toLowerCase() : v;
    }
    const profiles = ports.profiles();
    if (!profiles) return undefined;
    for (const f of IDENTIFIERS) {
      if (!norm[f]) continue;
      const p = await profiles.findByIdentifier(apiSpaceId, f, norm[f]!);
      if (p) return { id: p.id, init: {} };
    }
    // A custom channel addresses recipients by its own property (`userIdProperty`, e.g. crmId):
    // a sender identified by it is the profile holding that value. No profile is created from it.
    const prop = isCustomChannel(channel) ? (await ports.channels()?.config(apiSpaceId, channel))?.settings?.userIdProperty : undefined;
    if (typeof prop === 'string' && prop !== 'profileId' && !(IDENTIFIERS as readonly string[]).includes(prop) && typeof from[prop] === 'string' && from[prop]) {
      const p = await profiles.findByIdentifier(apiSpaceId, prop, from[prop]);
      if (p) return { id: p.id, init: {} };
    }
    const first = IDENTIFIERS.find((f) => norm[f]);
    return first ? { id: norm[first]!, init: { [first]: norm[first]! } } : undefined;
  }

  /** Channels whose providers take read receipts for inbound messages (`ChannelAdapter.markRead`). */
  const READ_RECEIPT_CHANNELS: ReadonlySet<string> = new Set(['whatsApp', 'fbMessenger', 'rcs']);

  async function load(apiSpaceId: string, id: string) {
    const row = await db.selectFrom('inbound_messages').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
    return row ? { doc: fromJson<InboundDoc>(row.doc), revision: row.revision } : undefined;
  }

  const service: InboundService = {
    async ingest(apiSpaceId, actor, body, opts = {}) {
      const failures = validate(body);
      if (failures.length) throw errors.validation(failures);
      const b = body as Record<string, any>;
      const now = clock.now();
      const stamp = iso(now);
      let correlated: { id: string; metadata: unknown } | undefined;
      if (b.correlation?.messageId) {
        const id = b.correlation.messageId;
        const read = () => db.selectFrom('messages').select(['id', 'request', 'rendered']).where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
        const pending = ports.batches?.();
        const row = pending ? await pending.read(apiSpaceId, id, read) : await read();
        if (row) correlated = correlationOf(row);
        else if (!opts.lenientCorrelation) throw errors.invalidField('correlation.messageId', 'Unknown message');
      }
      const accountId = (await ctx.services.spaces.get(apiSpaceId))?.accountId ?? 0;
      const from: Record<string, string> = { ...b.from };
      // Stored as the digits it is known by (one-api.md §3.7 example), as `to.phoneNumber` is.
      if (typeof from.phoneNumber === 'string') from.phoneNumber = normalisePhone(from.phoneNumber) ?? from.phoneNumber;
      const sender = await findSender(apiSpaceId, b.channel, from);
      const profileId = sender?.id;
      if (profileId) from.profileId = profileId;
      const write = <T>(fn: (uow: Uow) => Promise<T>): Promise<T> => (opts.uow ? fn(opts.uow) : ctx.transaction(fn));
      // A new sender's profile is made first, in its own transaction, where the caller has none:
      // two messages of one new sender (one provider callback) both try to create it, and on
      // PostgreSQL the later insert fails its whole transaction. The loser finds it made.
      const profiles = ports.profiles();
      if (sender && profiles && !opts.uow) await profiles.ensure(apiSpaceId, sender.id, sender.init, actor);
      return write(async (uow) => {
        if (sender && profiles && opts.uow) await profiles.ensure(apiSpaceId, sender.id, sender.init, actor, uow);
        if (!correlated && profileId) {
          const row = await uow.tx.selectFrom('messages').select(['id', 'request', 'rendered'])
            .where('api_space_id', '=', apiSpaceId).where('profile_id', '=', profileId).where('channel_id', '=', b.channel)
            .where('submitted_at', '>=', now - CORRELATION_WINDOW_MS).where('deleted', '=', 0)
            .orderBy('submitted_at', 'desc').limit(1).executeTakeFirst();
          if (row) correlated = correlationOf(row);
        }
        const id = messageId(now, ids.uuid());
        const doc: InboundDoc = {
          messageId: id, receivedOn: stamp, status: 'received', channel: b.channel, from,
          ...(b.to !== undefined ? { to: b.to } : {}),
          ...(b.title !== undefined ? { title: b.title } : {}),
          ...(b.body !== undefined ? { body: b.body } : {}),
          ...(b.messageParts !== undefined ? { messageParts: b.messageParts } : {}),
          ...(b.conversationId !== undefined ? { conversationId: b.conversationId } : {}),
          ...(b.metadata !== undefined ? { metadata: b.metadata } : {}),
          ...(b.channelData !== undefined ? { channelData: b.channelData } : {}),
          ...(correlated ? { correlation: { messageId: correlated.id, ...(correlated.metadata !== undefined ? { metadata: correlated.metadata } : {}) } } : {}),
          _createdOn: stamp, _createdBy: actor, _updatedOn: stamp, _updatedBy: actor,
        };
        await uow.tx.insertInto('inbound_messages').values({ api_space_id: apiSpaceId, id, channel: b.channel, profile_id: profileId ?? null, status: 'received', revision: 0, doc: toJson(doc), received_at: now }).execute();
        if (profileId) {
          await uow.tx.insertInto('channel_windows').values({ api_space_id: apiSpaceId, profile_id: profileId, channel: b.channel, last_inbound_at: now })
            .onConflict((oc) => oc.columns(['api_space_id', 'profile_id', 'channel']).doUpdateSet({ last_inbound_at: now })).execute();
          if (profiles) uow.afterCommit(() => void profiles.touchActivity(apiSpaceId, profileId, now).catch(() => {}));
        }
        for (const hook of hooks) await hook(apiSpaceId, doc, uow);
        const { _createdOn, _createdBy, _updatedOn, _updatedBy, ...resource } = doc;
        void _createdOn; void _createdBy; void _updatedOn; void _updatedBy;
        await ctx.events.append(uow, { apiSpaceId, accountId, name: 'message.inbound', payload: { id, ...resource }, meta: { revision: 0 } });
        await opts.within?.(uow, doc);
        return doc;
      });
    },

    async fromReport(apiSpaceId, r, uow) {
      const at = r.sentOn;
      return service.ingest(apiSpaceId, 'system', {
        channel: r.channelId, from: Object.fromEntries(Object.entries(r.from).filter(([, v]) => typeof v === 'string')),
        ...(r.to ? { to: r.to } : {}), ...(r.title !== undefined ? { title: r.title } : {}),
        body: r.body ?? (r.messageParts?.length ? undefined : ''), ...(r.messageParts?.length ? { messageParts: r.messageParts } : {}),
        channelData: { ...(r.raw !== undefined ? { body: r.raw } : {}), ...(r.providerMessageId ? { providerMessageId: r.providerMessageId } : {}), ...(at ? { sentOn: iso(at) } : {}) },
        ...(r.inReplyToMessageId ? { correlation: { messageId: r.inReplyToMessageId } } : {}),
        ...(r.conversationId ? { conversationId: r.conversationId } : {}),
      }, { lenientCorrelation: true, ...(uow ? { uow } : {}) });
    },

    async get(apiSpaceId, id) {
      const found = await load(apiSpaceId, id);
      if (!found) throw errors.notFound('Inbound message');
      return found.doc;
    },

    async setStatus(apiSpaceId, actor, id, status, body) {
      if (parseDateTime(body.timestamp) === undefined) throw errors.invalidField('timestamp', 'Must be an RFC 3339 date-time');
      for (let attempt = 0; attempt < 5; attempt++) {
        const cur = await load(apiSpaceId, id);
        if (!cur) throw errors.notFound('Inbound message');
        if ((ORDER[status] ?? 0) <= (ORDER[cur.doc.status] ?? 0)) return cur.doc; // backward moves are ignored (§3.8)
        const doc: InboundDoc = { ...cur.doc, status, _updatedOn: iso(clock.now()), _updatedBy: actor, ...(body.channelStatus ? { channelStatus: body.channelStatus } : {}), [`${status}On`]: iso(parseDateTime(body.timestamp)!) };
        const providerMessageId = (doc.channelData as { providerMessageId?: unknown } | undefined)?.providerMessageId;
        const tellProvider = status === 'read' && typeof providerMessageId === 'string' && READ_RECEIPT_CHANNELS.has(doc.channel);
        const written = await ctx.transaction(async (uow) => {
          const res = await uow.tx.updateTable('inbound_messages').set({ status, doc: toJson(doc), revision: cur.revision + 1 })
            .where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('revision', '=', cur.revision).executeTakeFirst();
          if (Number(res.numUpdatedRows) !== 1) return false;
          // The provider hears of it after the commit, durably (channels.md §6: WhatsApp's read status).
          if (tellProvider) await ctx.queue.enqueue(uow, { kind: 'channels.markRead', apiSpaceId, payload: { v: 1, channelId: doc.channel, inbound: { providerMessageId, from: doc.from } } });
          return true;
        });
        if (written) return doc;
      }
      throw errors.conflict('The inbound message was changed concurrently');
    },

    onInbound(hook) {
      hooks.push(hook);
    },
  };
  return service;
}
