/**
 * The channel registry (`services.channels`): adapters built from each space's configuration with
 * decrypted settings, cached by (space, channel, revision) and closed when the configuration
 * changes; provider callbacks; tracked links. Receipts and inbound messages from adapters are
 * queued as durable `channels.report` jobs and handed to the messages module's sink from there.
 */
import { randomBytes } from 'node:crypto';
import type { AdapterSink, CallbackRequest, CallbackResult, ChannelAdapter, InboundReport, OptinReport, ReadInbound, ReadUpTo, ReceiptReport } from '../../channels/adapter.js';
import type { ModuleContext } from '../module.js';
import type { Uow } from '../../storage/uow.js';
import type { JobHandler } from '../../delivery/worker.js';
import { RetryLater } from '../../delivery/worker.js';
import { iso } from '../../lib/clock.js';
import { AppError, errors } from '../../http/errors.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import type { ChannelConfigView, ChannelRegistry, MessageSink } from './channels.contract.js';
import type { ChannelsRepo, StoredConfig } from './channels.repo.js';
import { isBuiltIn, type ChannelConfigService, type ProviderRegistry } from './channels.service.js';
import { inboundMedia } from './inbound-media.js';

export const REPORT_JOB = 'channels.report';
/** Telling a provider that an inbound message was read (`ChannelAdapter.markRead`). */
export const MARK_READ_JOB = 'channels.markRead';

interface ReportPayload {
  v: 1;
  channelId: string;
  receipt?: ReceiptReport;
  inbound?: InboundReport;
  read?: ReadUpTo;
  optin?: OptinReport;
  [k: string]: unknown;
}

interface Cached {
  /** Revision plus creation time: a deleted and re-created configuration starts at revision 1 again. */
  version: string;
  adapter: Promise<ChannelAdapter | undefined>;
}

export interface ChannelRegistryImpl extends ChannelRegistry {
  /** Closes the cached adapter of a channel whose configuration changed or was deleted. */
  evict(apiSpaceId: string, channelId: string): void;
  handleCallback(apiSpaceId: string, channelId: string, request: CallbackRequest): Promise<CallbackResult>;
  /** Queues reports of a channel in the caller's transaction, one `channels.report` job each. */
  queueReports(uow: Uow, apiSpaceId: string, channelId: string, reports: Pick<CallbackResult, 'receipts' | 'inbounds' | 'reads' | 'optins'>): Promise<void>;
  /** Resolves a tracked-link token: the original URL (and records the click), or undefined. */
  click(token: string, userAgent: string | undefined): Promise<string | undefined>;
  reportJob: JobHandler;
  markReadJob: JobHandler;
  closeAll(): Promise<void>;
}

const APP_LINK = /^(?!(?:javascript|data|vbscript|file|blob|about):)[a-z][a-z0-9+.-]*:[^\s]+$/i;

