/**
 * X API v2 direct-message provider for the `twitterDm` channel (channels.md §8): sends DMs
 * through `POST {x}/2/dm_conversations/with/{participant_id}/messages`, signed with OAuth 1.0a
 * user context or carrying an OAuth 2.0 user token (`bearerToken`), and reads the Account Activity
 * webhook: the CRC challenge, and `direct_message_events` verified with
 * `x-twitter-webhooks-signature`, which become inbound messages. X sends no delivery receipts, so a
 * sent message stays `sent`. One image, GIF or video goes with the text, uploaded through X's media
 * upload first (media.ts).
 */
import { createHmac } from 'node:crypto';
import type { AdapterContext, CallbackRequest, CallbackResult, ChannelAdapter, ChannelProvider, InboundReport, MediaFetch, SendInput, SendOutcome } from '../adapter.js';
import { asArray as arr, asObject as obj, asString as str, customObject, parseJson } from '../meta/graph.js';
import { header, jsonAnswer, queryValue, sameSecret } from '../meta/webhook.js';
import { classifyX, createXClient, idOf, isFailure } from './client.js';
import { dmEventsPoller, dmInbound, mediaPart } from './dm-events.js';
import { readMedia, uploadMedia, type MediaSource } from './media.js';

type Failure = { paramName: string; message: string };
type Json = Record<string, unknown>;

/** Text limit of a direct message (channels.md §1.1, §8). */
export const X_TEXT_LIMIT = 10_000;
const OAUTH1_KEYS = ['consumerKey', 'accessToken', 'accessTokenSecret'] as const;

/**
 * Checks the `xApi` settings; paramNames are relative to `settings`. `consumerSecret` is needed
 * in both modes: it keys the webhook's CRC answer and event signatures.
 */
export function validateXSettings(s: Record<string, unknown>): Failure[] {
  const out: Failure[] = [];
  if (!idOf(s.userId) || typeof s.userId !== 'string') out.push({ paramName: 'userId', message: 'Required: the X account\'s own user id (digits)' });
  if (!str(s.consumerSecret)) out.push({ paramName: 'consumerSecret', message: 'Required non-empty string (webhook CRC and signatures use it)' });
  if (s.inbound !== undefined && s.inbound !== 'webhook' && s.inbound !== 'poll') {
    out.push({ paramName: 'inbound', message: 'Must be "webhook" (Account Activity events, the default) or "poll" (GET /2/dm_events every minute)' });
  }
  if (s.bearerToken !== undefined && !str(s.bearerToken)) out.push({ paramName: 'bearerToken', message: 'Must be a non-empty string' });
  if (s.bearerToken === undefined) {
    for (const k of OAUTH1_KEYS) if (!str(s[k])) out.push({ paramName: k, message: 'Required non-empty string (or give bearerToken instead)' });
  } else {
    for (const k of OAUTH1_KEYS) if (s[k] !== undefined && typeof s[k] !== 'string') out.push({ paramName: k, message: 'Must be a string' });
  }
  return out;
}

/** Whether a part is media X would take as an attachment (image, GIF, video). */
const isMedia = (type: string | undefined): boolean => /^(image|video)\//i.test(type ?? '');

type Built = { ok: true; text: string; media?: MediaSource; droppedMedia: number } | { ok: false; code: string; reason: string };

/**
 * A DM's text and attachment: `customBody.twitterDm` `{text, mediaUrl}`, or the body and the first
 * image/GIF/video part (channels.md §8). Other parts with a URL travel as links in the text; X
 * takes one attachment, so further media without a URL is not sent (`mediaNotSent`).
 */
