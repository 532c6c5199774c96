/**
 * The generic HTTP gateway behind the SMS and MMS `http` providers (sms.md §8.2, channels.md §3):
 * settings validation, the templated send request and how its answer is classified, and the
 * callback endpoint (`callbackSecret` check, body reading, receipt parsing). Each channel brings
 * its own merge fields, content and inbound mapping.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AdapterContext, CallbackRequest, CallbackResult, InboundReport, MediaFetch, ReceiptReport, SendInput, SendOutcome } from '../../adapter.js';
import { checkTargetUrl, downloadMedia, guardedRequest, OutboundError, retryAfterMs } from '../../http-guard.js';
import { escapeFor, type Escaping } from '../../custom/template.js';
import { numberList, receiptStatus, selectSender, type SenderStore } from '../sms-common.js';

export type Failure = { paramName: string; message: string };
export type ReceiptStatus = ReceiptReport['status'];
/** A merge field's value: text, or a list (MMS `{{mediaUrls}}`). */
export type MergeValue = string | readonly string[];

/** Write-only settings of a gateway channel (channels.md §1.3). */
export const GATEWAY_SECRETS = ['callbackSecret', 'auth.password', 'auth.token'] as const;

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

export const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
export const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
export const isPointer = (v: unknown) => typeof v === 'string' && /^#?(\/.*)?$/.test(v);

/**
 * The settings every gateway channel shares. `statuses`: the receipt statuses the channel reports;
 * `inboundPaths`: the JSON pointers its `inbound` setting may hold.
 */
export function validateGatewaySettings(s: Record<string, unknown>, statuses: readonly ReceiptStatus[], inboundPaths: readonly string[]): Failure[] {
  const out: Failure[] = [];
  const url = str(s.sendUrl);
  if (!url) out.push({ paramName: 'sendUrl', message: 'Required' });
  else if (checkTargetUrl(url, true)) out.push({ paramName: 'sendUrl', message: checkTargetUrl(url, true)! });
  if (s.method !== undefined && !['GET', 'POST', 'PUT', 'PATCH'].includes(String(s.method).toUpperCase())) out.push({ paramName: 'method', message: 'GET, POST, PUT or PATCH' });
  const auth = obj(s.auth);
  if (s.auth !== undefined && !['none', 'basic', 'bearer'].includes(String(auth.type))) out.push({ paramName: 'auth.type', message: 'none, basic or bearer' });
  if (s.bodyTemplate !== undefined && typeof s.bodyTemplate !== 'string') out.push({ paramName: 'bodyTemplate', message: 'Must be a string' });
  if (s.responseIdPath !== undefined && !isPointer(s.responseIdPath)) out.push({ paramName: 'responseIdPath', message: 'Must be a JSON pointer' });
  const receipt = obj(s.receipt);
  const inbound = obj(s.inbound);
  // A path that is no pointer would silently match nothing in every callback.
  for (const k of ['idPath', 'statusPath', 'errorCodePath']) if (receipt[k] !== undefined && !isPointer(receipt[k])) out.push({ paramName: `receipt.${k}`, message: 'Must be a JSON pointer' });
  for (const k of inboundPaths) if (inbound[k] !== undefined && !isPointer(inbound[k])) out.push({ paramName: `inbound.${k}`, message: 'Must be a JSON pointer' });
  for (const [k, v] of Object.entries(obj(receipt.statusMap))) {
    if (!(statuses as readonly string[]).includes(String(v))) out.push({ paramName: `receipt.statusMap.${k}`, message: `One of ${statuses.join(', ')}` });
  }
  if ((s.receipt !== undefined || s.inbound !== undefined) && (typeof s.callbackSecret !== 'string' || s.callbackSecret.length < 8)) {
    out.push({ paramName: 'callbackSecret', message: 'Required (at least 8 characters) when callbacks are configured' });
  }
  return out;
}

/**
 * Substitutes the merge fields named in `values`, escaped for where they land; other tokens stay as
 * written. A list renders as a JSON array in a JSON body (the token belongs outside quotes there);
 * in a form body or the URL as its items, each percent-encoded, joined by commas (a comma inside an
 * item is encoded, so the list splits unambiguously); in any other body one item per line (URLs
 * hold no white space).
 */
