/**
 * Generic HTTP SMS gateway (sms.md §8.2): one templated request per message, the provider's id
 * read from the response by JSON pointer, receipts and inbound messages from the gateway's
 * callbacks (authenticated with the channel's `callbackSecret`).
 */
import { timingSafeEqual } from 'node:crypto';
import type { AdapterContext, CallbackRequest, CallbackResult, ChannelAdapter, ChannelProvider, InboundReport, ReceiptReport, SendInput, SendOutcome } from '../../adapter.js';
import { guardedRequest, OutboundError, retryAfterMs, checkTargetUrl } from '../../http-guard.js';
import { escapeFor, type Escaping } from '../../custom/template.js';
import {
  memorySenderStore, numberList, prepareFor, receiptStatus, selectSender, smsRecipient, smsTextWithLinks, smsValidUntil, type SenderStore,
} from '../sms-common.js';

type Failure = { paramName: string; message: string };
const STATUSES = ['sent', 'delivered', 'read', 'failed', 'expired'] as const;

/** RFC 6901 JSON pointer (`/data/0/id`); a leading `#` is tolerated. */
export function pointer(root: unknown, ptr: string | undefined): unknown {
  if (!ptr) return undefined;
  const p = ptr.replace(/^#/, '');
  if (p === '') return root;
  let cur = root;
  for (const raw of p.replace(/^\//, '').split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

export function validateHttpSmsSettings(s: Record<string, unknown>): Failure[] {
  const out: Failure[] = [];
  const url = str(s.sendUrl);
  if (!url) out.push({ paramName: 'sendUrl', message: 'Required' });
  else if (checkTargetUrl(url, true)) out.push({ paramName: 'sendUrl', message: checkTargetUrl(url, true)! });
  if (s.method !== undefined && !['GET', 'POST', 'PUT', 'PATCH'].includes(String(s.method).toUpperCase())) out.push({ paramName: 'method', message: 'GET, POST, PUT or PATCH' });
  const auth = obj(s.auth);
  if (s.auth !== undefined && !['none', 'basic', 'bearer'].includes(String(auth.type))) out.push({ paramName: 'auth.type', message: 'none, basic or bearer' });
  if (s.bodyTemplate !== undefined && typeof s.bodyTemplate !== 'string') out.push({ paramName: 'bodyTemplate', message: 'Must be a string' });
  if (s.responseIdPath !== undefined && !/^#?(\/.*)?$/.test(String(s.responseIdPath))) out.push({ paramName: 'responseIdPath', message: 'Must be a JSON pointer' });
  const receipt = obj(s.receipt);
  for (const [k, v] of Object.entries(obj(receipt.statusMap))) {
    if (!(STATUSES as readonly string[]).includes(String(v))) out.push({ paramName: `receipt.statusMap.${k}`, message: `One of ${STATUSES.join(', ')}` });
  }
  if ((s.receipt !== undefined || s.inbound !== undefined) && (typeof s.callbackSecret !== 'string' || s.callbackSecret.length < 8)) {
    out.push({ paramName: 'callbackSecret', message: 'Required (at least 8 characters) when callbacks are configured' });
  }
  return out;
}

function render(template: string, values: Record<string, string>, escaping: Escaping): string {
  return template.replace(/\{\{\s*(to|from|text|messageId|validUntil|encoding)\s*\}\}/g, (_m, k: string) => escapeFor(escaping, values[k] ?? ''));
}

function secretMatches(req: CallbackRequest, secret: string): boolean {
  const auth = req.headers.authorization;
  const header = (Array.isArray(auth) ? auth[0] : auth) ?? '';
  const q = req.query.secret;
  const given = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim() ?? (Array.isArray(q) ? q[0] : q) ?? '';
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseBody(req: CallbackRequest): unknown {
  const text = req.rawBody.toString('utf8');
  if (/x-www-form-urlencoded/i.test(req.contentType ?? '')) return Object.fromEntries(new URLSearchParams(text));
  if (!text.trim()) return Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
  return JSON.parse(text);
}

export function createHttpSmsAdapter(ctx: AdapterContext, deps: { senders?: SenderStore; now?: () => number } = {}): ChannelAdapter {
  const s = ctx.settings;
  const senders = deps.senders ?? memorySenderStore();
  const now = deps.now ?? Date.now;
  const method = String(s.method ?? 'POST').toUpperCase();
  const contentType = str(s.contentType) ?? 'application/json';
  const escaping: Escaping = /json/i.test(contentType) ? 'json' : /x-www-form-urlencoded/i.test(contentType) ? 'form' : 'none';
  const numbers = numberList(s.numbers);
  const receiptCfg = obj(s.receipt);
  const inboundCfg = obj(s.inbound);

  function headers(): Record<string, string> {
    const out: Record<string, string> = {};
    const h = s.headers;
    if (Array.isArray(h)) for (const e of h) out[String(obj(e).key).toLowerCase()] = String(obj(e).value ?? '');
    else for (const [k, v] of Object.entries(obj(h))) out[k.toLowerCase()] = String(v);
    const auth = obj(s.auth);
    if (auth.type === 'basic') out.authorization = `Basic ${Buffer.from(`${auth.username ?? ''}:${auth.password ?? ''}`).toString('base64')}`;
    if (auth.type === 'bearer') out.authorization = `Bearer ${auth.token ?? ''}`;
    return out;
  }

  function toReceipt(item: unknown): ReceiptReport | undefined {
    const id = pointer(item, str(receiptCfg.idPath));
    const raw = pointer(item, str(receiptCfg.statusPath));
    if (id === undefined || raw === undefined) return undefined;
    const map = obj(receiptCfg.statusMap);
    const mapped = map[String(raw)];
    let status = (STATUSES as readonly string[]).includes(String(mapped)) ? (mapped as ReceiptReport['status']) : undefined;
    let errorCode: string | undefined;
    if (!status) {
      const fromStat = receiptStatus(String(raw));
      status = fromStat.status;
      errorCode = fromStat.errorCode;
    }
    if (!status) return undefined;
    const carrier = pointer(item, str(receiptCfg.errorCodePath));
    if (status === 'failed' && !errorCode) errorCode = 'Undeliverable';
    if (status === 'expired' && !errorCode) errorCode = 'Expired';
    return {
      providerMessageId: String(id),
      status,
      details: { ...(errorCode ? { errorCode } : {}), ...(carrier !== undefined && carrier !== null && carrier !== '' ? { carrierErrorCode: String(carrier) } : {}), providerStatus: String(raw) },
      at: now(),
    };
  }

  function toInbound(item: unknown): InboundReport | undefined {
    const from = pointer(item, str(inboundCfg.fromPath));
    const text = pointer(item, str(inboundCfg.textPath));
    if (from === undefined || text === undefined) return undefined;
    const to = pointer(item, str(inboundCfg.toPath));
    return { channelId: ctx.channelId, from: { phoneNumber: String(from).replace(/^\+/, '') }, ...(to !== undefined ? { to: { phoneNumber: String(to).replace(/^\+/, '') } } : {}), body: String(text), raw: item };
  }

  return {
    async send(input: SendInput): Promise<SendOutcome> {
      const to = smsRecipient(input);
      if (!to || !/^\d{4,15}$/.test(to)) return { kind: 'rejected', reason: 'No valid phone number to send to', code: 'InvalidNumber' };
      const prepared = prepareFor(input, to, await smsTextWithLinks(input, ctx.trackLink));
      if (!prepared.ok) return { kind: 'rejected', reason: prepared.reason, code: prepared.code };
      const sender = await selectSender(input, to, { numbers, defaultFrom: str(s.defaultFrom) }, senders, now());
      if (!sender) return { kind: 'rejected', reason: 'No sender id for this destination', code: 'SenderIdRejected' };
      const values = {
        to, from: sender.from, text: prepared.sms.text, messageId: input.messageId, encoding: prepared.sms.encoding,
        validUntil: new Date(smsValidUntil(input, now())).toISOString(),
      };
      const tmpl = str(s.bodyTemplate) ?? '{"to":"{{to}}","from":"{{from}}","text":"{{text}}","reference":"{{messageId}}"}';
      const url = render(String(s.sendUrl), values, 'url');
      try {
        const res = await guardedRequest({
          url, method, headers: { ...headers(), ...(method !== 'GET' ? { 'content-type': contentType } : {}) },
          body: method !== 'GET' ? render(tmpl, values, escaping) : undefined,
          timeoutMs: 10_000, allowPrivate: ctx.allowPrivateTargets, signal: input.signal,
        });
        if (res.status === 408 || res.status === 429 || res.status >= 500) {
          return { kind: 'transient', reason: `Gateway answered ${res.status}`, code: res.status === 429 ? 'Throttled' : 'ProviderError', retryAfterMs: retryAfterMs(res.headers['retry-after'], now()) };
        }
        if (res.status >= 400) return { kind: 'rejected', reason: `Gateway answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`, code: 'Rejected' };
        let id: unknown;
        try {
          id = pointer(JSON.parse(res.body.toString('utf8')), str(s.responseIdPath));
        } catch {}
        if (sender.pooled) await senders.put(input.apiSpaceId, to, sender.from, now());
        return { kind: 'accepted', providerMessageId: id === undefined || id === null ? undefined : String(id), acceptedAt: now(), details: { ...prepared.details, from: sender.from } };
      } catch (err) {
        if (err instanceof OutboundError) {
          if (err.kind === 'blocked' || err.kind === 'invalid') return { kind: 'rejected', reason: err.message, code: 'ProviderError' };
          return { kind: 'transient', reason: err.message, code: 'ProviderError' };
        }
        throw err;
      }
    },

    async handleCallback(req: CallbackRequest): Promise<CallbackResult> {
      const secret = str(s.callbackSecret);
      if (!secret || !secretMatches(req, secret)) return { status: 401, body: '{"message":"Invalid callback secret"}', contentType: 'application/json' };
      let body: unknown;
      try {
        body = parseBody(req);
      } catch {
        return { status: 400, body: '{"message":"Unreadable callback body"}', contentType: 'application/json' };
      }
      const items = Array.isArray(body) ? body : [body];
      const receipts: ReceiptReport[] = [];
      const inbounds: InboundReport[] = [];
      for (const item of items) {
        const r = receiptCfg.idPath ? toReceipt(item) : undefined;
        if (r) receipts.push(r);
        else {
          const i = inboundCfg.textPath ? toInbound(item) : undefined;
          if (i) inbounds.push(i);
        }
      }
      return { status: 200, receipts, inbounds };
    },
  };
}

export function httpSmsProvider(deps: { senders?: SenderStore } = {}): ChannelProvider {
  return {
    channel: 'sms',
    provider: 'http',
    secretSettings: ['callbackSecret', 'auth.password', 'auth.token'],
    validateSettings: validateHttpSmsSettings,
    create: (ctx) => createHttpSmsAdapter(ctx, deps),
  };
}
