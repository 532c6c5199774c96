import type { ChannelAdapter, SendInput } from '../../channels/adapter.js';
import { SYSTEM_ACTOR } from '../../auth/actor.js';
import { TtlCache } from '../../lib/cache.js';
import type { ContentApi } from '../content/content.contract.js';
import { decodeBase64 } from '../content/content.service.js';
import type { ModuleContext } from '../module.js';

/** Parts whose inline `data` is a file (a `whatsapp/template` part's data is its definition). */
const FILE = /^(image|video|audio)\/|^application\/(?!json$)|^text\/(x-)?vcard$/i;

type Part = NonNullable<SendInput['messageParts']>[number];
const inlineFile = (p: Part) => p.data !== undefined && !p.url && FILE.test(p.type ?? '');

/**
 * Media sent inline (`messageParts[].data`, one-api.md §2.4.2) through an adapter whose provider
 * takes media by URL only (`ChannelAdapter.mediaByUrl`: WhatsApp, Messenger, RCS, MMS): the file
 * is stored with the Content API (folder `outbound`), whose download URL needs no credentials, and
 * the part is given that URL (`PUBLIC_BASE_URL` must be reachable by the provider, as it is for
 * callbacks). A retry in this process reuses the file it stored. A part the Content API refuses
 * (its type, its size) is passed on as it was, and the adapter treats it as before.
 */
export function partHosting(ctx: ModuleContext) {
  const hosted = new TtlCache<string, string>(3_600_000, 10_000);
  const content = () => ctx.services.content as ContentApi | undefined;
  return {
    /** Whether `host` has anything to do (checked without a promise on the dispatch path). */
    needed: (adapter: ChannelAdapter, input: SendInput): boolean => !!adapter.mediaByUrl && !!input.messageParts?.some(inlineFile) && !!content(),
    host: async (channel: string, input: SendInput): Promise<SendInput> => {
      const parts = input.messageParts ?? [];
      const out: Part[] = [];
      for (const [i, p] of parts.entries()) {
        if (!inlineFile(p)) {
          out.push(p);
          continue;
        }
        const key = `${input.messageId}:${i}`;
        let url = hosted.get(key);
        try {
          if (!url) {
            url = (await content()!.upload({ actor: SYSTEM_ACTOR }, input.apiSpaceId, { name: p.name || 'attachment', type: p.type!, bytes: decodeBase64(p.data!), folder: 'outbound' })).url;
            hosted.set(key, url);
          }
          out.push({ type: p.type, name: p.name, size: p.size, url });
        } catch (err) {
          ctx.log.info({ apiSpaceId: input.apiSpaceId, messageId: input.messageId, channel, err }, 'an inline part could not be stored for its URL: passed on as it was');
          out.push(p);
        }
      }
      return { ...input, messageParts: out };
    },
  };
}
