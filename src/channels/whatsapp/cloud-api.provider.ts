/**
 * WhatsApp Business Cloud API provider for the `whatsApp` channel (channels.md §6): sends through
 * `POST {graph}/{apiVersion}/{phoneNumberId}/messages`, and reads Meta's callbacks (the
 * `hub.challenge` handshake, `X-Hub-Signature-256`-signed events carrying `statuses[]` receipts
 * and `messages[]` inbound messages). The 24-hour window is the dispatcher's business: a
 * free-form send reaching this adapter is one the dispatcher found inside the window.
 */
import type { AdapterContext, CallbackRequest, CallbackResult, ChannelAdapter, ChannelProvider, InboundReport, MediaFetch, ReadInbound, ReceiptReport, SendInput, SendOutcome } from '../adapter.js';
import { downloadMedia } from '../http-guard.js';
import { jsonAnswer, signatureValid, verificationAnswer } from '../meta/webhook.js';
import { asArray as arr, asObject as obj, asString as str, createGraphPoster, customObject, parseJson, phoneDigits as digitsOf, type GraphErrors } from '../meta/graph.js';

type Failure = { paramName: string; message: string };
type Json = Record<string, unknown>;

/** Text limit of a Cloud API text message (channels.md §1.1, §6). */
export const WHATSAPP_TEXT_LIMIT = 4096;
const DEFAULT_API_VERSION = 'v21.0';
/** Cloud API error codes: "slow down" (throttling, pair rate limits, spam rate limit), and its own rejections. */
const ERRORS: GraphErrors = {
  api: 'Cloud API',
  throttle: new Set([4, 80007, 130429, 131048, 131056]),
  rejection: (code) => (code === 131047 ? 'OutsideWindow' : code === 131026 ? 'Undeliverable' : undefined),
};
const RECEIPT_STATUSES = new Set(['sent', 'delivered', 'read', 'failed']);


/** Checks the `cloudApi` settings; paramNames are relative to `settings`. */
export function validateWhatsAppSettings(s: Record<string, unknown>): Failure[] {
  const out: Failure[] = [];
  if (typeof s.phoneNumberId !== 'string' || !/^\d{1,32}$/.test(s.phoneNumberId)) out.push({ paramName: 'phoneNumberId', message: 'Required: the Cloud API phone number id (digits)' });
  if (s.wabaId !== undefined && (typeof s.wabaId !== 'string' || !/^\d{1,32}$/.test(s.wabaId))) out.push({ paramName: 'wabaId', message: 'Must be the WhatsApp Business Account id (digits)' });
  if (s.displayPhoneNumber !== undefined && !digitsOf(s.displayPhoneNumber)) out.push({ paramName: 'displayPhoneNumber', message: 'Must be a phone number in international format' });
  for (const k of ['accessToken', 'appSecret', 'verifyToken']) if (!str(s[k])) out.push({ paramName: k, message: 'Required non-empty string' });
  if (s.apiVersion !== undefined && (typeof s.apiVersion !== 'string' || !/^v\d+\.\d+$/.test(s.apiVersion))) out.push({ paramName: 'apiVersion', message: 'Must look like v21.0' });
  return out;
}

function mediaKind(type: string | undefined): 'image' | 'video' | 'audio' | 'document' | undefined {
  const t = (type ?? '').toLowerCase();
  if (t.startsWith('image/')) return 'image';
  if (t.startsWith('video/')) return 'video';
  if (t.startsWith('audio/')) return 'audio';
  if (t.startsWith('application/') || t === 'text/plain') return 'document';
  return undefined;
}

type Built = { ok: true; payloads: Json[] } | { ok: false; code: string; reason: string };

/** The Cloud API message objects (without `messaging_product`/`to`) for one send, in order. */
function buildPayloads(input: SendInput): Built {
  if (input.customBody !== undefined) {
    const custom = customObject(input.customBody);
    return custom ? { ok: true, payloads: [custom] } : { ok: false, code: 'InvalidCustomBody', reason: 'customBody.whatsApp must be a Cloud API message object' };
  }
  const parts = input.messageParts ?? [];
  const templates = parts.filter((p) => p.type === 'whatsapp/template');
  if (templates.length) {
    const payloads: Json[] = [];
    for (const p of templates) {
      const data = obj(typeof p.data === 'string' ? parseJson(p.data) : p.data);
      const name = str(data.templateName);
      const code = str(data.languageCode);
      if (!name || !code) return { ok: false, code: 'InvalidTemplate', reason: 'A whatsapp/template part needs data.templateName and data.languageCode' };
      const params = Array.isArray(data.params) ? data.params.map((t) => ({ type: 'text', text: String(t) })) : undefined;
      const components = Array.isArray(data.components) ? data.components : params ? [{ type: 'body', parameters: params }] : undefined;
      payloads.push({
        type: 'template',
        template: { name, language: { code, policy: str(data.languagePolicy) ?? 'deterministic' }, ...(components ? { components } : {}) },
      });
    }
    return { ok: true, payloads };
  }
  const links = parts.filter((p) => p.url && !mediaKind(p.type)).map((p) => p.url!);
  const text = [input.body ?? '', ...links].filter((t) => t !== '').join('\n');
  if ([...text].length > WHATSAPP_TEXT_LIMIT) return { ok: false, code: 'TextTooLong', reason: `WhatsApp text is longer than ${WHATSAPP_TEXT_LIMIT} characters` };
  const payloads: Json[] = [];
  if (text) payloads.push({ type: 'text', text: { body: text, preview_url: input.options?.enableUrlPreview === true } });
  for (const p of parts) {
    const kind = p.url ? mediaKind(p.type) : undefined;
    if (!kind) continue;
    payloads.push({ type: kind, [kind]: { link: p.url, ...(kind === 'document' && p.name ? { filename: p.name } : {}) } });
  }
  if (!payloads.length) return { ok: false, code: 'NoContent', reason: 'Nothing to send on WhatsApp (no text, media URL or template)' };
  return { ok: true, payloads };
}

