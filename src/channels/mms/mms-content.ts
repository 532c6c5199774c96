/**
 * What one MMS carries (channels.md §3): a subject, a text and media attached by URL, taken from
 * `customBody.mms` as written or from the send's title, body and parts; and the limits (text
 * ≤ 5000 characters, media ≤ 1 MB in total where sizes are known).
 */
import type { SendInput } from '../adapter.js';

export const MMS_MAX_CHARACTERS = 5000;
/** "1 MB" (channels.md §3) read as 1 000 000 bytes, the stricter reading. */
export const MMS_MAX_MEDIA_BYTES = 1_000_000;

export interface MmsMedia {
  url: string;
  /** Bytes, when the part said so. */
  size?: number;
}

export interface MmsContent {
  subject: string;
  text: string;
  media: MmsMedia[];
}

export type MmsContentResult = { ok: true; content: MmsContent } | { ok: false; code: string; reason: string };

/** Images, audio, video and vCards travel as MMS media. */
export function isMmsMedia(type: string | undefined): boolean {
  const t = (type ?? '').split(';')[0]!.trim().toLowerCase();
  return /^(image|audio|video)\//.test(t) || t === 'text/vcard' || t === 'text/x-vcard';
}

const isHttpUrl = (v: unknown): v is string => typeof v === 'string' && /^https?:\/\/\S+$/i.test(v);

/**
 * The MMS of a send. `customBody.mms` is taken as it stands (`subject`, `body`, `mediaUrls`).
 * Otherwise: `title` → subject; `body` (or the first `text/plain` part) → text; media parts by URL;
 * parts MMS cannot attach (documents, …) are appended to the text as their URLs, one per line, as
 * SMS does. A media part with inline data has no URL to give the gateway: the send is refused
 * rather than sent without it, so Branch can try the next channel.
 */
export function mmsContent(input: SendInput): MmsContentResult {
  const custom = (input.customBody ?? undefined) as Record<string, unknown> | undefined;
  if (custom) {
    const urls = Array.isArray(custom.mediaUrls) ? custom.mediaUrls.filter(isHttpUrl) : [];
    return checked({ subject: typeof custom.subject === 'string' ? custom.subject : '', text: typeof custom.body === 'string' ? custom.body : '', media: urls.map((url) => ({ url })) });
  }
  const parts = input.messageParts ?? [];
  let text = input.body ?? parts.find((p) => (p.type ?? '').startsWith('text/plain') && typeof p.data === 'string')?.data ?? '';
  const media: MmsMedia[] = [];
  for (const p of parts) {
    if (isMmsMedia(p.type)) {
      if (p.url) media.push({ url: p.url, ...(typeof p.size === 'number' ? { size: p.size } : {}) });
      else if (p.data !== undefined) return { ok: false, code: 'ContentNotSupported', reason: `MMS media needs a URL: upload the ${p.type} part to the Content API and send its URL` };
    } else if (p.url && !(p.type ?? '').startsWith('text/')) text += (text ? '\n' : '') + p.url;
  }
  return checked({ subject: input.title ?? '', text, media });
}

function checked(content: MmsContent): MmsContentResult {
  if (!content.subject && !content.text && !content.media.length) return { ok: false, code: 'ContentNotSupported', reason: 'No subject, text or media to send' };
  return { ok: true, content };
}

/**
 * Whether the media certainly exceed 1 MB. `knownSize` gives the size of a file the Content API
 * holds (authoritative); otherwise a part's own `size` counts. A URL of unknown size counts as 0:
 * it is not fetched to be measured, and the gateway enforces its own limit.
 */
export async function mediaTooLarge(media: readonly MmsMedia[], knownSize: (url: string) => Promise<number | undefined>): Promise<boolean> {
  let total = 0;
  for (const m of media) {
    total += (await knownSize(m.url)) ?? m.size ?? 0;
    if (total > MMS_MAX_MEDIA_BYTES) return true;
  }
  return false;
}
