/**
 * The One API's outbound side: accepting single and batch sends (validation, permissions, one
 * transaction for rows + first jobs), reading, redacting, deleting, and status reports.
 */
import type { Actor } from '../../auth/actor.js';
import { grants } from '../../auth/permissions.js';
import { AppError, errors, type ValidationFailure } from '../../http/errors.js';
import { iso, parseDateTime } from '../../lib/clock.js';
import { TtlCache } from '../../lib/cache.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import { deferInsert } from '../../storage/raw.js';
import { perTransaction, type Uow } from '../../storage/uow.js';
import type { NewJob } from '../../delivery/queue.js';
import type { ModuleContext } from '../module.js';
import type { RuleSetsService } from './rulesets.js';
import { GROUP_MAX, type Ports } from './dispatch.js';
import { canTransition, eventName, eventPayload, rank, type Attempt, type DispatchState } from './lifecycle.js';
import { deferMessages, etagOf, loadMessage, messageId, sentMetadata, type Message, type MessageRow, type Mutator } from './messages.repo.js';
import { checkIfMatch } from '../../http/etag.js';
import { inboundPermission, sendPermission, validateRequest } from './validate.js';
import { BATCH_COLUMNS, batchItemId, batchKey, batchKeyOf, pack, unpack, type Envelope, type MessageBatchRow, type PendingBatches, type Prepared } from './batches.js';

export const MAX_BATCH = 5000;
const JOB_CHUNK = 100;

export interface StatusReport {
  channel: string;
  channelStatus?: Record<string, unknown>;
  timestamp?: string;
  failureReason?: string;
}

export interface OutboundService {
  /** Reads that may need messages of a batch still in its envelope expand it first. */
  pending: PendingBatches;
  accept(apiSpaceId: string, actor: Actor, bodies: unknown[], opts?: { within?: (uow: Uow, messages: Message[]) => Promise<void> }): Promise<Message[]>;
  /** A batch (1–5,000 items): validated whole, stored as one envelope; resolves to the item ids. */
  acceptBatch(apiSpaceId: string, actor: Actor, bodies: unknown[], opts?: { within?: (uow: Uow, ids: string[]) => Promise<void> }): Promise<string[]>;
  /** Writes the messages of a pending envelope (its `message.batch` job); false when already done. */
  expandBatch(apiSpaceId: string, key: string): Promise<boolean>;
  get(apiSpaceId: string, id: string): Promise<Message>;
  /** `ifMatch`: the request's `If-Match` (conventions.md §8): 412 unless it names the current ETag. */
  redact(apiSpaceId: string, actor: string, id: string, source: string, ifMatch?: string | string[]): Promise<void>;
  remove(apiSpaceId: string, actor: string, id: string, ifMatch?: string | string[]): Promise<void>;
  reportStatus(apiSpaceId: string, actor: Actor | undefined, id: string, status: string, report: StatusReport): Promise<{ applied: boolean; timestamp: string }>;
}

interface Lookups {
  channelOk: Map<string, boolean>;
  accountId: number;
}

/** Who accepted a message: the actor recorded on it and the sending profile, if any. */
interface Sender {
  actor: string;
  profileId?: string;
}

const isObj = (v: unknown): v is Record<string, any> => !!v && typeof v === 'object' && !Array.isArray(v);

function canSendAll(actor: Actor, needed: Iterable<string>): boolean {
  if (actor.kind === 'admin' || (actor.kind === 'user' && actor.role === 'admin')) return true;
  if (actor.kind !== 'access') return false;
  const granted = actor.permissions ?? new Set<string>();
  for (const p of needed) if (!grants(granted, p)) return false;
  return true;
}

