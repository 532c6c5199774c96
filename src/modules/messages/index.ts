import type { ModuleDefinition } from '../module.js';
import type { MessagesApi } from './messages.contract.js';
import type { ChannelRegistry } from '../channels/channels.contract.js';
import type { ProfileDirectory } from '../profiles/profiles.contract.js';
import { createIdempotency } from '../../http/idempotency.js';
import { iso } from '../../lib/clock.js';
import { AppError } from '../../http/errors.js';
import { messagesMigrations } from './messages.migrations.js';
import { createMutator, type Message } from './messages.repo.js';
import { createRuleSets, ruleSetRoutes } from './rulesets.js';
import { createOutbound } from './messages.service.js';
import { createDispatcher, type MessageCopies, type Ports, type TemplatesLookup } from './dispatch.js';
import { createForget } from './forget.js';
import { createInbound, type InboundHook } from './inbound.js';
import { createHistory } from './history.js';
import { messagesRoutes } from './messages.routes.js';

/*
 * The One API (one-api.md). Choices made here beyond the spec's text:
 * - Accepting a send writes the message rows and their first dispatch jobs in one transaction and
 *   nothing else; profile upserts (§2.2 rule 1), profile look-ups, rendering and merge fields
 *   happen in the dispatch worker. A batch is stored as one envelope row and expanded into message
 *   rows by its job, or by the first read that needs one of its messages (batches.ts).
 * - `status: "failed"` at acceptance only when no listed channel is configured (§3.1).
 * - `customBody.sms.deliverAfter` delays the whole message when `sms` is listed (sms.md §5);
 *   DELETE cancels it while it waits.
 * - Message and inbound ids are UUID v4 in form with a leading time component (messages.repo.ts).
 * - Timed fallback and fallbackOnFailure restart Branch with the message back in `processing`
 *   (no event); the last accepted channel's receipts drive the status, earlier ones are only
 *   recorded on their attempt.
 * - Forgetting a profile (profiles.md §3.5) runs as a durable `messages.forgetProfile` job: its
 *   messages are redacted, lose `to` and the profile link, and one still waiting for a channel
 *   fails with `NoAddress` instead of being sent (dispatch would recreate the profile).
 * - `channelData.<channel>` of the events is kept from the accepting send (state), so receipts'
 *   events carry it too (sms: country, segments, encoding, sender).
 */

/** `services.messages`: the contract plus the inbound rules seam (§5 steps 5–6). */
export interface MessagesService extends MessagesApi {
  onInbound(hook: InboundHook): void;
}

declare module '../services.js' {
  interface Services {
    messages: MessagesService;
  }
}

export const messagesModule: ModuleDefinition = {
  name: 'messages',
  migrations: messagesMigrations,
  setup(ctx) {
    // Read at call time: the profiles and channels modules are set up before this one, and tests
    // may install a registry of their own.
    // App Messaging is set up after this module: its copies are looked up when a redaction runs.
    const services = ctx.services as unknown as { profiles?: ProfileDirectory; channels?: ChannelRegistry; templates?: TemplatesLookup; appMessaging?: MessageCopies };
    const ports: Ports = { profiles: () => services.profiles, channels: () => services.channels, templates: () => services.templates, copies: () => services.appMessaging };
    // Messages of a batch still in its envelope are written before any read or change needs them.
    const mutator = createMutator(ctx, { missing: (space, id) => outbound.pending.ensureMessage(space, id) });
    const ruleSets = createRuleSets(ctx);
    const dispatcher = createDispatcher(ctx, mutator, ports);
    const outbound = createOutbound(ctx, mutator, ruleSets, ports);
    // A dispatch job handed over at commit brings its messages as written: no read back.
    ctx.localJobs.receive('message.dispatch', (messages) => dispatcher.prime(messages as Message[]));
    ports.batches = () => outbound.pending;
    const inbound = createInbound(ctx, ports);
    const history = createHistory(ctx, ports);
    // A forgotten profile's messages are redacted and lose its identifiers (profiles.md §3.5).
    const forget = createForget(ctx, mutator, ports);
    services.profiles?.onDeleted(forget.onDeleted);
    const idempotency = createIdempotency({ db: ctx.db, clock: ctx.clock });

    const api: MessagesService = {
      async send(apiSpaceId, actor, request) {
        const [m] = await outbound.accept(apiSpaceId, actor, [request]);
        return { messageId: m!.row.id, status: m!.row.status };
      },
      async applyReceipt(apiSpaceId, channelId, report) {
        let id = report.messageId;
        if (!id && report.providerMessageId) {
          const row = await ctx.db.selectFrom('message_provider_refs').select('message_id')
            .where('api_space_id', '=', apiSpaceId).where('channel', '=', channelId).where('provider_message_id', '=', report.providerMessageId).executeTakeFirst();
          id = row?.message_id;
        }
        if (!id) return;
        try {
          await outbound.reportStatus(apiSpaceId, undefined, id, report.status, { channel: channelId, channelStatus: report.details, timestamp: report.at ? iso(report.at) : undefined });
        } catch (err) {
          if (!(err instanceof AppError && err.status < 500)) throw err; // unknown or foreign receipts are ignored
        }
      },
      async applyReadUpTo(apiSpaceId, channelId, read) {
        const entries = Object.entries(read.address);
        const profiles = services.profiles;
        if (entries.length !== 1 || !profiles) return;
        const [field, value] = entries[0]!;
        const profile = await profiles.findByIdentifier(apiSpaceId, field, value);
        if (!profile) return;
        // The most recent first: a watermark covers what came before it, and a later one only more.
        const rows = await ctx.db.selectFrom('messages').select('id').where('api_space_id', '=', apiSpaceId)
          .where('profile_id', '=', String(profile.id)).where('channel_id', '=', channelId).where('status', 'in', ['sent', 'delivered'])
          .where('deleted', '=', 0).where('submitted_at', '<=', read.before).orderBy('submitted_at', 'desc').limit(500).execute();
        for (const r of rows) await api.applyReceipt(apiSpaceId, channelId, { messageId: r.id, status: 'read', at: read.before });
      },
      async ingestInbound(apiSpaceId, report, uow) {
        const doc = await inbound.fromReport(apiSpaceId, report, uow);
        return { inboundMessageId: doc.messageId };
      },
      async redactBody(apiSpaceId, messageId) {
        await outbound.redact(apiSpaceId, 'system', messageId, 'message').catch((err) => {
          if (!(err instanceof AppError && err.status === 404)) throw err;
        });
      },
      onInbound: (hook) => inbound.onInbound(hook),
    };
    ctx.services.messages = api;
    services.channels?.setSink({
      receipt: (apiSpaceId, channelId, report) => api.applyReceipt(apiSpaceId, channelId, report),
      inbound: async (apiSpaceId, report) => { await api.ingestInbound(apiSpaceId, report); },
      readUpTo: (apiSpaceId, channelId, read) => api.applyReadUpTo(apiSpaceId, channelId, read),
    });

    let purge: NodeJS.Timeout | undefined;
    return {
      async routes(app) {
        await messagesRoutes({ outbound, inbound, history, idempotency })(app);
        await ruleSetRoutes(ruleSets)(app);
      },
      jobs: {
        ...dispatcher.jobs,
        ...forget.jobs,
        'message.batch': async ({ job }) => {
          await outbound.expandBatch(job.apiSpaceId!, String(job.payload.batch));
        },
      },
      start() {
        purge = setInterval(() => void idempotency.purge().catch(() => {}), 3_600_000);
        purge.unref();
      },
      stop() {
        if (purge) clearInterval(purge);
      },
    };
  },
};
