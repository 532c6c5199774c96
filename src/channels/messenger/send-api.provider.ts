/**
 * Messenger Platform Send API provider for the `fbMessenger` channel (channels.md §7): sends
 * through `POST {graph}/{apiVersion}/me/messages` with the page access token, and reads the page's
 * webhook (Meta's `hub.challenge` handshake and `X-Hub-Signature-256`, shared with WhatsApp):
 * deliveries become receipts, reads become read watermarks, messages and postbacks become inbound
 * messages, and opt-ins/referrals carrying a `/channels/facebook/state` string become opt-ins.
 * The 24-hour window is the dispatcher's business: an untagged send reaching this adapter is one
 * the dispatcher found inside the window.
 */
import type {
  AdapterContext, CallbackRequest, CallbackResult, ChannelAdapter, ChannelProvider, InboundReport, MediaFetch, OptinReport, ReadInbound, ReadUpTo, ReceiptReport, SendInput, SendOutcome,
} from '../adapter.js';
import { downloadMedia } from '../http-guard.js';
import { asArray as arr, asObject as obj, asString as str, createGraphPoster, customObject, parseJson, phoneDigits as digitsOf, type GraphErrors } from '../meta/graph.js';
import { jsonAnswer, signatureValid, verificationAnswer } from '../meta/webhook.js';

type Failure = { paramName: string; message: string };
type Json = Record<string, unknown>;

/** Text limit of a Send API text message (channels.md §1.1, §7). */
export const MESSENGER_TEXT_LIMIT = 2000;
const DEFAULT_API_VERSION = 'v21.0';
const MESSAGING_TYPES = new Set(['RESPONSE', 'UPDATE', 'MESSAGE_TAG']);
/** Messenger's own error for a message sent outside the allowed window (alone, or as the subcode of code 10). */
const OUTSIDE_WINDOW = 2018278;
/** Subcode of code 100: customer matching found nobody with that phone number. */
const NO_MATCHING_USER = 2018001;
const ERRORS: GraphErrors = {
  api: 'Send API',
  // Application, user, page and API-level throttling.
  throttle: new Set([4, 17, 32, 613]),
  rejection: (code, subcode) => (code === OUTSIDE_WINDOW || (code === 10 && subcode === OUTSIDE_WINDOW) ? 'OutsideWindow'
    : code === 551 ? 'Undeliverable' : code === 100 && subcode === NO_MATCHING_USER ? 'NoMatchingUser' : undefined),
};
/** Inbound attachment MIME types: Messenger names only the kind of attachment, not its format. */
const INBOUND_TYPES: Record<string, string> = { image: 'image/jpeg', video: 'video/mp4', audio: 'audio/mpeg', file: 'application/octet-stream' };
/** An inbound attachment that is a link to a page (RFC 2483's type for a list of URIs). */
const LINK_TYPE = 'text/uri-list';

/** A Graph id: a string, or a number from a sender that did not quote it. */
const idOf = (v: unknown): string | undefined => str(v) ?? (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? String(v) : undefined);
const msOf = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);


/** Checks the `sendApi` settings; paramNames are relative to `settings`. */
export function validateMessengerSettings(s: Record<string, unknown>): Failure[] {
  const out: Failure[] = [];
  if (typeof s.pageId !== 'string' || !/^\d{1,32}$/.test(s.pageId)) out.push({ paramName: 'pageId', message: 'Required: the Facebook page id (digits)' });
  for (const k of ['pageAccessToken', 'appSecret', 'verifyToken']) if (!str(s[k])) out.push({ paramName: k, message: 'Required non-empty string' });
  if (s.apiVersion !== undefined && (typeof s.apiVersion !== 'string' || !/^v\d+\.\d+$/.test(s.apiVersion))) out.push({ paramName: 'apiVersion', message: 'Must look like v21.0' });
  if (s.customerMatching !== undefined && typeof s.customerMatching !== 'boolean') out.push({ paramName: 'customerMatching', message: 'Must be a boolean' });
  return out;
}

/** The Send API attachment type of a part; every typed URL part is an attachment except a web page. */
function attachmentType(type: string | undefined): 'image' | 'audio' | 'video' | 'file' | undefined {
  const t = (type ?? '').toLowerCase();
  if (!/^[\w.+-]+\/[\w.+-]+$/.test(t) || t === 'text/html') return undefined;
  if (t.startsWith('image/')) return 'image';
  if (t.startsWith('audio/')) return 'audio';
  if (t.startsWith('video/')) return 'video';
  return 'file';
}

type Built = { ok: true; messages: Json[] } | { ok: false; code: string; reason: string };