function buildContent(input: SendInput): Built {
  let text: string;
  let media: MediaSource | undefined;
  let dropped = 0;
  if (input.customBody !== undefined) {
    const custom = customObject(input.customBody);
    if (!custom || (custom.text !== undefined && typeof custom.text !== 'string') || (custom.mediaUrl !== undefined && typeof custom.mediaUrl !== 'string')) {
      return { ok: false, code: 'InvalidCustomBody', reason: 'customBody.twitterDm must be an object {"text", "mediaUrl"} with string values' };
    }
    text = (custom.text as string | undefined) ?? '';
    const url = str(custom.mediaUrl);
    if (url) media = { url };
  } else {
    const parts = input.messageParts ?? [];
    const first = parts.find((p) => isMedia(p.type) && (p.url || p.data));
    if (first) media = { ...(first.url ? { url: first.url } : { data: first.data }), type: first.type };
    const rest = parts.filter((p) => p !== first);
    dropped = rest.filter((p) => isMedia(p.type) && !p.url && p.data).length;
    text = [input.body ?? '', ...rest.filter((p) => p.url).map((p) => p.url!)].filter((t) => t !== '').join('\n');
  }
  if (text === '' && !media) return { ok: false, code: 'NoContent', reason: 'Nothing to send as an X direct message (no text or media)' };
  if ([...text].length > X_TEXT_LIMIT) return { ok: false, code: 'TextTooLong', reason: `X direct message text is longer than ${X_TEXT_LIMIT} characters` };
  return { ok: true, text, ...(media ? { media } : {}), droppedMedia: dropped };
}

/** A webhook `message_create` event (Account Activity, API v1.1 shape) as an inbound message. */
function toInbound(channelId: string, event: Json, users: Json): InboundReport | undefined {
  const create = obj(event.message_create);
  const sender = idOf(create.sender_id);
  if (!sender) return undefined;
  const data = obj(create.message_data);
  const media = obj(obj(data.attachment).media);
  const mediaUrl = str(media.media_url_https);
  // The screen name is not an identifier (it can change): it is kept with the raw event only.
  const screenName = str(obj(users[sender]).screen_name);
  return dmInbound(channelId, {
    sender, text: typeof data.text === 'string' ? data.text : undefined, parts: mediaUrl ? [mediaPart(media.type, mediaUrl)] : [],
    id: str(event.id), at: Number(event.created_timestamp), raw: screenName ? { ...event, sender_screen_name: screenName } : event,
  });
}

/** `xApiUrl`: the X API origin (X_API_URL); `pollIntervalMs`: between `dm_events` polls (X_POLL_INTERVAL_SECONDS). */
export interface XOptions { xApiUrl: string; pollIntervalMs: number }