export function createOutbound(ctx: ModuleContext, mutator: Mutator, ruleSets: RuleSetsService, ports: Ports): OutboundService {
  const { clock, ids } = ctx;
  // Positive answers only: a channel configured a moment ago must never be reported missing.
  const configured = new TtlCache<string, true>(2_000, 10_000, () => clock.now());
  const accountOf = async (apiSpaceId: string) => (await ctx.services.spaces.get(apiSpaceId))?.accountId ?? 0;

  async function isConfigured(apiSpaceId: string, ch: string): Promise<boolean> {
    const registry = ports.channels();
    if (!registry) return true; // without a registry nothing can be decided synchronously
    const key = `${apiSpaceId}:${ch}`;
    if (configured.get(key)) return true;
    const cfg = await registry.config(apiSpaceId, ch);
    if (cfg?.enabled) configured.set(key, true);
    return !!cfg?.enabled;
  }

  /** Rule sets, templates, permissions and the §2.6 checklist; every failure reported together. */
  async function prepare(apiSpaceId: string, actor: Actor, bodies: unknown[], batch: boolean, now: number, idFor: (index: number) => string): Promise<Prepared[]> {
    // Rule sets and templates are looked up once per request.
    const sets = new Map<string, Awaited<ReturnType<RuleSetsService['resolve']>>>();
    const templates = new Map<string, boolean>();
    for (const b of bodies) {
      if (!isObj(b)) continue;
      if (typeof b.ruleSet === 'string' && !sets.has(b.ruleSet)) sets.set(b.ruleSet, await ruleSets.resolve(apiSpaceId, b.ruleSet));
      if (typeof b.templateId === 'string' && !templates.has(b.templateId)) {
        const lookup = ports.templates();
        templates.set(b.templateId, lookup ? !!(await lookup.get(apiSpaceId, b.templateId)) : false);
      }
    }
    // Permissions before validation (§2.6): every channel named, and msg:branch for ruleSet.
    const needed = new Set<string>();
    for (const b of bodies) {
      if (!isObj(b)) continue;
      if (Array.isArray(b.rules)) for (const c of b.rules) if (typeof c === 'string') needed.add(sendPermission(c));
      if (b.ruleSet !== undefined) {
        needed.add('msg:branch');
        for (const c of sets.get(b.ruleSet)?.rules ?? []) needed.add(sendPermission(c));
      }
    }
    if (!canSendAll(actor, needed)) throw errors.forbidden('This credential cannot send on every channel listed (or use ruleSet)');

    const failures: ValidationFailure[] = [];
    const items: Prepared[] = [];
    bodies.forEach((b, i) => {
      const rs = isObj(b) && typeof b.ruleSet === 'string' ? sets.get(b.ruleSet) : undefined;
      const v = validateRequest(b, {
        now,
        ruleSetRules: isObj(b) && b.ruleSet !== undefined ? (rs ? rs.rules : null) : undefined,
        templateExists: isObj(b) && typeof b.templateId === 'string' ? templates.get(b.templateId) : undefined,
      }, failures, batch ? i : undefined);
      if (!v || failures.length) return;
      const fallbackAfter = v.stored.fallbackAfter ?? rs?.fallbackAfter;
      const state: DispatchState = { rules: v.channels, next: 0, retries: 0 };
      if (rs?.fallbackOnFailure) state.fallbackOnFailure = true;
      if (fallbackAfter !== undefined) {
        state.fallbackAfter = fallbackAfter as number;
        state.successStatus = (v.stored.successStatus ?? rs?.successStatus ?? 'delivered') as string;
      }
      items.push({ id: idFor(i), stored: v.stored, channels: v.channels, state, expiresAt: v.expiresAt, deliverAfter: v.deliverAfter });
    });
    if (failures.length) throw errors.validation(failures);
    return items;
  }

  /** What `write` needs to know before its transaction: configured channels, and the account. */
  async function lookups(apiSpaceId: string, items: readonly Prepared[]): Promise<Lookups> {
    const channelOk = new Map<string, boolean>();
    for (const it of items) for (const c of it.channels) if (!channelOk.has(c)) channelOk.set(c, await isConfigured(apiSpaceId, c));
    const anyFails = items.some((it) => it.channels.every((c) => channelOk.get(c) === false));
    return { channelOk, accountId: anyFails ? await accountOf(apiSpaceId) : 0 };
  }

  /**
   * Messages due now, gathered per transaction: every send that shares a group commit (and every
   * item of an expanded batch) joins one dispatch job per space and GROUP_MAX messages, written
   * just before commit — one job row to insert, claim and delete for the group instead of one per
   * message (docs/adr/0006-one-api-hot-path.md, decision 15). A job taken by a worker of this
   * process gets the rows as written, so it neither claims the job nor reads the messages back.
   */
  const dueAtCommit = perTransaction((): Map<string, { now: number; messages: Message[] }> => new Map(), async (bySpace, uow) => {
    for (const [space, { now, messages }] of bySpace) {
      for (let i = 0; i < messages.length; i += GROUP_MAX) {
        const chunk = messages.slice(i, i + GROUP_MAX);
        const job: NewJob = { kind: 'message.dispatch', apiSpaceId: space, payload: { v: 1, ids: chunk.map((m) => m.row.id) }, runAt: now };
        // A worker of this process that takes the job gets the rows as written (`Dispatcher.prime`).
        await ctx.localJobs.enqueue(uow, job, chunk);
      }
    }
  });
  function dispatchAtCommit(uow: Uow, apiSpaceId: string, now: number, list: readonly Message[]): void {
    const bySpace = dueAtCommit(uow);
    const pending = bySpace.get(apiSpaceId);
    if (pending) pending.messages.push(...list);
    else bySpace.set(apiSpaceId, { now, messages: [...list] });
  }

  /**
   * Writes accepted messages in `uow`: their rows, their first dispatch jobs (taken by a worker of
   * this process when it has room, with the rows as written), and the `failed` event of a
   * message no listed channel can carry (§3.1).
   */
  async function write(uow: Uow, apiSpaceId: string, by: Sender, now: number, items: readonly Prepared[], found: Lookups): Promise<Message[]> {
    const stamp = iso(now);
    const rows: MessageRow[] = [];
    const messages: Message[] = [];
    const failed: Message[] = [];
    const due = new Map<number, Message[]>();
    for (const it of items) {
      const state: DispatchState = { ...it.state };
      let status = 'processing';
      let details: Record<string, unknown> = {};
      let runAt: number | undefined;
      // Decided synchronously (§3.1): no listed channel is configured, so none can ever be tried.
      if (it.channels.every((c) => found.channelOk.get(c) === false)) {
        status = 'failed';
        const attempts: Attempt[] = it.channels.map((c) => ({ channel: c, outcome: 'skipped', reason: 'NotConfigured', at: stamp }));
        details = { attempts, failureReason: 'No channel in the list is configured in this API space', errorCode: 'NotConfigured' };
        state.next = it.channels.length;
      } else {
        runAt = it.deliverAfter !== undefined && it.deliverAfter > now ? it.deliverAfter : now;
      }
      const row: MessageRow = {
        api_space_id: apiSpaceId, id: it.id, status, revision: 0,
        profile_id: (it.stored.to as Record<string, string>).profileId ?? null,
        channel_id: null, conversation_id: (it.stored.conversationId as string | undefined) ?? null, provider_message_id: null,
        request: toJson(it.stored), status_details: toJson(details), state: toJson(state), rendered: null,
        expires_at: it.expiresAt ?? null, submitted_at: now, sender_profile_id: by.profileId ?? null, deleted: 0,
        created_on: stamp, created_by: by.actor, updated_on: stamp, updated_by: by.actor,
      };
      const m: Message = { row, request: it.stored, details: details as Message['details'], state };
      rows.push(row);
      messages.push(m);
      if (runAt === undefined) failed.push(m);
      else {
        const list = due.get(runAt) ?? [];
        list.push(m);
        due.set(runAt, list);
      }
    }
    deferMessages(uow, ctx.handle.dialect, rows);
    for (const [runAt, list] of due) {
      if (runAt <= now) {
        dispatchAtCommit(uow, apiSpaceId, now, list);
        continue;
      }
      for (let i = 0; i < list.length; i += JOB_CHUNK) {
        await ctx.queue.enqueue(uow, { kind: 'message.dispatch', apiSpaceId, payload: { v: 1, ids: list.slice(i, i + JOB_CHUNK).map((m) => m.row.id) }, runAt });
      }
    }
    for (const m of failed) {
      // §2.2 rule 1: the profile named by `to.profileId` exists after a send, even one that no
      // channel can carry (the others create it when they are dispatched). As at dispatch, on a
      // best-effort basis after the commit: a profile the directory refuses (a reserved id, a
      // property name it does not take) must not fail the send, nor the batch it belongs to.
      const { profileId, ...ids } = m.request.to as Record<string, string>;
      const profiles = ports.profiles();
      if (profileId && profiles) {
        uow.afterCommit(() => void profiles.ensure(apiSpaceId, profileId, ids, by.actor).catch((err) => ctx.log.debug({ err, messageId: m.row.id }, 'profile of a failed send not created')));
      }
      await ctx.events.append(uow, {
        apiSpaceId, accountId: found.accountId, name: eventName('failed'),
        payload: eventPayload({ messageId: m.row.id, status: 'failed', channel: null, to: m.request.to, conversationId: m.row.conversation_id ?? undefined, metadata: m.request.metadata, updatedOn: stamp, failureReason: m.details.failureReason, errorCode: 'NotConfigured' }),
        meta: { revision: 0, etag: etagOf(m) },
      });
    }
    return messages;
  }

  const pending: PendingBatches = {
    async ensureMessage(apiSpaceId, id) {
      const key = batchKeyOf(id);
      if (!key) return false;
      // Expanded here or by a concurrent reader or job (committed by now): either way, read again.
      await service.expandBatch(apiSpaceId, key);
      return true;
    },
    async read(apiSpaceId, id, read) {
      const found = await read();
      return found !== undefined || !(await pending.ensureMessage(apiSpaceId, id)) ? found : read();
    },
    async ensureSpace(apiSpaceId) {
      const keys = await ctx.db.selectFrom('message_batches').select('id').where('api_space_id', '=', apiSpaceId).orderBy('id').execute();
      for (const { id } of keys) await service.expandBatch(apiSpaceId, id);
    },
  };

  const service: OutboundService = {
    pending,
    async accept(apiSpaceId, actor, bodies, opts = {}) {
      const now = clock.now();
      const items = await prepare(apiSpaceId, actor, bodies, false, now, () => messageId(now, ids.uuid()));
      const found = await lookups(apiSpaceId, items);
      return ctx.groupCommit(async (uow) => {
        const messages = await write(uow, apiSpaceId, actor, now, items, found);
        await opts.within?.(uow, messages);
        return messages;
      });
    },

    async acceptBatch(apiSpaceId, actor, bodies, opts = {}) {
      if (bodies.length === 0) throw errors.invalidField('body', 'A batch needs at least one message');
      if (bodies.length > MAX_BATCH) throw errors.invalidField('body', `A batch holds at most ${MAX_BATCH} messages`);
      const now = clock.now();
      const key = batchKey(messageId(now, ids.uuid()));
      const items = await prepare(apiSpaceId, actor, bodies, true, now, (i) => batchItemId(key, i));
      const envelope: Envelope = { v: 1, at: now, by: actor.actor, sender: actor.profileId ?? null, items: items.map(pack) };
      const row: MessageBatchRow = { api_space_id: apiSpaceId, id: key, doc: toJson(envelope), submitted_at: now };
      const list = items.map((it) => it.id);
      await ctx.groupCommit(async (uow) => {
        deferInsert(uow, ctx.handle.dialect, 'message_batches', BATCH_COLUMNS, [row]);
        await ctx.localJobs.enqueue(uow, { kind: 'message.batch', apiSpaceId, payload: { v: 1, batch: key }, runAt: now });
        await opts.within?.(uow, list);
      });
      return list;
    },

    async expandBatch(apiSpaceId, key) {
      const row = await ctx.db.selectFrom('message_batches').select('doc').where('api_space_id', '=', apiSpaceId).where('id', '=', key).executeTakeFirst();
      if (!row) return false;
      const envelope = fromJson<Envelope>(row.doc);
      const items = envelope.items.map((it, i) => unpack(it, batchItemId(key, i)));
      const found = await lookups(apiSpaceId, items);
      return ctx.transaction(async (uow) => {
        // Whoever deletes the envelope writes its messages: the job and a read may race here.
        const del = await uow.tx.deleteFrom('message_batches').where('api_space_id', '=', apiSpaceId).where('id', '=', key).executeTakeFirst();
        if (Number(del.numDeletedRows) !== 1) return false;
        await write(uow, apiSpaceId, { actor: envelope.by, profileId: envelope.sender ?? undefined }, envelope.at, items, found);
        return true;
      });
    },

    async get(apiSpaceId, id) {
      const m = await pending.read(apiSpaceId, id, () => loadMessage(ctx.db, apiSpaceId, id));
      if (!m || m.row.deleted) throw errors.notFound('Message');
      return m;
    },

    async redact(apiSpaceId, actor, id, source, ifMatch) {
      const res = await mutator.mutate(apiSpaceId, id, (m) => {
        if (m.row.deleted) return { result: false };
        checkIfMatch(ifMatch, etagOf(m));
        if (m.details.redacted) return { result: true };
        return { result: true, change: { ...redaction(m, source, clock.now()), actor } };
      });
      if (!res?.result) throw errors.notFound('Message');
      await redactCopies(ctx, ports, res.message);
    },

    async remove(apiSpaceId, actor, id, ifMatch) {
      const res = await mutator.mutate(apiSpaceId, id, (m) => {
        if (m.row.deleted) return { result: false };
        checkIfMatch(ifMatch, etagOf(m));
        const cancel = m.row.status === 'processing' || m.row.status === 'retrying';
        const r = m.details.redacted ? {} : redaction(m, 'message', clock.now());
        return { result: true, change: { ...r, deleted: true, actor, ...(cancel ? { state: { ...m.state, cancelled: true } } : {}) } };
      });
      if (!res?.result) throw errors.notFound('Message');
      await redactCopies(ctx, ports, res.message);
    },

    async reportStatus(apiSpaceId, actor, id, status, report) {
      // Kept in UTC, whatever offset the report was written with (conventions.md: times in UTC).
      const at = iso(report.timestamp === undefined ? clock.now() : parseDateTime(report.timestamp) ?? clock.now());
      if (actor && !canSendAll(actor, [inboundPermission(report.channel)])) throw errors.forbidden(`This credential cannot report statuses for channel ${report.channel}`);
      const res = await mutator.mutate<boolean | 'gone' | 'invalid'>(apiSpaceId, id, (m) => {
        if (m.row.deleted) return { result: 'gone' as const };
        const s = m.state;
        const ch = report.channel;
        const currentCh = s.current !== undefined ? s.rules[s.current] : m.row.channel_id;
        const attempts = [...(m.details.attempts ?? [])];
        let k = -1;
        for (let j = attempts.length - 1; j >= 0; j--) if (attempts[j]!.channel === ch && ['accepted', 'TimedOut', 'failed'].includes(attempts[j]!.outcome)) { k = j; break; }
        const isCurrent = currentCh === ch && (m.row.channel_id === ch || s.current !== undefined);
        // Candidates are the channels not tried yet (a report may beat the dispatcher's own commit);
        // a channel already skipped, rejected or timed out is not one.
        const isCandidate = (m.row.status === 'processing' || m.row.status === 'retrying') && s.rules.indexOf(ch) >= s.next;
        const noteOnAttempt = () => {
          attempts[k] = { ...attempts[k]!, status, statusOn: at };
          return { result: false as const, change: { details: { ...m.details, attempts } } };
        };
        if (!isCurrent && !isCandidate) {
          if (k < 0) return { result: 'invalid' as const };
          // A timed-out attempt: recorded, never moves the message back. Reaching successStatus it
          // ends Branch (§2.3 step 6: no further channel is tried): the message keeps the status
          // another channel gave it, or, between channels, takes this one's below.
          const a = attempts[k]!;
          const late = a.outcome === 'TimedOut' && !!s.fallbackAfter && !['failed', 'expired', 'filtered'].includes(status) && rank(status) >= rank(s.successStatus ?? 'delivered');
          if (!late) return noteOnAttempt();
          if (m.row.status !== 'processing' && m.row.status !== 'retrying') {
            attempts[k] = { ...a, status, statusOn: at };
            return { result: false as const, change: { details: { ...m.details, attempts }, state: { ...s, succeeded: true } } };
          }
        }
        if (!canTransition(m.row.status, status)) return { result: false as const };
        if (k >= 0) attempts[k] = { ...attempts[k]!, status, statusOn: at };
        const failure = status === 'failed' || status === 'expired' || status === 'filtered';
        const expired = m.row.expires_at !== null && clock.now() >= Number(m.row.expires_at);
        // fallbackOnFailure (§2.3 step 5): a final failure receipt restarts Branch from the next channel.
        if ((status === 'failed' || status === 'expired') && isCurrent && s.fallbackOnFailure && !s.succeeded && s.next < s.rules.length && !expired) {
          if (k >= 0) attempts[k] = { ...attempts[k]!, outcome: 'failed', reason: report.failureReason ?? status };
          const { channelId: _c, ...rest } = m.details;
          return { result: true as const, change: { status: 'processing', channelId: null, providerMessageId: null, state: { ...s, current: undefined, retries: 0 }, details: { ...rest, attempts }, actor: actor?.actor, jobs: [{ kind: 'message.dispatch', apiSpaceId, payload: { v: 1, ids: [id] } }] } };
        }
        const channelDetails = report.channelStatus ?? {};
        const details = {
          ...m.details, attempts, channelId: ch,
          channelStatus: { ...(m.details.channelStatus ?? {}), [ch]: { status, details: channelDetails, updatedOn: at } },
          // The channel's own error code when it gave one (§3.3: e.g. sms.md §6.3 `Undeliverable`).
          ...(failure ? { failureReason: report.failureReason ?? `The channel reported ${status}`, errorCode: typeof channelDetails.errorCode === 'string' && channelDetails.errorCode ? channelDetails.errorCode : status === 'expired' ? 'Expired' : status === 'filtered' ? 'Filtered' : 'ProviderRejected' } : {}),
        };
        const succeeded = !failure && !!s.fallbackAfter && rank(status) >= rank(s.successStatus ?? 'delivered');
        return {
          result: true as const,
          change: {
            status, channelId: ch, details, actor: actor?.actor,
            state: succeeded ? { ...s, succeeded: true } : s,
            events: [{ status, channel: ch, channelDetails, statusOn: at, ...(failure ? { failureReason: details.failureReason, errorCode: details.errorCode } : {}) }],
          },
        };
      });
      if (!res || res.result === 'gone') throw errors.notFound('Message');
      if (res.result === 'invalid') throw new AppError(409, 'InvalidState', `Channel ${report.channel} does not carry this message`);
      return { applied: res.result === true, timestamp: at };
    },
  };
  return service;
}