/** The Send API `message` objects for one send, in order. */
function buildMessages(input: SendInput): Built {
  if (input.customBody !== undefined) {
    const custom = customObject(input.customBody);
    return custom ? { ok: true, messages: [custom] } : { ok: false, code: 'InvalidCustomBody', reason: 'customBody.fbMessenger must be a Send API message object' };
  }
  const parts = input.messageParts ?? [];
  // Web pages and untyped links cannot be attachments: they travel as links in the text.
  const links = parts.filter((p) => p.url && !attachmentType(p.type)).map((p) => p.url!);
  const text = [input.body ?? '', ...links].filter((t) => t !== '').join('\n');
  if ([...text].length > MESSENGER_TEXT_LIMIT) return { ok: false, code: 'TextTooLong', reason: `Messenger text is longer than ${MESSENGER_TEXT_LIMIT} characters` };
  const messages: Json[] = [];
  if (text) messages.push({ text });
  for (const p of parts) {
    const type = p.url ? attachmentType(p.type) : undefined;
    if (type) messages.push({ attachment: { type, payload: { url: p.url, is_reusable: true } } });
  }
  if (!messages.length) return { ok: false, code: 'NoContent', reason: 'Nothing to send on Messenger (no text or attachment URL)' };
  return { ok: true, messages };
}

type Recipient = { ok: true; recipient: Json; label: string } | { ok: false; outcome: SendOutcome };

/** The Send API `recipient`: the page-scoped id, or (only when enabled) customer matching by phone. */
function recipientOf(input: SendInput, customerMatching: boolean): Recipient {
  const id = idOf(input.to.fbMessengerId);
  if (id) return { ok: true, recipient: { id }, label: id };
  const phone = customerMatching ? digitsOf(input.to.phoneNumber) : undefined;
  if (!phone) {
    return { ok: false, outcome: { kind: 'rejected', code: 'NoAddress', reason: customerMatching ? 'No Messenger id or valid phone number to send to' : 'No Messenger id to send to (customer matching is off)' } };
  }
  const profile = obj(input.profile);
  const first = str(input.to.firstName) ?? str(profile.firstName);
  const last = str(input.to.lastName) ?? str(profile.lastName);
  // The Send API takes a name only as the pair first_name + last_name.
  const name = first && last ? { name: { first_name: first, last_name: last } } : {};
  return { ok: true, recipient: { phone_number: `+${phone}`, ...name }, label: `+${phone}` };
}

/** `messaging_type` and `tag` from `channelOptions.fbMessenger`: a tag implies MESSAGE_TAG. */
function messagingOf(options: Record<string, unknown> | undefined): Json {
  const tag = str(options?.messageTag);
  if (tag) return { messaging_type: 'MESSAGE_TAG', tag };
  const type = str(options?.messagingType);
  return { messaging_type: type && MESSAGING_TYPES.has(type) ? type : 'RESPONSE' };
}

/** A `message` event as an inbound message; undefined for echoes of the page's own sends and empty messages. */
function toInbound(channelId: string, sender: string, event: Json): InboundReport | undefined {
  const m = obj(event.message);
  if (m.is_echo === true) return undefined;
  const body = str(m.text) ?? str(obj(m.quick_reply).payload);
  const messageParts: Array<Record<string, unknown>> = [];
  for (const a of arr(m.attachments)) {
    const url = str(obj(obj(a).payload).url);
    // Other attachment types (`fallback`: a shared web page) are links, not files.
    if (url) messageParts.push({ type: INBOUND_TYPES[String(obj(a).type)] ?? LINK_TYPE, url });
  }
  if (body === undefined && !messageParts.length) return undefined;
  const at = msOf(event.timestamp);
  return {
    channelId, from: { fbMessengerId: sender },
    ...(body !== undefined ? { body } : {}), ...(messageParts.length ? { messageParts } : {}),
    ...(str(m.mid) ? { providerMessageId: m.mid as string } : {}), ...(at ? { sentOn: at } : {}),
    raw: event,
  };
}

/** A `postback` event (a button tap) as an inbound message whose text is the button's title. */
function postbackInbound(channelId: string, sender: string, event: Json): InboundReport | undefined {
  const p = obj(event.postback);
  const body = str(p.title);
  if (body === undefined) return undefined;
  const at = msOf(event.timestamp);
  return { channelId, from: { fbMessengerId: sender }, body, ...(str(p.mid) ? { providerMessageId: p.mid as string } : {}), ...(at ? { sentOn: at } : {}), raw: event };
}

