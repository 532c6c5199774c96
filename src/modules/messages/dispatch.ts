/**
 * Branch (one-api.md §2.3, §4.3): the worker side of a send. For each message it walks the channel
 * list from where it left off, records every skip/rejection, calls the adapter of the first
 * eligible channel and classifies the outcome: accepted → `sent`; rejected → next channel;
 * transient → `retrying` on the §4.3 schedule (capped by expiry), rejected after five retries.
 * Network calls happen outside transactions; every state change goes through `mutate`.
 */
import type { JobHandler } from '../../delivery/worker.js';
import type { ChannelAdapter, SendInput, SendOutcome } from '../../channels/adapter.js';
import type { ChannelConfigView, ChannelLimits, ChannelRegistry } from '../channels/channels.contract.js';
import type { ProfileDirectory, ProfileDocument } from '../profiles/profiles.contract.js';
import type { ModuleContext } from '../module.js';
import type { Tx } from '../../storage/db.js';
import type { Uow } from '../../storage/uow.js';
import { iso } from '../../lib/clock.js';
import type { PendingBatches } from './batches.js';
import { loadMessage, loadMessages, type Change, type Message, type MutationItem, type Mutator } from './messages.repo.js';
import { channelDataOf, FINAL, OPT_REASONS, rank, type Attempt } from './lifecycle.js';
import { mergeDeep, mergeString, type MergeContext } from './merge.js';
import { isCustomChannel, normalisePhone } from './validate.js';
import { createPacer } from './pacing.js';
import { partHosting } from './hosted-parts.js';
import { valueAt } from '../../channels/custom/template.js';

export interface TemplatesLookup {
  get(apiSpaceId: string, id: string): Promise<Record<string, unknown> | undefined>;
}

/** Copies other modules made of a One API message (the App Messaging conversation message). */
export interface MessageCopies {
  redactMessage(apiSpaceId: string, messageId: string): Promise<void>;
}

export interface Ports {
  profiles(): ProfileDirectory | undefined;
  channels(): ChannelRegistry | undefined;
  templates(): TemplatesLookup | undefined;
  copies?(): MessageCopies | undefined;
  /** Pending batch envelopes (batches.ts); set once the outbound service exists. */
  batches?(): PendingBatches | undefined;
}

const RETRY_SCHEDULE_MS = [30_000, 120_000, 600_000, 1_800_000, 3_600_000];
const MAX_RETRIES = RETRY_SCHEDULE_MS.length;
const WINDOW_MS = 24 * 3600_000;
/** Sends in flight at once per (space, channel) in this process, unless the channel's `limits.concurrency` says otherwise. */
const CHANNEL_CAP = 64;
/**
 * A paced send whose slot is at most this far off waits for it in the worker; one further off is
 * written back to the queue to run at its slot (one-api.md §4.3 item 4: limits are kept by the
 * queue), so a slow channel does not hold the worker's slots.
 */
const PACE_HOLD_MS = 1000;
/** Most messages dispatched as one group (one read, one transaction): single-message jobs gathered, or one job's. */
export const GROUP_MAX = 64;
const IDENTIFIERS = ['phoneNumber', 'email', 'fbMessengerId', 'twitterId'] as const;

interface Recipient {
  to: Record<string, string>;
  profileId?: string;
  profile?: ProfileDocument;
  primary?: ProfileDocument;
}

type Part = { type: string; name?: string; url?: string; data?: unknown; size?: number; channels?: string[] };

interface Rendered {
  title?: string;
  body?: string;
  htmlBody?: string;
  parts: Part[];
  custom?: unknown;
  options?: Record<string, unknown>;
  metadata?: unknown;
}

/** A tiny counting semaphore per (space, channel): per-channel concurrency caps in this process. */
function createCaps() {
  const slots = new Map<string, { n: number; waiters: Array<() => void> }>();
  return async function withCap<T>(key: string, limit: number, fn: () => Promise<T>): Promise<T> {
    let s = slots.get(key);
    if (!s) slots.set(key, (s = { n: 0, waiters: [] }));
    const slot = s;
    while (slot.n >= limit) await new Promise<void>((r) => slot.waiters.push(r));
    slot.n++;
    try {
      return await fn();
    } finally {
      slot.n--;
      slot.waiters.shift()?.();
      if (slot.n === 0 && slot.waiters.length === 0) slots.delete(key);
    }
  };
}