/** The adapter for one `xApi` configuration. */
export function createXAdapter(ctx: AdapterContext, options: XOptions): ChannelAdapter {
  const s = ctx.settings;
  const userId = String(s.userId);
  const polling = s.inbound === 'poll';
  const consumerSecret = str(s.consumerSecret);
  const origin = options.xApiUrl.replace(/\/+$/, '');
  const client = createXClient(ctx);

  // Screen names resolved by this adapter (channels.md §8); an id does not change with the name.
  // The dispatcher also stores the id on the message's profile (`learned`); this cache serves
  // sends without one.
  const ids = new Map<string, string>();
  /** The user id of a screen name (`GET /2/users/by/username/{username}`), or why there is none. */
  async function resolve(name: string, signal: AbortSignal | undefined): Promise<string | SendOutcome> {
    const key = name.toLowerCase();
    const known = ids.get(key);
    if (known) return known;
    if (!/^\w{1,15}$/.test(name)) return { kind: 'rejected', code: 'NoAddress', reason: `"${name}" is not an X screen name` };
    const answer = await client.call({ method: 'GET', url: `${origin}/2/users/by/username/${name}`, signal });
    if (isFailure(answer)) return answer;
    const id = idOf(obj(obj(parseJson(answer.text)).data).id);
    if (answer.status === 200 && id) {
      if (ids.size >= 10_000) ids.clear();
      ids.set(key, id);
      return id;
    }
    if (answer.status === 200 || answer.status === 404) return { kind: 'rejected', code: 'NoAddress', reason: `No X user has the screen name "${name}"` };
    const outcome = classifyX(answer.status, answer.headers, answer.text);
    return outcome.kind === 'accepted' ? { kind: 'rejected', code: 'NoAddress', reason: `No X user has the screen name "${name}"` } : outcome;
  }

  return {
    ...(polling ? { poll: dmEventsPoller(ctx, client, origin, userId), pollIntervalMs: options.pollIntervalMs } : {}),
    async close() {
      client.close();
    },

    /** An inbound DM's media (the only inbound parts with a URL), read with the account's signature. */
    async fetchMedia(part, options): Promise<MediaFetch | undefined> {
      const link = str(part.url);
      return link ? client.download(link, options) : undefined;
    },

    async send(input: SendInput): Promise<SendOutcome> {
      const name = str(input.to.twitterScreenName)?.replace(/^@/, '');
      let to = idOf(input.to.twitterId);
      if (!to && name) {
        const found = await resolve(name, input.signal);
        if (typeof found !== 'string') return found;
        to = found;
      }
      if (!to) return { kind: 'rejected', code: 'NoAddress', reason: 'No X user id (twitterId) or screen name to send to' };
      const built = buildContent(input);
      if (!built.ok) return { kind: 'rejected', code: built.code, reason: built.reason };
      let mediaId: string | undefined;
      if (built.media) {
        const media = await readMedia(ctx, built.media, input.signal);
        if ('kind' in media) return media;
        const uploaded = await uploadMedia(client, origin, media, input.signal);
        if (typeof uploaded !== 'string') return uploaded;
        mediaId = uploaded;
      }
      const dm = { ...(built.text ? { text: built.text } : {}), ...(mediaId ? { attachments: [{ media_id: mediaId }] } : {}) };
      const answer = await client.call({ method: 'POST', url: `${origin}/2/dm_conversations/with/${to}/messages`, signal: input.signal, body: JSON.stringify(dm) });
      if (isFailure(answer)) return answer;
      const outcome = classifyX(answer.status, answer.headers, answer.text);
      if (outcome.kind !== 'accepted') return outcome;
      const resolved = name && !idOf(input.to.twitterId);
      return {
        ...outcome, ...(resolved ? { learned: { twitterId: to } } : {}),
        details: { to, ...(resolved ? { resolvedFrom: name } : {}), ...outcome.details, ...(mediaId ? { mediaId } : {}), ...(built.droppedMedia ? { mediaNotSent: built.droppedMedia } : {}) },
      };
    },

    async handleCallback(req: CallbackRequest): Promise<CallbackResult> {
      if (req.method === 'GET') {
        const crc = queryValue(req, 'crc_token');
        if (!crc) return jsonAnswer(400, 'InvalidRequest', 'crc_token is required');
        if (!consumerSecret) return jsonAnswer(403, 'Forbidden', 'The channel has no consumer secret');
        const responseToken = `sha256=${createHmac('sha256', consumerSecret).update(crc).digest('base64')}`;
        return { status: 200, contentType: 'application/json', body: JSON.stringify({ response_token: responseToken }) };
      }
      const given = header(req, 'x-twitter-webhooks-signature') ?? '';
      const expected = consumerSecret ? `sha256=${createHmac('sha256', consumerSecret).update(req.rawBody).digest('base64')}` : '';
      if (!consumerSecret || !sameSecret(given, expected)) return { status: 401 };
      const doc = parseJson(req.rawBody.toString('utf8'));
      if (doc === undefined) return jsonAnswer(400, 'InvalidJson', 'The callback body is not valid JSON');
      const root = obj(doc);
      const inbounds: InboundReport[] = [];
      // Events for another subscribed account, and every other event kind, are acknowledged and
      // ignored; so is every event while the channel polls (polling reads the same messages).
      const forUser = root.for_user_id === undefined ? userId : idOf(root.for_user_id);
      if (forUser === userId && !polling) {
        const users = obj(root.users);
        for (const e of arr(root.direct_message_events)) {
          const event = obj(e);
          if (event.type !== 'message_create') continue;
          // The account's own messages (sent here or from X itself) come back as events too.
          if (idOf(obj(event.message_create).sender_id) === userId) continue;
          const i = toInbound(ctx.channelId, event, users);
          if (i) inbounds.push(i);
        }
      }
      return { status: 200, body: '{}', contentType: 'application/json', inbounds };
    },
  };
}

/**
 * The `twitterDm`/`xApi` provider. `xApiUrl` comes from X_API_URL so that a relay or a test peer
 * can stand in for `https://api.x.com`. A configuration with `inbound: "poll"` reads DMs with
 * `GET /2/dm_events` instead of taking Account Activity webhook events.
 */
export function xApiProvider(options: XOptions): ChannelProvider {
  return {
    channel: 'twitterDm',
    provider: 'xApi',
    secretSettings: ['consumerSecret', 'accessTokenSecret', 'accessToken', 'bearerToken'],
    validateSettings: validateXSettings,
    polls: (settings) => settings.inbound === 'poll',
    create: (ctx) => createXAdapter(ctx, options),
  };
}
