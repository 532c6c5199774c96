/**
 * Polling providers for inbound messages where there are no webhooks (channels.md §8: X
 * `GET /2/dm_events` every minute). Each polling configuration has one chain of durable
 * `channels.poll` jobs. A run asks the adapter what is new since the stored cursor, then, in one
 * transaction, deletes itself, queues the inbound messages, stores the new cursor (a space setting,
 * read by the next run) and queues the next run. A run whose lease was lost fails that commit,
 * so however often a run is repeated its messages are queued once, and a restart resumes from the
 * cursor. The chain (and its cursor) ends when the channel is deleted, disabled or stops polling;
 * a configuration change and every start make sure one runs (one live job per channel: its
 * dedupe key).
 */
import type { InboundReport } from '../../channels/adapter.js';
import type { JobHandler } from '../../delivery/worker.js';
import type { Uow } from '../../storage/uow.js';
import type { ModuleContext } from '../module.js';
import type { ChannelRegistry } from './channels.contract.js';
import type { ChannelsRepo } from './channels.repo.js';
import type { ProviderRegistry } from './channels.service.js';

export const POLL_JOB = 'channels.poll';
const DEFAULT_INTERVAL_MS = 60_000;

const cursorKey = (channelId: string) => `channels.pollCursor.${channelId}`;
const chainKey = (apiSpaceId: string, channelId: string) => `${apiSpaceId}:${channelId}`;

export interface PollingDeps {
  repo: ChannelsRepo;
  providers: ProviderRegistry;
  registry: Pick<ChannelRegistry, 'adapter'>;
  /** Queues inbound messages for processing in the caller's transaction (`channels.report` jobs). */
  queueInbound(uow: Uow, apiSpaceId: string, channelId: string, inbounds: InboundReport[]): Promise<void>;
}

export function createPolling(ctx: ModuleContext, deps: PollingDeps) {
  /** Starts the chain of a channel that polls, unless one runs already. */
  async function ensure(apiSpaceId: string, channelId: string): Promise<void> {
    const c = await deps.repo.get(apiSpaceId, channelId);
    if (!c?.enabled || !deps.providers.find(channelId, c.provider)?.polls?.(c.settings)) return;
    await ctx.queue.enqueueNow({ kind: POLL_JOB, apiSpaceId, payload: { v: 1, channelId, since: ctx.clock.now() }, dedupeKey: chainKey(apiSpaceId, channelId) });
  }

  const job: JobHandler = async ({ job, signal, completeIn }) => {
    const apiSpaceId = job.apiSpaceId!;
    const { channelId, since } = job.payload as { v: 1; channelId: string; since: number };
    const found = await deps.registry.adapter(apiSpaceId, channelId);
    const adapter = 'missing' in found ? undefined : found.adapter;
    const key = cursorKey(channelId);
    if (!adapter?.poll) {
      // Polling stopped (the channel was deleted, disabled or moved to webhooks): switched on again,
      // it starts from then, not from here (webhooks may have brought the messages in between).
      await ctx.services.settings.delete(apiSpaceId, key);
      return;
    }
    const stored = await ctx.services.settings.get<Record<string, unknown>>(apiSpaceId, key);
    const result = await adapter.poll({ ...(stored ? { cursor: stored.value } : {}), since }, signal);
    const runAt = ctx.clock.now() + Math.max(adapter.pollIntervalMs ?? DEFAULT_INTERVAL_MS, result.retryAfterMs ?? 0);
    await ctx.transaction(async (uow) => {
      // Deleted now, not at commit: the next run takes over the chain's dedupe key in this
      // transaction. A lost lease (another worker ran this poll meanwhile) throws and rolls back.
      await completeIn(uow.tx);
      if (result.inbounds.length) await deps.queueInbound(uow, apiSpaceId, channelId, result.inbounds);
      if (result.cursor) await ctx.services.settings.put(apiSpaceId, key, result.cursor, 'system', uow.tx);
      await ctx.queue.enqueue(uow, { kind: POLL_JOB, apiSpaceId, payload: { v: 1, channelId, since }, runAt, dedupeKey: chainKey(apiSpaceId, channelId) });
    });
  };

  return {
    ensure,
    job,
    /** Every enabled polling configuration gets its chain (lost with a dead job, or never started). */
    async start(): Promise<void> {
      for (const p of deps.providers.pollers()) {
        for (const c of await deps.repo.enabledByProvider(p.provider, p.channel)) await ensure(c.apiSpaceId, c.channelId);
      }
    },
  };
}