export interface Dispatcher {
  jobs: Record<string, JobHandler>;
  process(apiSpaceId: string, id: string): Promise<void>;
  /**
   * Messages just committed whose dispatch job this process runs next (`LocalJobs`): their first
   * group uses these rows instead of reading them back. A copy that went stale meanwhile is caught
   * by the revision check of the write, as for any read.
   */
  prime(messages: readonly Message[]): void;
}

/** Most primed messages held, and for how long (each is normally taken by the job that follows at once). */
const PRIMED_MAX = 20_000;
const PRIMED_MS = 10_000;

export function createDispatcher(ctx: ModuleContext, mutator: Mutator, ports: Ports): Dispatcher {
  const { clock, log } = ctx;
  const withCap = createCaps();
  const pacer = createPacer(ctx.db, ctx.handle.dialect, clock);
  const hostParts = partHosting(ctx);

  async function resolveRecipient(m: Message): Promise<Recipient> {
    const to = (m.request.to ?? {}) as Record<string, string>;
    const profiles = ports.profiles();
    const space = m.row.api_space_id;
    if (!profiles) return { to, profileId: to.profileId };
    try {
      let read: { profile: ProfileDocument; primary?: ProfileDocument } | undefined;
      if (to.profileId) {
        // §2.2 rule 1: the profile is created when missing and the other identifiers are written onto it.
        const ids = Object.fromEntries(Object.entries(to).filter(([k]) => k !== 'profileId'));
        const { profile, created } = await profiles.ensure(space, to.profileId, ids, m.row.created_by);
        const diff = Object.fromEntries(Object.entries(ids).filter(([k, v]) => profile[k] !== v));
        if (!created && Object.keys(diff).length) await profiles.merge(space, to.profileId, diff, m.row.created_by);
        read = await profiles.resolveForMessaging(space, to.profileId);
      } else {
        for (const f of IDENTIFIERS) {
          if (!to[f]) continue;
          const p = await profiles.findByIdentifier(space, f, to[f]!);
          if (p) {
            read = (await profiles.resolveForMessaging(space, p.id)) ?? { profile: p };
            break;
          }
        }
      }
      return { to, profileId: read?.profile.id ?? to.profileId, profile: read?.profile, primary: read?.primary };
    } catch (err) {
      log.warn({ err, messageId: m.row.id }, 'profile resolution failed; sending with the identifiers in `to` only');
      return { to, profileId: to.profileId };
    }
  }

  /**
   * Identifiers the provider resolved for a send (`learned`: X's user id for a screen name,
   * channels.md §8) go onto the profile the message was addressed through, so later sends need no
   * look-up. A value the profile already holds stays, even a different one: it came from the
   * customer or from an inbound message, and a screen name can pass to another account. Best
   * effort: the message was accepted either way.
   */
  async function remember(space: string, r: Recipient, learned: Record<string, string>): Promise<void> {
    const profiles = ports.profiles();
    if (!profiles || !r.profileId || !r.profile) return;
    try {
      const current = (await profiles.get(space, r.profileId))?.profile;
      if (!current) return;
      const fresh = Object.fromEntries(Object.entries(learned).filter(([k]) => current[k] === undefined));
      const kept = Object.keys(learned).filter((k) => current[k] !== undefined && current[k] !== learned[k]);
      if (kept.length) log.info({ apiSpaceId: space, profileId: r.profileId, fields: kept }, 'the profile keeps its own value of an identifier the channel resolved differently');
      if (Object.keys(fresh).length) await profiles.merge(space, r.profileId, fresh, 'system');
    } catch (err) {
      log.warn({ err, apiSpaceId: space, profileId: r.profileId }, 'an identifier the channel resolved could not be stored on the profile');
    }
  }

  /**
   * A recipient's property from `to`, the profile, then its primary: a dot path (a custom channel's
   * `userIdProperty` may be nested, channels.md §11); a non-empty string, or a number as text.
   */
  const lookup = (r: Recipient, path: string): string | undefined => {
    for (const src of [r.to, r.profile, r.primary]) {
      const v = valueAt(src, path);
      if (typeof v === 'string' && v !== '') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    }
    return undefined;
  };

  function addressFor(ch: string, config: ChannelConfigView, r: Recipient): { key: string; value: string } | null | undefined {
    switch (ch) {
      case 'sms': case 'mms': case 'whatsApp': case 'rcs': {
        const v = lookup(r, 'phoneNumber');
        const n = v && normalisePhone(v);
        return n ? { key: 'phoneNumber', value: n } : undefined;
      }
      case 'email': { const v = lookup(r, 'email'); return v ? { key: 'email', value: v } : undefined; }
      case 'fbMessenger': {
        const v = lookup(r, 'fbMessengerId');
        if (v) return { key: 'fbMessengerId', value: v };
        // Customer matching by phone number, where the channel allows it (channels.md §7).
        const phone = config.settings?.customerMatching === true ? lookup(r, 'phoneNumber') : undefined;
        const n = phone && normalisePhone(phone);
        return n ? { key: 'phoneNumber', value: n } : undefined;
      }
      case 'twitterDm': {
        const id = lookup(r, 'twitterId');
        if (id) return { key: 'twitterId', value: id };
        const sn = lookup(r, 'twitterScreenName');
        return sn ? { key: 'twitterScreenName', value: sn } : undefined;
      }
      case 'appMessaging': case 'nativePush': return r.profileId ? { key: 'profileId', value: r.profileId } : undefined;
      default: {
        const prop = config.settings?.userIdProperty;
        if (typeof prop !== 'string' || !prop) return null; // the channel needs no address property
        const v = prop === 'profileId' ? r.profileId : lookup(r, prop);
        return v ? { key: prop, value: v } : undefined;
      }
    }
  }

  const mergeContext = (m: Message, r: Recipient): MergeContext => ({ profile: (r.profile ?? r.to) as Record<string, unknown>, profileId: r.profileId, metadata: m.request.metadata });
  /** The metadata as events carry it: merge fields substituted for the recipient (one-api.md §2.5.4). */
  const metadataFor = (m: Message, r: Recipient): unknown => (m.request.metadata === undefined ? undefined : mergeDeep(m.request.metadata, mergeContext(m, r)));

  function render(ch: string, m: Message, r: Recipient, template: Record<string, unknown> | undefined): Rendered | undefined {
    const req = m.request;
    const mctx = mergeContext(m, r);
    const title = typeof req.title === 'string' ? mergeString(req.title, mctx) : undefined;
    let body = typeof req.body === 'string' ? mergeString(req.body, mctx) : undefined;
    const source = (template ? template.messageParts : req.messageParts) as Part[] | undefined;
    const parts = (source ?? [])
      .filter((p) => !p.channels || p.channels.includes(ch))
      .map((p) => (typeof p.data === 'string' && /^text\//.test(p.type) ? { ...p, data: mergeString(p.data, mctx) } : p));
    if (body === undefined) body = parts.find((p) => p.type === 'text/plain' && typeof p.data === 'string')?.data as string | undefined;
    let htmlBody = parts.find((p) => p.type === 'text/html' && typeof p.data === 'string')?.data as string | undefined;
    const options = req.channelOptions?.[ch] !== undefined ? mergeDeep(req.channelOptions[ch] as Record<string, unknown>, mctx) : undefined;
    if (ch === 'email' && typeof options?.htmlBody === 'string') htmlBody = options.htmlBody;
    // A custom channel's customBody string is merged once, by its adapter, which also knows the
    // channel's own fields ({{userId}}, {{messageId}}…): merging it here too would re-scan values.
    const custom = req.customBody?.[ch] === undefined ? undefined : isCustomChannel(ch) ? req.customBody[ch] : mergeDeep(req.customBody[ch], { ...mctx, body, title });
    const metadata = metadataFor(m, r);
    if (custom === undefined && body === undefined && htmlBody === undefined && parts.length === 0) return undefined;
    if (custom === undefined) {
      if (ch === 'sms') {
        const links = parts.filter((p) => !/^text\//.test(p.type) && p.url).map((p) => p.url);
        const textLen = [body ?? '', ...links].join('\n').length;
        if (textLen === 0 || textLen > 2000) return undefined;
      }
      if (ch === 'nativePush' && (!title || !body)) return undefined;
    }
    return { title, body, htmlBody, parts, custom, options, metadata };
  }

  async function windowOpen(space: string, profileId: string | undefined, ch: string): Promise<boolean> {
    if (!profileId) return false;
    const row = await ctx.db.selectFrom('channel_windows').select('last_inbound_at')
      .where('api_space_id', '=', space).where('profile_id', '=', profileId).where('channel', '=', ch).executeTakeFirst();
    return !!row && clock.now() - Number(row.last_inbound_at) < WINDOW_MS;
  }

  type Evaluation = { skip: string } | { adapter: ChannelAdapter; input: SendInput; rendered: Rendered; limits?: ChannelLimits };

  /** Look-ups shared by the messages of one job (a batch chunk usually names one channel). */
  interface Memo {
    adapters: Map<string, ReturnType<ChannelRegistry['adapter']>>;
    templates: Map<string, Promise<Record<string, unknown> | undefined>>;
  }
  const newMemo = (): Memo => ({ adapters: new Map(), templates: new Map() });

  async function evaluate(m: Message, ch: string, r: Recipient, template: Record<string, unknown> | undefined, memo: Memo): Promise<Evaluation> {
    const space = m.row.api_space_id;
    const registry = ports.channels();
    if (!registry) return { skip: 'NotConfigured' };
    let lookup = memo.adapters.get(ch);
    if (!lookup) memo.adapters.set(ch, (lookup = registry.adapter(space, ch)));
    const found = await lookup;
    if ('missing' in found) return { skip: 'NotConfigured' };
    const address = addressFor(ch, found.config, r);
    if (address === undefined) return { skip: 'NoAddress' };
    const optIn = (r.profile?._optIn as Record<string, unknown> | undefined)?.[ch];
    if (optIn === false) return { skip: 'OptedOut' };
    if (m.request.requireOptIn) {
      const profiles = ports.profiles();
      if (!r.profile || !profiles || !(await profiles.isOptedIn(space, r.profile.id, ch))) return { skip: 'NotOptedIn' };
    }
    const rendered = render(ch, m, r, template);
    if (!rendered) return { skip: 'ContentNotSupported' };
    if (ch === 'whatsApp' && rendered.custom === undefined && !rendered.parts.some((p) => p.type === 'whatsapp/template') && !(await windowOpen(space, r.profileId, ch))) return { skip: 'OutsideWindow' };
    if (ch === 'fbMessenger' && !rendered.options?.messageTag && !(await windowOpen(space, r.profileId, ch))) return { skip: 'OutsideWindow' };
    if (ch === 'nativePush') {
      const devices = r.profileId ? await ports.profiles()?.devices(space, r.profileId) : undefined;
      if (!devices?.some((d) => d.push)) return { skip: 'NoDevices' };
    }
    const to: Record<string, unknown> = {};
    for (const src of [r.primary, r.profile, r.to]) for (const [k, v] of Object.entries(src ?? {})) if (typeof v === 'string' && !k.startsWith('_')) to[k] = v;
    if (r.profileId) to.profileId = r.profileId;
    // A nested property (`crm.id`) stays where it is: the adapter reads the same path.
    if (address && !address.key.includes('.')) to[address.key] = address.value;
    const opts = rendered.options as Record<string, unknown> | undefined;
    let from = opts && opts.from !== undefined ? (typeof opts.from === 'object' ? opts.from as Record<string, unknown> : { from: opts.from }) : undefined;
    // appMessaging (§4.6): the sender defaults to the sending token's profile.
    if (ch === 'appMessaging' && typeof from?.profileId !== 'string' && m.row.sender_profile_id) from = { ...from, profileId: m.row.sender_profile_id };
    const overrides = (m.request.overrides as Record<string, unknown> | undefined)?.[ch];
    const input: SendInput = {
      apiSpaceId: space, messageId: m.row.id, channelId: ch, to,
      ...(from ? { from } : {}),
      actor: m.row.created_by,
      ...(overrides && typeof overrides === 'object' ? { overrides: overrides as Record<string, unknown> } : {}),
      title: rendered.title, body: rendered.body, htmlBody: rendered.htmlBody,
      messageParts: rendered.parts.map((p) => ({ type: p.type, name: p.name, url: p.url, size: p.size, data: p.data === undefined ? undefined : typeof p.data === 'string' ? p.data : JSON.stringify(p.data) })),
      customBody: rendered.custom, options: opts,
      expiresOn: m.row.expires_at === null ? undefined : Number(m.row.expires_at),
      metadata: rendered.metadata, conversationId: m.row.conversation_id ?? undefined,
      profile: r.profile,
    };
    if (isCustomChannel(ch)) delete input.options;
    return { adapter: found.adapter, input, rendered, limits: found.config.limits };
  }

  const dispatchable = (m: Message, startNext: number) =>
    !m.row.deleted && !m.state.cancelled && m.state.next === startNext && (m.row.status === 'processing' || m.row.status === 'retrying');

  /** Final failure after every channel was tried (§2.3 step 4) or expiry (§4.4). */
  function finishChange(m: Message, pending: Attempt[], expired: boolean, metadata: unknown): Change {
    const attempts = [...(m.details.attempts ?? []), ...pending];
    if (expired) {
      return { status: 'expired', details: { ...m.details, attempts, nextAttemptOn: undefined, failureReason: 'The message expired before a channel accepted it', errorCode: 'Expired' }, events: [{ status: 'expired', channel: null, failureReason: 'The message expired before a channel accepted it', errorCode: 'Expired', metadata }] };
    }
    const skips = attempts.filter((a) => a.outcome !== 'TimedOut' && a.outcome !== 'failed');
    const filtered = skips.length > 0 && skips.every((a) => a.outcome === 'skipped' && OPT_REASONS.has(a.reason ?? ''));
    const status = filtered ? 'filtered' : 'failed';
    const last = attempts[attempts.length - 1];
    const errorCode = last?.reason ?? 'NoChannel';
    const failureReason = attempts.length
      ? `No channel could take the message (${attempts.map((a) => `${a.channel}: ${a.reason ?? a.outcome}`).join(', ')})`
      : 'No channel to try';
    return { status, details: { ...m.details, attempts, nextAttemptOn: undefined, failureReason, errorCode }, events: [{ status, channel: null, failureReason, errorCode, metadata }] };
  }

  /**
   * `completeIn` (single-message jobs): the job is deleted in the transaction that records the
   * outcome, one write fewer per message and no window where the outcome is stored but the job not.
   */
  type Collect = (step: MutationItem['step'], known: Message) => void;
  /** `paced`: the rule index at which this run holds a pacing slot already (the job written back to wait for it). */
  async function process(apiSpaceId: string, id: string, memo: Memo = newMemo(), completeIn?: (tx: Tx) => Promise<void>, group?: { preloaded: Message | undefined; collect: Collect }, paced?: number): Promise<void> {
    const m = group ? group.preloaded : await loadMessage(ctx.db, apiSpaceId, id);
    if (!m || !dispatchable(m, m.state.next)) return;
    const startNext = m.state.next;
    const recipient = await resolveRecipient(m);
    const templateId = m.request.templateId as string | undefined;
    let template: Record<string, unknown> | undefined;
    if (templateId) {
      let t = memo.templates.get(templateId);
      if (!t) memo.templates.set(templateId, (t = ports.templates()?.get(apiSpaceId, templateId) ?? Promise.resolve(undefined)));
      template = await t;
    }
    const pending: Attempt[] = [];
    let next = startNext;
    let retries = m.state.retries;
    // A concurrent worker that already moved past `startNext`, a deletion or a final status wins.
    // In a group the step is only collected: the group writes every outcome in one transaction.
    const commit = async (build: (cur: Message) => Change): Promise<void> => {
      const step = (cur: Message) => (!cur.row.deleted && !cur.state.cancelled && cur.state.next === startNext && !FINAL.has(cur.row.status)
        ? { change: { profileId: recipient.profileId ?? cur.row.profile_id, ...build(cur), ...(completeIn ? { also: completeIn } : {}) }, result: true }
        : { result: false });
      if (group) group.collect(step, m);
      else await mutator.mutate(apiSpaceId, id, step, m);
    };

    for (;;) {
      const now = clock.now();
      if (m.row.expires_at !== null && now >= Number(m.row.expires_at)) {
        await commit((cur) => ({ ...finishChange(cur, pending, true, metadataFor(cur, recipient)), state: { ...cur.state, next, retries: 0 } }));
        return;
      }
      if (next >= m.state.rules.length) {
        await commit((cur) => ({ ...finishChange(cur, pending, false, metadataFor(cur, recipient)), state: { ...cur.state, next, retries: 0 } }));
        return;
      }
      const ch = m.state.rules[next]!;
      const ev = await evaluate(m, ch, recipient, template, memo);
      if ('skip' in ev) {
        pending.push({ channel: ch, outcome: 'skipped', reason: ev.skip, at: iso(now) });
        next++;
        retries = 0;
        continue;
      }
      const perSecond = ev.limits?.messagesPerSecond;
      if (perSecond !== undefined && paced !== next) {
        const at = await pacer.slot(apiSpaceId, ch, perSecond);
        const wait = at - clock.now();
        if (wait > PACE_HOLD_MS) {
          // Back to the queue until the slot, with the channels passed so far recorded; the job
          // that runs then holds the slot and does not take another.
          const idx = next;
          const runAt = m.row.expires_at === null ? at : Math.min(at, Number(m.row.expires_at));
          await commit((cur) => ({
            state: { ...cur.state, next: idx, retries },
            ...(pending.length ? { details: { ...cur.details, attempts: [...(cur.details.attempts ?? []), ...pending] } } : {}),
            jobs: [{ kind: 'message.dispatch', apiSpaceId, payload: { v: 1, ids: [id], paced: idx }, runAt }],
          }));
          return;
        }
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      let outcome: SendOutcome;
      try {
        const send = hostParts.needed(ev.adapter, ev.input) ? async () => ev.adapter.send(await hostParts.host(ch, ev.input)) : () => ev.adapter.send(ev.input);
        outcome = await withCap(`${apiSpaceId}:${ch}`, ev.limits?.concurrency ?? CHANNEL_CAP, send);
      } catch (err) {
        outcome = { kind: 'transient', reason: err instanceof Error ? err.message : String(err) };
      }
      const at = iso(clock.now());
      if (outcome.kind === 'accepted') {
        const accepted = outcome;
        if (accepted.learned) await remember(apiSpaceId, recipient, accepted.learned);
        const idx = next;
        await commit((cur) => {
          const data = channelDataOf(ch, accepted.details);
          const { [ch]: _previous, ...otherData } = cur.state.channelData ?? {};
          const channelData = data ? { ...otherData, [ch]: data } : otherData;
          const state = { ...cur.state, next: idx + 1, current: idx, retries: 0, ...(Object.keys(channelData).length ? { channelData } : { channelData: undefined }) };
          const succeeded = !!state.fallbackAfter && rank(state.successStatus ?? 'delivered') <= rank('sent');
          if (succeeded) state.succeeded = true;
          const channelDetails = { ...(accepted.details ?? {}), ...(accepted.providerMessageId ? { providerMessageId: accepted.providerMessageId } : {}) };
          const toSent = cur.row.status === 'processing' || cur.row.status === 'retrying';
          const { nextAttemptOn: _n, ...details } = cur.details;
          return {
            status: toSent ? 'sent' : cur.row.status,
            channelId: ch,
            ...(cur.row.conversation_id === null && typeof accepted.details?.conversationId === 'string' ? { conversationId: accepted.details.conversationId } : {}),
            providerMessageId: accepted.providerMessageId ?? null,
            ...(accepted.providerMessageId ? { providerRef: { channel: ch, providerMessageId: accepted.providerMessageId } } : {}),
            state,
            rendered: { channel: ch, title: ev.rendered.title, body: ev.rendered.body, metadata: ev.rendered.metadata },
            details: {
              ...details, channelId: ch,
              attempts: [...(cur.details.attempts ?? []), ...pending, { channel: ch, outcome: 'accepted', at, ...(accepted.providerMessageId ? { providerMessageId: accepted.providerMessageId } : {}) }],
              channelStatus: { ...(cur.details.channelStatus ?? {}), [ch]: { status: 'sent', details: channelDetails, updatedOn: at } },
              ...(typeof accepted.details?.segmentCount === 'number' ? { segmentCount: accepted.details.segmentCount } : {}),
            },
            events: toSent ? [{ status: 'sent', channel: ch, channelDetails }] : [],
            jobs: state.fallbackAfter && !succeeded
              ? [{ kind: 'message.fallbackTimer', apiSpaceId, payload: { v: 1, id, index: idx }, runAt: clock.now() + state.fallbackAfter * 1000 }]
              : [],
          };
        });
        return;
      }
      if (outcome.kind === 'skipped') {
        pending.push({ channel: ch, outcome: 'skipped', reason: outcome.code, at, detail: outcome.reason } as Attempt);
        next++;
        retries = 0;
        continue;
      }
      if (outcome.kind === 'rejected') {
        pending.push({ channel: ch, outcome: 'rejected', reason: 'ProviderRejected', at, ...(outcome.code ? { providerCode: outcome.code } : {}), detail: outcome.reason } as Attempt);
        next++;
        retries = 0;
        continue;
      }
      if (retries < MAX_RETRIES) {
        const base = RETRY_SCHEDULE_MS[retries]!;
        let delay = Math.round(base * (0.8 + Math.random() * 0.4));
        if (outcome.retryAfterMs !== undefined) delay = Math.max(delay, outcome.retryAfterMs);
        let runAt = clock.now() + delay;
        if (m.row.expires_at !== null) runAt = Math.min(runAt, Number(m.row.expires_at));
        const idx = next;
        const reason = outcome.reason;
        await commit((cur) => ({
          status: 'retrying',
          state: { ...cur.state, next: idx, retries: retries + 1 },
          details: { ...cur.details, nextAttemptOn: iso(runAt), attempts: [...(cur.details.attempts ?? []), ...pending, { channel: ch, outcome: 'retrying', reason: 'ProviderError', at, detail: reason } as Attempt] },
          jobs: [{ kind: 'message.dispatch', apiSpaceId, payload: { v: 1, ids: [id] }, runAt }],
        }));
        return;
      }
      pending.push({ channel: ch, outcome: 'rejected', reason: 'ProviderError', at, detail: outcome.reason } as Attempt);
      next++;
      retries = 0;
    }
  }

  /** A job's messages, dispatched within one group. */
  interface GroupJob {
    space: string;
    ids: readonly string[];
    /** The job's completion, written with the outcomes (absent for a part of a batch job). */
    completeIn?: (tx: Tx, uow?: Uow) => Promise<void>;
    /** The rule index at which the job's (single) message holds a pacing slot. */
    paced?: number;
  }

  /**
   * Dispatches the messages of several jobs together: one read for all rows, shared look-ups,
   * sends in parallel (per-channel caps still apply), then ONE transaction recording every
   * outcome, its events and follow-up jobs, and the completion of each job whose messages were
   * all recorded. If that transaction fails (a lost lease, a conflict), each outcome is written on
   * its own as before, so one message cannot fail the rest, and each job whose messages all
   * succeeded is completed after them. Resolves to one settled result per job (its first failure).
   */
  const primed = new Map<string, { m: Message; at: number }>();

  async function runGroup(jobs: readonly GroupJob[]): Promise<PromiseSettledResult<void>[]> {
    const items = jobs.flatMap((j, job) => j.ids.map((id) => ({ space: j.space, id, job, paced: j.paced })));
    const memo = newMemo();
    const loaded = new Map<string, Message>();
    const bySpace = new Map<string, string[]>();
    for (const it of items) {
      let list = bySpace.get(it.space);
      if (!list) bySpace.set(it.space, (list = []));
      list.push(it.id);
    }
    try {
      for (const [space, ids] of bySpace) {
        const read: string[] = [];
        for (const id of ids) {
          const key = `${space}:${id}`;
          const hit = primed.get(key);
          if (hit) {
            primed.delete(key);
            loaded.set(key, hit.m);
          } else read.push(id);
        }
        if (read.length) for (const [id, m] of await loadMessages(ctx.db, space, read)) loaded.set(`${space}:${id}`, m);
      }
    } catch (err) {
      return jobs.map(() => ({ status: 'rejected', reason: err }));
    }
    const steps = new Map<number, MutationItem>();
    const ran: PromiseSettledResult<void>[] = await Promise.allSettled(items.map((it, i) => process(it.space, it.id, memo, undefined, {
      preloaded: loaded.get(`${it.space}:${it.id}`),
      collect: (step, known) => steps.set(i, { apiSpaceId: it.space, id: it.id, step, known }),
    }, it.paced)));
    const byJob = (): PromiseSettledResult<void>[] => jobs.map((_, k) => items.map((it, i) => (it.job === k ? ran[i]! : undefined)).find((r) => r?.status === 'rejected') ?? { status: 'fulfilled', value: undefined });
    const ok = items.flatMap((_, i) => (ran[i]!.status === 'fulfilled' ? [i] : []));
    if (ok.length === 0) return byJob();
    const done = byJob();
    try {
      await mutator.mutateAll(ok.flatMap((i) => steps.get(i) ?? []), async (tx, uow) => {
        for (let k = 0; k < jobs.length; k++) if (done[k]!.status === 'fulfilled') await jobs[k]!.completeIn?.(tx, uow);
      });
      return done;
    } catch (err) {
      log.debug({ err }, 'group dispatch commit failed; recording the outcomes one by one');
    }
    await Promise.all(ok.map(async (i) => {
      const s = steps.get(i);
      try {
        if (s) await mutator.mutate(s.apiSpaceId, s.id, s.step, s.known);
      } catch (err) {
        ran[i] = { status: 'rejected', reason: err };
      }
    }));
    const results = byJob();
    await Promise.all(jobs.map(async (j, k) => {
      // The rolled-back group may have marked the job complete: complete it for real here.
      const complete = j.completeIn;
      if (!complete || results[k]!.status !== 'fulfilled') return;
      try {
        await ctx.transaction(async (uow) => complete(uow.tx));
      } catch (err) {
        results[k] = { status: 'rejected', reason: err };
      }
    }));
    return results;
  }

  /** Jobs started together (one claim, or handed over by one commit) are gathered into groups. */
  let gathering: Array<GroupJob & { done: (r: PromiseSettledResult<void>) => void }> = [];
  let gathered = 0;
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    const batch = gathering;
    gathering = [];
    gathered = 0;
    if (!batch.length) return;
    void runGroup(batch).then(
      (rs) => batch.forEach((b, i) => b.done(rs[i]!)),
      (err) => batch.forEach((b) => b.done({ status: 'rejected', reason: err })),
    );
  };
  const gather = (job: GroupJob): Promise<void> => new Promise<void>((resolve, reject) => {
    // A job is never split: a group ends before the job that would take it past GROUP_MAX.
    if (gathered && gathered + job.ids.length > GROUP_MAX) flush();
    gathering.push({ ...job, done: (r) => (r.status === 'fulfilled' ? resolve() : reject(r.reason)) });
    gathered += job.ids.length;
    if (gathered >= GROUP_MAX) flush();
    else if (!flushQueued) {
      flushQueued = true;
      // A claim starts its jobs in one synchronous loop: a microtask sees all of them.
      queueMicrotask(flush);
    }
  });

  /** Throws a failure of a job's messages: the job runs again (a message already moved on is left as it is). */
  const failing = (r: PromiseSettledResult<void>, ids: readonly string[]) => {
    if (r.status === 'fulfilled') return;
    log.error({ err: r.reason, messageIds: ids }, 'message dispatch failed');
    throw r.reason;
  };

  const dispatchJob: JobHandler = async ({ job, completeIn }) => {
    const space = job.apiSpaceId!;
    const ids = (job.payload.ids ?? []) as string[];
    const paced = typeof job.payload.paced === 'number' ? job.payload.paced : undefined;
    // Single sends and the sends of one group commit: gathered with other jobs, completed with them.
    if (ids.length <= GROUP_MAX) return gather({ space, ids, completeIn, paced });
    // A batch chunk: groups of GROUP_MAX, two at a time; the worker completes the job at the end.
    let i = 0;
    const lane = async () => {
      while (i < ids.length) {
        const chunk = ids.slice(i, (i += GROUP_MAX));
        failing((await runGroup([{ space, ids: chunk }]))[0]!, chunk);
      }
    };
    await Promise.all(Array.from({ length: Math.min(2, Math.ceil(ids.length / GROUP_MAX)) }, lane));
  };

  /** Timed fallback (§2.3 step 6): the accepting channel did not reach `successStatus` in time. */
  const fallbackJob: JobHandler = async ({ job }) => {
    const space = job.apiSpaceId!;
    const { id, index } = job.payload as unknown as { id: string; index: number };
    await mutator.mutate(space, id, (m) => {
      const s = m.state;
      const reached = rank(m.row.status) >= rank(s.successStatus ?? 'delivered') && !FINAL.has(m.row.status) || m.row.status === 'read';
      if (m.row.deleted || s.cancelled || s.current !== index || s.succeeded || reached) return { result: false };
      const ch = s.rules[index];
      const attempts = [...(m.details.attempts ?? [])];
      for (let k = attempts.length - 1; k >= 0; k--) {
        if (attempts[k]!.channel === ch && attempts[k]!.outcome === 'accepted') { attempts[k] = { ...attempts[k]!, outcome: 'TimedOut' }; break; }
      }
      const { channelId: _c, ...details } = m.details;
      return {
        result: true,
        change: {
          status: 'processing', channelId: null, providerMessageId: null,
          state: { ...s, current: undefined, retries: 0 },
          details: { ...details, attempts },
          jobs: [{ kind: 'message.dispatch', apiSpaceId: space, payload: { v: 1, ids: [id] } }],
        },
      };
    });
  };

  return {
    jobs: { 'message.dispatch': dispatchJob, 'message.fallbackTimer': fallbackJob },
    process,
    prime(messages) {
      const now = clock.now();
      // Oldest first: drop what no job took (a job handed back at shutdown) before adding.
      for (const [key, { at }] of primed) {
        if (at > now - PRIMED_MS) break;
        primed.delete(key);
      }
      if (primed.size + messages.length > PRIMED_MAX) return;
      for (const m of messages) primed.set(`${m.row.api_space_id}:${m.row.id}`, { m, at: now });
    },
  };
}
