import type { ChannelAdapter, InboundReport } from '../../channels/adapter.js';
import { SYSTEM_ACTOR } from '../../auth/actor.js';
import type { Job } from '../../delivery/queue.js';
import { RetryLater } from '../../delivery/worker.js';
import { MAX_CONTENT_BYTES, type ContentApi } from '../content/content.contract.js';
import type { ModuleContext } from '../module.js';

/** Runs of the report job that wait for a provider's media before the message is stored without it. */
export const MEDIA_ATTEMPTS = 4;

/**
 * Inbound media that only the provider can serve (a WhatsApp media id, a Messenger attachment's
 * expiring URL; `ChannelAdapter.fetchMedia`) is fetched by the `channels.report` job before the
 * inbound message is stored, and kept with the Content API in the folder `inbound` (purged with
 * the space's other files after `contentDays`): the stored part gets that file's `url` and `size`.
 * A provider that keeps failing delays the message for at most MEDIA_ATTEMPTS runs of the job;
 * then, as for media the provider refuses or the Content API will not keep (type, size), the part
 * is stored as the provider described it. The message is never lost for its media.
 */
export function inboundMedia(ctx: ModuleContext) {
  return async (job: Job, adapter: ChannelAdapter | undefined, inbound: InboundReport, signal: AbortSignal): Promise<InboundReport> => {
    const parts = inbound.messageParts;
    const content = ctx.services.content as ContentApi | undefined;
    if (!parts?.length || !adapter?.fetchMedia || !content) return inbound;
    const space = job.apiSpaceId!;
    const kept: Array<Record<string, unknown>> = [];
    for (const part of parts) {
      const got = await adapter.fetchMedia(part, { maxBytes: MAX_CONTENT_BYTES, signal });
      if (got?.kind === 'transient' && job.attempts < MEDIA_ATTEMPTS) {
        throw new RetryLater(`inbound media: ${got.reason}`, got.retryAfterMs !== undefined ? ctx.clock.now() + got.retryAfterMs : undefined);
      }
      if (!got || got.kind !== 'fetched') {
        if (got) ctx.log.info({ apiSpaceId: space, channelId: inbound.channelId, code: got.code, reason: got.reason }, 'inbound media not fetched: the part keeps the provider\'s reference');
        kept.push(part);
        continue;
      }
      // The type the file was served with, unless it says nothing (Messenger's attachment types are coarse: any image, say).
      const served = got.type?.split(';')[0]!.trim().toLowerCase();
      const type = served && served !== 'application/octet-stream' ? served : typeof part.type === 'string' ? part.type : 'application/octet-stream';
      const name = typeof part.name === 'string' && part.name ? part.name : 'attachment';
      try {
        const file = await content.upload({ actor: SYSTEM_ACTOR }, space, { name, type, bytes: got.bytes, folder: 'inbound' });
        kept.push({ ...part, type: file.type, url: file.url, size: file.size });
      } catch (err) {
        ctx.log.info({ apiSpaceId: space, channelId: inbound.channelId, err }, 'inbound media not kept by the Content API: the part keeps the provider\'s reference');
        kept.push(part);
      }
    }
    return { ...inbound, messageParts: kept };
  };
}