const secondsToMs = (v: unknown): number | undefined => {
  const n = typeof v === 'string' || typeof v === 'number' ? Number(v) : NaN;
  return Number.isFinite(n) && n > 0 ? n * 1000 : undefined;
};

/** A `statuses[]` entry as a receipt; undefined for statuses Switchboard does not track. */
function toReceipt(item: unknown): ReceiptReport | undefined {
  const s = obj(item);
  const id = str(s.id);
  const status = str(s.status);
  if (!id || !status || !RECEIPT_STATUSES.has(status)) return undefined;
  let details: Record<string, unknown> = {};
  if (status === 'failed') {
    const e = obj(arr(s.errors)[0]);
    const code = typeof e.code === 'number' || typeof e.code === 'string' ? String(e.code) : undefined;
    const reason = str(e.title) ?? str(e.message) ?? str(obj(e.error_data).details);
    details = { errorCode: code ?? 'Undeliverable', ...(reason ? { failureReason: reason } : {}) };
  }
  const at = secondsToMs(s.timestamp);
  return { providerMessageId: id, status: status as ReceiptReport['status'], details, ...(at ? { at } : {}) };
}

/** A MIME type without parameters (`audio/ogg; codecs=opus` → `audio/ogg`), as inbound parts require. */
function bareType(v: unknown): string {
  const t = typeof v === 'string' ? v.split(';')[0]!.trim().toLowerCase() : '';
  return /^[\w.+-]+\/[\w.+-]+$/.test(t) ? t : 'application/octet-stream';
}

/** A `messages[]` entry as an inbound message; undefined for types without content (reactions, unsupported). */
function toInbound(channelId: string, item: unknown, contacts: unknown[], to: string | undefined): InboundReport | undefined {
  const m = obj(item);
  const from = digitsOf(m.from);
  const type = str(m.type);
  if (!from || !type) return undefined;
  let body: string | undefined;
  let messageParts: Array<Record<string, unknown>> | undefined;
  switch (type) {
    case 'text':
      body = str(obj(m.text).body);
      break;
    case 'image': case 'video': case 'audio': case 'document': case 'sticker': {
      const media = obj(m[type]);
      const id = str(media.id);
      if (!id) return undefined;
      body = str(media.caption);
      messageParts = [{ type: bareType(media.mime_type), ...(str(media.filename) ? { name: media.filename } : {}), providerMediaId: id }];
      break;
    }
    case 'location': {
      const l = obj(m.location);
      if (typeof l.latitude !== 'number' || typeof l.longitude !== 'number') return undefined;
      body = [str(l.name), str(l.address), `${l.latitude},${l.longitude}`].filter(Boolean).join('\n');
      break;
    }
    case 'button':
      body = str(obj(m.button).text) ?? str(obj(m.button).payload);
      break;
    case 'interactive': {
      const i = obj(m.interactive);
      body = str(obj(i.button_reply).title) ?? str(obj(i.list_reply).title);
      break;
    }
    default:
      return undefined;
  }
  if (body === undefined && !messageParts) return undefined;
  const contact = contacts.map(obj).find((c) => c.wa_id === m.from);
  const at = secondsToMs(m.timestamp);
  return {
    channelId, from: { phoneNumber: from }, ...(to ? { to: { phoneNumber: to } } : {}),
    ...(body !== undefined ? { body } : {}), ...(messageParts ? { messageParts } : {}),
    ...(str(m.id) ? { providerMessageId: m.id as string } : {}), ...(at ? { sentOn: at } : {}),
    raw: contact ? { ...m, contact } : m,
  };
}