/** The adapter for one `sendApi` configuration; `graphApiUrl` is the Graph API origin. */
export function createMessengerAdapter(ctx: AdapterContext, options: { graphApiUrl: string }): ChannelAdapter {
  const s = ctx.settings;
  const pageId = String(s.pageId);
  const apiVersion = str(s.apiVersion) ?? DEFAULT_API_VERSION;
  const customerMatching = s.customerMatching === true;
  const url = `${options.graphApiUrl.replace(/\/+$/, '')}/${apiVersion}/me/messages`;
  const graph = createGraphPoster(ctx, { url, token: s.pageAccessToken, userAgent: 'Switchboard-Messenger/1', errors: ERRORS });

  return {
    async close() {
      graph.close();
    },

    /** An inbound attachment's file: its URL is Facebook's, and stops working after a while. */
    async fetchMedia(part, { maxBytes, signal }): Promise<MediaFetch | undefined> {
      const link = str(part.url);
      return link && part.type !== LINK_TYPE ? downloadMedia({ url: link, allowPrivate: ctx.allowPrivateTargets, maxBytes, signal }) : undefined;
    },

    /** Marks the conversation seen by the page (Messenger's `mark_seen` sender action). */
    async markRead(inbound: ReadInbound, signal?: AbortSignal): Promise<SendOutcome> {
      const id = idOf(inbound.from.fbMessengerId);
      if (!id) return { kind: 'rejected', code: 'NoAddress', reason: 'The inbound message has no Messenger sender id' };
      const answer = await graph.post({ recipient: { id }, sender_action: 'mark_seen' }, signal);
      return answer.ok ? { kind: 'accepted' } : answer.outcome;
    },

    mediaByUrl: true,

    async send(input: SendInput): Promise<SendOutcome> {
      const to = recipientOf(input, customerMatching);
      if (!to.ok) return to.outcome;
      const built = buildMessages(input);
      if (!built.ok) return { kind: 'rejected', code: built.code, reason: built.reason };
      const messaging = messagingOf(input.options);
      const sent = await graph.postAll(built.messages.map((message) => ({ recipient: to.recipient, ...messaging, message })), input.signal, (p) => obj(obj(p.message).attachment).type ?? 'text');
      if (!sent.ok) return sent.outcome;
      const providerMessageId = sent.answers.map((a) => str(a.message_id)).find((id) => id !== undefined);
      const recipientId = sent.answers.map((a) => idOf(a.recipient_id)).find((id) => id !== undefined);
      const failures = sent.failures;
      return {
        kind: 'accepted', ...(providerMessageId ? { providerMessageId } : {}), acceptedAt: Date.now(),
        details: {
          to: to.label, ...(recipientId ? { recipientId } : {}),
          ...(built.messages.length > 1 ? { requests: built.messages.length } : {}), ...(failures.length ? { failures } : {}),
        },
      };
    },

    async handleCallback(req: CallbackRequest): Promise<CallbackResult> {
      if (req.method === 'GET') return verificationAnswer(req, s.verifyToken);
      if (!signatureValid(req, s.appSecret)) return { status: 401 };
      const doc = parseJson(req.rawBody.toString('utf8'));
      if (doc === undefined) return jsonAnswer(400, 'InvalidJson', 'The callback body is not valid JSON');
      const receipts: ReceiptReport[] = [];
      const inbounds: InboundReport[] = [];
      const reads: ReadUpTo[] = [];
      const optins: OptinReport[] = [];
      const optin = (sender: string, ref: unknown, event: Json) => {
        const r = str(ref);
        if (r) optins.push({ fbMessengerId: sender, ref: r, pageId, raw: event });
      };
      const root = obj(doc);
      // Anything else (another object type, another page, standby events) is acknowledged and ignored.
      if (root.object === 'page') {
        for (const item of arr(root.entry)) {
          const entry = obj(item);
          if (idOf(entry.id) !== pageId) continue;
          for (const e of arr(entry.messaging)) {
            const event = obj(e);
            // Events without a page-scoped sender (checkbox opt-ins name only a user_ref) cannot be tied to anyone.
            const sender = idOf(obj(event.sender).id);
            if (!sender) continue;
            if (event.message !== undefined) {
              const i = toInbound(ctx.channelId, sender, event);
              if (i) inbounds.push(i);
            } else if (event.postback !== undefined) {
              const i = postbackInbound(ctx.channelId, sender, event);
              if (i) inbounds.push(i);
              optin(sender, obj(obj(event.postback).referral).ref, event);
            } else if (event.delivery !== undefined) {
              const d = obj(event.delivery);
              const at = msOf(d.watermark);
              for (const mid of arr(d.mids)) {
                if (str(mid)) receipts.push({ providerMessageId: mid as string, status: 'delivered', ...(at ? { at } : {}) });
              }
            } else if (event.read !== undefined) {
              const before = msOf(obj(event.read).watermark);
              if (before) reads.push({ address: { fbMessengerId: sender }, before });
            } else if (event.optin !== undefined) {
              optin(sender, obj(event.optin).ref, event);
            } else if (event.referral !== undefined) {
              optin(sender, obj(event.referral).ref, event);
            }
          }
        }
      }
      return { status: 200, body: '{}', contentType: 'application/json', receipts, inbounds, reads, optins };
    },
  };
}

/**
 * The `fbMessenger`/`sendApi` provider. `graphApiUrl` comes from GRAPH_API_URL so that a relay or
 * a test peer can stand in for `https://graph.facebook.com`.
 */
export function messengerSendApiProvider(options: { graphApiUrl: string }): ChannelProvider {
  return {
    channel: 'fbMessenger',
    provider: 'sendApi',
    secretSettings: ['pageAccessToken', 'appSecret', 'verifyToken'],
    validateSettings: validateMessengerSettings,
    create: (ctx) => createMessengerAdapter(ctx, options),
  };
}