export function createChannelRegistry(ctx: ModuleContext, deps: { repo: ChannelsRepo; providers: ProviderRegistry; configs: ChannelConfigService; optin?: (apiSpaceId: string, channelId: string, report: OptinReport) => Promise<void> }): ChannelRegistryImpl {
  const { repo, providers, configs } = deps;
  const cache = new Map<string, Cached>();
  let sink: MessageSink | undefined;
  const keyOf = (s: string, c: string) => `${s}\u0000${c}`;
  const withMedia = inboundMedia(ctx);

  /** One report job per receipt, inbound message, read watermark and opt-in, in the caller's transaction. */
  const enqueueReports = async (uow: Uow, apiSpaceId: string, channelId: string, r: Pick<CallbackResult, 'receipts' | 'inbounds' | 'reads' | 'optins'>) => {
    const payloads: ReportPayload[] = [
      ...(r.receipts ?? []).map((receipt) => ({ v: 1 as const, channelId, receipt })),
      ...(r.inbounds ?? []).map((inbound) => ({ v: 1 as const, channelId, inbound: { ...inbound, channelId: inbound.channelId || channelId } })),
      ...(r.reads ?? []).map((read) => ({ v: 1 as const, channelId, read })),
      ...(r.optins ?? []).map((optin) => ({ v: 1 as const, channelId, optin })),
    ];
    for (const payload of payloads) await ctx.queue.enqueue(uow, { kind: REPORT_JOB, apiSpaceId, payload });
  };

  const sinkFor = (apiSpaceId: string, channelId: string): AdapterSink => ({
    receipt: (report) => ctx.transaction((uow) => enqueueReports(uow, apiSpaceId, channelId, { receipts: [report] })),
    inbound: (report) => ctx.transaction((uow) => enqueueReports(uow, apiSpaceId, channelId, { inbounds: [report] })),
  });

  const closeQuietly = (entry: Cached | undefined) => {
    entry?.adapter.then((a) => a?.close?.()).catch((err) => ctx.log.warn({ err }, 'closing a channel adapter failed'));
  };

  /** The file id of a content-API URL of this server for the space, or undefined. */
  const contentIdOf = (apiSpaceId: string, url: string): string | undefined => {
    const prefix = `${ctx.config.publicBaseUrl}/apispaces/${apiSpaceId}/content/`;
    const id = url.startsWith(prefix) ? url.slice(prefix.length) : '';
    return /^[\w-]{1,64}$/.test(id) ? id : undefined;
  };

  /** `AdapterContext.readContent`: a content-API URL of this server for the space, read from its store. */
  async function localContent(apiSpaceId: string, url: string): Promise<{ bytes: Buffer; type: string } | null | undefined> {
    const id = contentIdOf(apiSpaceId, url);
    const content = ctx.services.content;
    if (!id || !content) return undefined;
    const found = await content.read(apiSpaceId, id);
    return found ? { bytes: found.bytes, type: found.file.type } : null;
  }

  /** `AdapterContext.contentSize`: the stored size of such a file. */
  async function localSize(apiSpaceId: string, url: string): Promise<number | undefined> {
    const id = contentIdOf(apiSpaceId, url);
    return id ? (await ctx.services.content?.describe(apiSpaceId, id))?.size : undefined;
  }

  /** The adapter for a stored configuration (undefined when its provider is not registered). */
  function instance(c: StoredConfig): Promise<ChannelAdapter | undefined> {
    const key = keyOf(c.apiSpaceId, c.channelId);
    const version = `${c.revision}|${c.createdOn}`;
    const hit = cache.get(key);
    if (hit && hit.version === version) return hit.adapter;
    const provider = providers.find(c.channelId, c.provider);
    // Not cached: the provider may still be registered later.
    if (!provider) return Promise.resolve(undefined);
    const adapter = Promise.resolve().then(() => provider.create({
      apiSpaceId: c.apiSpaceId, channelId: c.channelId, settings: configs.decrypted(c), sink: sinkFor(c.apiSpaceId, c.channelId),
      allowPrivateTargets: ctx.config.allowPrivateChannelTargets, publicBaseUrl: ctx.config.publicBaseUrl,
      trackLink: (url, messageId, metadata) => registry.trackLink(c.apiSpaceId, messageId, c.channelId, url, metadata),
      readContent: (url) => localContent(c.apiSpaceId, url),
      contentSize: (url) => localSize(c.apiSpaceId, url),
      log: ctx.log.child({ apiSpaceId: c.apiSpaceId, channelId: c.channelId, provider: c.provider }),
    }));
    const entry: Cached = { version, adapter };
    // A failed build is not cached: the next call tries again.
    adapter.catch(() => {
      if (cache.get(key) === entry) cache.delete(key);
    });
    cache.set(key, entry);
    closeQuietly(hit);
    return adapter;
  }

  /** The adapter of a stored configuration, enabled or not: receipts for earlier sends still arrive while a channel is disabled. */
  const configured = async (apiSpaceId: string, channelId: string) => {
    const c = await repo.get(apiSpaceId, channelId);
    return c ? instance(c) : undefined;
  };

  const configView = (c: StoredConfig): ChannelConfigView => {
    const v = configs.view(c);
    return { channelId: c.channelId, enabled: c.enabled, provider: c.provider, settings: v.settings, ...(c.limits ? { limits: c.limits } : {}), custom: !isBuiltIn(c.channelId), revision: c.revision };
  };

  const registry: ChannelRegistryImpl = {
    registerProvider(provider) {
      providers.register(provider);
    },

    async adapter(apiSpaceId, channelId) {
      const c = await repo.get(apiSpaceId, channelId);
      if (!c) {
        registry.evict(apiSpaceId, channelId);
        return { missing: 'unconfigured' };
      }
      if (!c.enabled) {
        registry.evict(apiSpaceId, channelId);
        return { missing: 'disabled' };
      }
      const adapter = await instance(c);
      if (!adapter) return { missing: 'unconfigured' };
      return { adapter, config: configView(c) };
    },

    async config(apiSpaceId, channelId) {
      const c = await repo.get(apiSpaceId, channelId);
      return c ? configView(c) : undefined;
    },

    listByProvider(provider, channelId) {
      return repo.enabledByProvider(provider, channelId);
    },

    async trackLink(apiSpaceId, messageId, channelId, url, metadata) {
      // A push notification's deep link is usually an app's own scheme (`shop://…`): the app's SDK
      // calls the tracked link when the notification is opened (channels.md §5). Schemes that
      // run or embed content in a browser are never redirected to.
      if (!/^https?:\/\/[^\s]+$/i.test(url) && !(channelId === 'nativePush' && APP_LINK.test(url))) return url;
      // 16 random bytes → exactly 22 base64url characters (channels.md §1.5).
      const token = randomBytes(16).toString('base64url');
      await repo.insertLink({
        token, api_space_id: apiSpaceId, message_id: messageId, channel_id: channelId, url,
        metadata: metadata === undefined ? null : toJson(metadata), created_on: iso(ctx.clock.now()),
      });
      return `${ctx.config.publicBaseUrl}/t/${token}`;
    },

    setSink(next) {
      sink = next;
    },

    queueReports: enqueueReports,

    evict(apiSpaceId, channelId) {
      const key = keyOf(apiSpaceId, channelId);
      const hit = cache.get(key);
      if (!hit) return;
      cache.delete(key);
      closeQuietly(hit);
    },

    async handleCallback(apiSpaceId, channelId, request) {
      let adapter: ChannelAdapter | undefined;
      try {
        adapter = await configured(apiSpaceId, channelId);
      } catch (err) {
        ctx.log.warn({ err, apiSpaceId, channelId }, 'channel adapter could not be built for a callback');
        throw errors.unavailable('The channel is not available right now', 30);
      }
      if (!adapter?.handleCallback) throw errors.notFound('Channel callback');
      let result: CallbackResult;
      try {
        result = await adapter.handleCallback(request);
      } catch (err) {
        // Adapters classify; anything they throw is a request they could not read, never a 500.
        if (err instanceof AppError) throw err;
        ctx.log.info({ err, apiSpaceId, channelId }, 'provider callback rejected');
        throw errors.invalidField('body', 'The callback could not be processed');
      }
      if (result.receipts?.length || result.inbounds?.length || result.reads?.length || result.optins?.length) {
        await ctx.transaction((uow) => enqueueReports(uow, apiSpaceId, channelId, result));
      }
      return result;
    },

    async click(token, userAgent) {
      const link = await repo.getLink(token);
      if (!link) return undefined;
      const space = await ctx.services.spaces.get(link.api_space_id);
      if (!space) return undefined;
      await ctx.transaction(async (uow) => {
        const clickedOn = iso(ctx.clock.now());
        await ctx.events.append(uow, {
          apiSpaceId: space.id, accountId: space.accountId, name: 'interaction.click',
          payload: { id: link.message_id, channel: link.channel_id, url: link.url, clickedOn, userAgent: userAgent ?? null, metadata: fromJson(link.metadata) ?? null },
          meta: { messageId: link.message_id, channel: link.channel_id },
        });
        // Opening a push notification's tracked deep link marks the message read (channels.md §5).
        if (link.channel_id === 'nativePush') {
          await enqueueReports(uow, space.id, link.channel_id, { receipts: [{ messageId: link.message_id, status: 'read', at: ctx.clock.now() }] });
        }
      });
      return link.url;
    },

    async reportJob({ job, signal }) {
      const p = job.payload as ReportPayload;
      if (!sink) throw new RetryLater('no message sink is registered yet', ctx.clock.now() + 5_000);
      if (p.receipt) await sink.receipt(job.apiSpaceId!, p.channelId, p.receipt);
      if (p.inbound) {
        const adapter = p.inbound.messageParts?.length ? await configured(job.apiSpaceId!, p.channelId).catch(() => undefined) : undefined;
        await sink.inbound(job.apiSpaceId!, await withMedia(job, adapter, p.inbound, signal));
      }
      if (p.read) await sink.readUpTo(job.apiSpaceId!, p.channelId, p.read);
      if (p.optin) await deps.optin?.(job.apiSpaceId!, p.channelId, p.optin);
    },

    async markReadJob({ job, signal }) {
      const { channelId, inbound } = job.payload as unknown as { channelId: string; inbound: ReadInbound };
      const found = await registry.adapter(job.apiSpaceId!, channelId);
      if ('missing' in found || !found.adapter.markRead) return;
      const outcome = await found.adapter.markRead(inbound, signal);
      if (outcome.kind === 'transient') throw new RetryLater(outcome.reason, outcome.retryAfterMs !== undefined ? ctx.clock.now() + outcome.retryAfterMs : undefined);
      if (outcome.kind === 'rejected') ctx.log.info({ apiSpaceId: job.apiSpaceId, channelId, reason: outcome.reason }, 'the provider refused a read receipt for an inbound message');
    },

    async closeAll() {
      const entries = [...cache.values()];
      cache.clear();
      await Promise.allSettled(entries.map(async (e) => (await e.adapter)?.close?.()));
    },
  };
  return registry;
}