/** The adapter for one `cloudApi` configuration; `graphApiUrl` is the Graph API origin. */
export function createWhatsAppCloudAdapter(ctx: AdapterContext, options: { graphApiUrl: string }): ChannelAdapter {
  const s = ctx.settings;
  const phoneNumberId = String(s.phoneNumberId);
  const apiVersion = str(s.apiVersion) ?? DEFAULT_API_VERSION;
  const displayNumber = digitsOf(s.displayPhoneNumber);
  const versioned = `${options.graphApiUrl.replace(/\/+$/, '')}/${apiVersion}`;
  const url = `${versioned}/${encodeURIComponent(phoneNumberId)}/messages`;
  const graph = createGraphPoster(ctx, { url, token: s.accessToken, userAgent: 'Switchboard-WhatsApp/1', errors: ERRORS });

  return {
    async close() {
      graph.close();
    },

    /**
     * An inbound part's media: the media id gives a short-lived URL (`GET /{media-id}`), which
     * serves the file to the same access token.
     */
    async fetchMedia(part, { maxBytes, signal }): Promise<MediaFetch | undefined> {
      const id = str(part.providerMediaId);
      if (!id || part.url !== undefined) return undefined;
      const info = await graph.get(`${versioned}/${encodeURIComponent(id)}`, signal);
      if (!info.ok) return info.outcome;
      const link = str(info.body.url);
      if (!link) return { kind: 'rejected', code: 'MediaNotFound', reason: 'The Cloud API named no URL for the media' };
      if (typeof info.body.file_size === 'number' && info.body.file_size > maxBytes) return { kind: 'rejected', code: 'MediaTooLarge', reason: `The media file is larger than ${maxBytes} bytes` };
      return downloadMedia({ url: link, headers: { authorization: graph.authorization }, allowPrivate: ctx.allowPrivateTargets, maxBytes, signal });
    },

    /** The inbound message's read status (blue ticks), channels.md §6. */
    async markRead(inbound: ReadInbound, signal?: AbortSignal): Promise<SendOutcome> {
      const answer = await graph.post({ messaging_product: 'whatsapp', status: 'read', message_id: inbound.providerMessageId }, signal);
      return answer.ok ? { kind: 'accepted' } : answer.outcome;
    },

    mediaByUrl: true,

    async send(input: SendInput): Promise<SendOutcome> {
      const to = digitsOf(input.to.phoneNumber);
      if (!to) return { kind: 'rejected', code: 'NoAddress', reason: 'No valid phone number to send to' };
      const sender = input.options?.phoneNumber;
      if (sender !== undefined && sender !== null && sender !== '' && digitsOf(sender) !== displayNumber) {
        return { kind: 'rejected', code: 'UnknownSender', reason: `The channel sends from its configured number${displayNumber ? ` (${displayNumber})` : ' (displayPhoneNumber is not configured)'} only` };
      }
      const built = buildPayloads(input);
      if (!built.ok) return { kind: 'rejected', code: built.code, reason: built.reason };
      const sent = await graph.postAll(built.payloads.map((p) => ({ recipient_type: 'individual', ...p, messaging_product: 'whatsapp', to })), input.signal, (p) => p.type);
      if (!sent.ok) return sent.outcome;
      const providerMessageId = sent.answers.map((a) => str(obj(arr(a.messages)[0]).id)).find((id) => id !== undefined);
      const failures = sent.failures;
      return {
        kind: 'accepted', ...(providerMessageId ? { providerMessageId } : {}), acceptedAt: Date.now(),
        details: { to, ...(built.payloads.length > 1 ? { requests: built.payloads.length } : {}), ...(failures.length ? { failures } : {}) },
      };
    },

    async handleCallback(req: CallbackRequest): Promise<CallbackResult> {
      if (req.method === 'GET') return verificationAnswer(req, s.verifyToken);
      if (!signatureValid(req, s.appSecret)) return { status: 401 };
      const doc = parseJson(req.rawBody.toString('utf8'));
      if (doc === undefined) return jsonAnswer(400, 'InvalidJson', 'The callback body is not valid JSON');
      const receipts: ReceiptReport[] = [];
      const inbounds: InboundReport[] = [];
      const root = obj(doc);
      // Anything else (another object type, another field, another number) is acknowledged and ignored.
      if (root.object === 'whatsapp_business_account') {
        for (const entry of arr(root.entry)) {
          for (const change of arr(obj(entry).changes)) {
            const c = obj(change);
            const value = obj(c.value);
            const metadata = obj(value.metadata);
            if (c.field !== 'messages' || String(metadata.phone_number_id ?? '') !== phoneNumberId) continue;
            for (const st of arr(value.statuses)) {
              const r = toReceipt(st);
              if (r) receipts.push(r);
            }
            const contacts = arr(value.contacts);
            for (const m of arr(value.messages)) {
              const i = toInbound(ctx.channelId, m, contacts, digitsOf(metadata.display_phone_number));
              if (i) inbounds.push(i);
            }
          }
        }
      }
      return { status: 200, body: '{}', contentType: 'application/json', receipts, inbounds };
    },
  };
}

/**
 * The `whatsApp`/`cloudApi` provider. `graphApiUrl` comes from GRAPH_API_URL so that a relay or a
 * test peer can stand in for `https://graph.facebook.com`.
 */
export function whatsAppCloudProvider(options: { graphApiUrl: string }): ChannelProvider {
  return {
    channel: 'whatsApp',
    provider: 'cloudApi',
    secretSettings: ['accessToken', 'appSecret', 'verifyToken'],
    validateSettings: validateWhatsAppSettings,
    create: (ctx) => createWhatsAppCloudAdapter(ctx, options),
  };
}