export function renderGateway(template: string, values: Record<string, MergeValue>, escaping: Escaping): string {
  const names = Object.keys(values).join('|');
  return template.replace(new RegExp(`\\{\\{\\s*(${names})\\s*\\}\\}`, 'g'), (_m, k: string) => {
    const v = values[k]!;
    if (typeof v === 'string') return escapeFor(escaping, v);
    if (escaping === 'json') return `[${v.map((item) => `"${escapeFor('json', item)}"`).join(',')}]`;
    return v.map((item) => escapeFor(escaping, item)).join(escaping === 'none' ? '\n' : ',');
  });
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

/** A phone number as the gateway wrote it, without its leading `+`. */
const phone = (v: unknown) => String(v).replace(/^\+/, '');

/** `from`/`to` of an inbound callback item (`inbound.fromPath`, `inbound.toPath`); undefined without a sender. */
export function inboundAddresses(item: unknown, cfg: Record<string, unknown>): Pick<InboundReport, 'from' | 'to'> | undefined {
  const from = pointer(item, str(cfg.fromPath));
  if (from === undefined || from === null) return undefined;
  const to = pointer(item, str(cfg.toPath));
  return { from: { phoneNumber: phone(from) }, ...(to !== undefined && to !== null ? { to: { phoneNumber: phone(to) } } : {}) };
}

export interface GatewayOptions {
  /** Receipt statuses the channel reports; an `expired` receipt on a channel without it becomes `failed`. */
  statuses: readonly ReceiptStatus[];
  /** The request body when the settings have no `bodyTemplate`. */
  defaultTemplate: string;
  now: () => number;
  /** Sender stitching (sms.md §2). */
  senders: SenderStore;
  /** The inbound message of one callback item (called only when it is not a receipt). */
  inbound(item: unknown): InboundReport | undefined;
}

export type GatewaySent = { ok: true; from: string; providerMessageId?: string } | { ok: false; outcome: SendOutcome };

export interface Gateway {
  /**
   * Sends one templated request to `to` from the sender sms.md §2 picks (`{{from}}`, a pool number
   * stitched to the recipient once accepted): `ok` with the sender and the provider's id, or the
   * outcome the send ends with.
   */
  send(input: SendInput, to: string, values: Record<string, MergeValue>): Promise<GatewaySent>;
  handleCallback(req: CallbackRequest): Promise<CallbackResult>;
  /** A file an inbound message names (MMS media), with the channel's credentials when it is on the gateway's own origin. */
  download(url: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<MediaFetch>;
}

export function createGateway(ctx: AdapterContext, opts: GatewayOptions): Gateway {
  const s = ctx.settings;
  const { now, statuses } = opts;
  const method = String(s.method ?? 'POST').toUpperCase();
  const contentType = str(s.contentType) ?? 'application/json';
  const escaping: Escaping = /json/i.test(contentType) ? 'json' : /x-www-form-urlencoded/i.test(contentType) ? 'form' : 'none';
  const receiptCfg = obj(s.receipt);
  const numbers = numberList(s.numbers);

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

  /** The gateway's origin: its credentials go to no other host. */
  const gatewayOrigin = (() => {
    try {
      return new URL(String(s.sendUrl)).origin;
    } catch {
      return undefined;
    }
  })();

  function toReceipt(item: unknown): ReceiptReport | undefined {
    const id = pointer(item, str(receiptCfg.idPath));
    const raw = pointer(item, str(receiptCfg.statusPath));
    if (id === undefined || raw === undefined) return undefined;
    const mapped = obj(receiptCfg.statusMap)[String(raw)];
    let status = (statuses as readonly string[]).includes(String(mapped)) ? (mapped as ReceiptStatus) : undefined;
    let errorCode: string | undefined;
    if (!status) {
      const fromStat = receiptStatus(String(raw));
      status = fromStat.status;
      errorCode = fromStat.errorCode;
    }
    if (status === 'expired' && !statuses.includes('expired')) status = 'failed';
    if (!status || !statuses.includes(status)) return undefined;
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

  return {
    async send(input, to, values) {
      const sender = await selectSender(input, to, { numbers, defaultFrom: str(s.defaultFrom) }, opts.senders, now());
      if (!sender) return { ok: false, outcome: { kind: 'rejected', reason: 'No sender id for this destination', code: 'SenderIdRejected' } };
      const all = { ...values, from: sender.from };
      const tmpl = str(s.bodyTemplate) ?? opts.defaultTemplate;
      const url = renderGateway(String(s.sendUrl), all, 'url');
      let res: Awaited<ReturnType<typeof guardedRequest>>;
      try {
        res = await guardedRequest({
          url, method, headers: { ...headers(), ...(method !== 'GET' ? { 'content-type': contentType } : {}) },
          body: method !== 'GET' ? renderGateway(tmpl, all, escaping) : undefined,
          timeoutMs: 10_000, allowPrivate: ctx.allowPrivateTargets, signal: input.signal,
        });
      } catch (err) {
        if (!(err instanceof OutboundError)) throw err;
        const kind = err.kind === 'blocked' || err.kind === 'invalid' ? 'rejected' : 'transient';
        return { ok: false, outcome: { kind, reason: err.message, code: 'ProviderError' } };
      }
      if (res.status === 408 || res.status === 429 || res.status >= 500) {
        return { ok: false, outcome: { kind: 'transient', reason: `Gateway answered ${res.status}`, code: res.status === 429 ? 'Throttled' : 'ProviderError', retryAfterMs: retryAfterMs(res.headers['retry-after'], now()) } };
      }
      if (res.status >= 400) return { ok: false, outcome: { kind: 'rejected', reason: `Gateway answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`, code: 'Rejected' } };
      let id: unknown;
      try {
        id = pointer(JSON.parse(res.body.toString('utf8')), str(s.responseIdPath));
      } catch {}
      if (sender.pooled) await opts.senders.put(input.apiSpaceId, to, sender.from, now());
      return { ok: true, from: sender.from, providerMessageId: id === undefined || id === null ? undefined : String(id) };
    },

    download(url, { maxBytes, signal }) {
      let own = false;
      try {
        own = new URL(url).origin === gatewayOrigin;
      } catch {
        // Not a URL: downloadMedia says so.
      }
      const authorization = own ? headers().authorization : undefined;
      return downloadMedia({ url, ...(authorization ? { headers: { authorization } } : {}), allowPrivate: ctx.allowPrivateTargets, maxBytes, signal });
    },

    async handleCallback(req) {
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
          const i = opts.inbound(item);
          if (i) inbounds.push(i);
        }
      }
      return { status: 200, receipts, inbounds };
    },
  };
}