/**
 * Redaction reaches the copies made from the message (§3.4): the App Messaging conversation
 * message of an `appMessaging` send. A failure is logged; repeating the redaction retries it.
 */
export async function redactCopies(ctx: ModuleContext, ports: Ports, m: Message): Promise<void> {
  if (!(m.details.attempts ?? []).some((a) => a.channel === 'appMessaging' && a.outcome !== 'skipped')) return;
  await ports.copies?.()?.redactMessage(m.row.api_space_id, m.row.id)
    .catch((err) => ctx.log.warn({ err, messageId: m.row.id }, 'redacting the conversation copy of a message failed'));
}

/** Redaction (§3.4): content removed, addressing, metadata and statuses kept. */
export function redaction(m: Message, source: string, now: number) {
  const request: Record<string, any> = { ...m.request };
  if (request.body !== undefined) request.body = '';
  if (request.title !== undefined) request.title = '';
  if (Array.isArray(request.messageParts)) request.messageParts = request.messageParts.map((p: Record<string, unknown>) => ({ type: p.type, ...(p.name !== undefined ? { name: p.name } : {}), ...(p.size !== undefined ? { size: p.size } : {}) }));
  delete request.customBody;
  const { channelStatus: _cs, ...details } = m.details;
  return {
    request,
    // The metadata as sent stays: later events still carry it with merge fields substituted.
    rendered: { redacted: true, metadata: sentMetadata(fromJson(m.row.rendered), m.request) },
    details: { ...details, redacted: true, redactedOn: iso(now), redactSource: source },
  };
}
