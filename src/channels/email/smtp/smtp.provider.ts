/**
 * E-mail over SMTP submission (channels.md §4) with a nodemailer connection pool per adapter:
 * subject/text/HTML alternatives, attachments from message parts, sender overrides, DKIM, click
 * tracking through tracked links, and inbound mail / DSN bounces through the channel callback.
 */
import { timingSafeEqual } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { AdapterContext, CallbackRequest, CallbackResult, ChannelAdapter, ChannelProvider, SendInput, SendOutcome } from '../../adapter.js';
import { guardedRequest, OutboundError } from '../../http-guard.js';
import { messageIdFor, parseJsonMail, parseRawMail } from '../inbound.js';

type Failure = { paramName: string; message: string };
const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;
const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

export function validateSmtpSettings(s: Record<string, unknown>): Failure[] {
  const out: Failure[] = [];
  if (!str(s.host)) out.push({ paramName: 'host', message: 'Required' });
  if (s.port !== undefined && !(Number.isInteger(s.port) && (s.port as number) > 0 && (s.port as number) < 65536)) out.push({ paramName: 'port', message: 'Must be a port number' });
  if (!str(s.defaultFromAddress) || !EMAIL.test(String(s.defaultFromAddress))) out.push({ paramName: 'defaultFromAddress', message: 'Required: an e-mail address' });
  const dkim = obj(s.dkim);
  if (s.dkim !== undefined && (!str(dkim.domainName) || !str(dkim.keySelector) || !str(dkim.privateKey))) out.push({ paramName: 'dkim', message: 'domainName, keySelector and privateKey are required' });
  if (s.domains !== undefined && !(Array.isArray(s.domains) && s.domains.every((d) => typeof d === 'string'))) out.push({ paramName: 'domains', message: 'Must be an array of domain names' });
  return out;
}

/** Rewrites http(s) links in `href` attributes into tracked links. */
export async function trackHtmlLinks(html: string, track: (url: string) => Promise<string>): Promise<string> {
  const re = /(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?:\/\/[^"']+)\2/gi;
  const urls = new Map<string, string>();
  for (const m of html.matchAll(re)) if (!urls.has(m[3]!)) urls.set(m[3]!, '');
  for (const url of urls.keys()) urls.set(url, await track(url.replace(/&amp;/g, '&')));
  return html.replace(re, (_m, pre: string, q: string, url: string) => `${pre}${q}${urls.get(url) ?? url}${q}`);
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** SMTP failures → outcome: 4xx and connection problems are transient, 5xx permanent. */
function classify(err: unknown): SendOutcome {
  const e = err as { responseCode?: number; code?: string; message?: string };
  const reason = e.message ?? String(err);
  if (e.responseCode && e.responseCode >= 500) return { kind: 'rejected', reason, code: e.code === 'EENVELOPE' ? 'InvalidAddress' : 'Rejected' };
  if (e.responseCode && e.responseCode >= 400) return { kind: 'transient', reason, code: e.responseCode === 421 || e.responseCode === 450 ? 'Throttled' : 'ProviderError', retryAfterMs: 30_000 };
  if (e.code === 'EAUTH') return { kind: 'rejected', reason, code: 'ProviderConfig' };
  return { kind: 'transient', reason, code: 'ProviderError' };
}

export interface SmtpDeps {
  /** URL of the open-tracking pixel for a message (channels.md §4 `trackOpens`), when offered. */
  openPixelUrl?(apiSpaceId: string, messageId: string): string;
  now?: () => number;
}

export function createSmtpAdapter(ctx: AdapterContext, deps: SmtpDeps = {}): ChannelAdapter & { close(): Promise<void> } {
  const now = deps.now ?? Date.now;
  const s = ctx.settings;
  const dkim = obj(s.dkim);
  const defaultFrom = String(s.defaultFromAddress ?? '');
  const domains = new Set([domainOf(defaultFrom), ...(Array.isArray(s.domains) ? s.domains.map((d) => String(d).toLowerCase()) : [])]);
  const port = typeof s.port === 'number' ? s.port : s.secure === true ? 465 : 587;
  const transport = nodemailer.createTransport({
    pool: true,
    host: String(s.host),
    port,
    secure: s.secure === true,
    requireTLS: s.requireTls === true,
    ignoreTLS: s.ignoreTls === true,
    maxConnections: typeof s.maxConnections === 'number' ? s.maxConnections : 5,
    maxMessages: 1000,
    ...(str(s.username) ? { auth: { user: String(s.username), pass: String(s.password ?? '') } } : {}),
    ...(str(dkim.privateKey) ? { dkim: { domainName: String(dkim.domainName), keySelector: String(dkim.keySelector), privateKey: String(dkim.privateKey) } } : {}),
    tls: { rejectUnauthorized: s.tlsRejectUnauthorized !== false },
    connectionTimeout: 15_000,
    socketTimeout: 60_000,
  } as never);

  async function attachments(input: SendInput): Promise<Array<Record<string, unknown>> | SendOutcome> {
    const out: Array<Record<string, unknown>> = [];
    let total = 0;
    const tooLarge: SendOutcome = { kind: 'rejected', reason: 'Attachments exceed the 10 MB message limit', code: 'ContentTooLong' };
    for (const [i, p] of (input.messageParts ?? []).entries()) {
      const type = p.type ?? 'application/octet-stream';
      if (type.startsWith('text/plain') || type.startsWith('text/html')) continue;
      const filename = p.name ?? `attachment-${i + 1}`;
      if (typeof p.data === 'string') {
        const content = Buffer.from(p.data, 'base64');
        if ((total += content.length) > MAX_MESSAGE_BYTES) return tooLarge;
        out.push({ filename, contentType: type, content });
      }
      else if (p.url) {
        try {
          const res = await guardedRequest({ url: p.url, timeoutMs: 15_000, allowPrivate: ctx.allowPrivateTargets, signal: input.signal, maxResponseBytes: MAX_MESSAGE_BYTES + 1 });
          if (res.status >= 400) return { kind: res.status >= 500 ? 'transient' : 'rejected', reason: `Attachment ${filename} could not be fetched (${res.status})`, code: 'ContentNotSupported' };
          if (res.body.length > MAX_MESSAGE_BYTES) return { kind: 'rejected', reason: 'Attachment too large', code: 'ContentTooLong' };
          if ((total += res.body.length) > MAX_MESSAGE_BYTES) return tooLarge;
          out.push({ filename, contentType: type, content: res.body });
        } catch (err) {
          if (err instanceof OutboundError && (err.kind === 'timeout' || err.kind === 'network')) return { kind: 'transient', reason: err.message, code: 'ProviderError' };
          return { kind: 'rejected', reason: `Attachment ${filename}: ${(err as Error).message}`, code: 'ContentNotSupported' };
        }
      }
    }
    return out;
  }

  return {
    async send(input) {
      const custom = obj(input.customBody);
      const options = obj(input.options);
      const to = String(input.to.email ?? '').trim();
      if (!EMAIL.test(to)) return { kind: 'rejected', reason: 'No valid e-mail address to send to', code: 'InvalidAddress' };
      const customFrom = obj(custom.from);
      const fromAddress = str(customFrom.address) ?? str(options.fromAddress) ?? defaultFrom;
      const fromName = str(customFrom.name) ?? str(options.fromName) ?? str(s.defaultFromName);
      if (!EMAIL.test(fromAddress) || !domains.has(domainOf(fromAddress))) return { kind: 'rejected', reason: `Sender ${fromAddress} is not on a domain configured for this channel`, code: 'SenderIdRejected' };
      const replyTo = str(custom.replyTo) ?? str(options.replyTo);
      let html = str(custom.html) ?? str(options.htmlBody) ?? (input.messageParts ?? []).find((p) => (p.type ?? '').startsWith('text/html') && typeof p.data === 'string')?.data ?? input.htmlBody;
      const text = str(custom.text) ?? input.body ?? (input.messageParts ?? []).find((p) => (p.type ?? '').startsWith('text/plain') && typeof p.data === 'string')?.data;
      if (!html && !text) return { kind: 'rejected', reason: 'No text or HTML body to send', code: 'ContentNotSupported' };
      const trackClicks = options.trackClicks === undefined ? !!html : options.trackClicks === true;
      if (html && trackClicks && ctx.trackLink) html = await trackHtmlLinks(html, (url) => ctx.trackLink!(url, input.messageId, input.metadata));
      if (html && options.trackOpens === true && deps.openPixelUrl) {
        const pixel = `<img src="${deps.openPixelUrl(input.apiSpaceId, input.messageId)}" width="1" height="1" alt="" style="display:none">`;
        html = /<\/body>/i.test(html) ? html.replace(/<\/body>/i, `${pixel}</body>`) : html + pixel;
      }
      const files = await attachments(input);
      if (!Array.isArray(files)) return files;
      const extraHeaders = Object.fromEntries(Object.entries(obj(custom.headers)).filter(([k, v]) => typeof v === 'string' && !/^(from|to|subject|message-id|date|mime-version|content-)/i.test(k)));
      const messageId = messageIdFor(input.messageId, domainOf(fromAddress));
      const subject = str(custom.subject) ?? input.title ?? '';
      try {
        const info = await transport.sendMail({
          from: fromName ? { name: fromName, address: fromAddress } : fromAddress,
          to,
          ...(replyTo ? { replyTo } : {}),
          subject,
          ...(text ? { text } : {}),
          ...(html ? { html } : {}),
          attachments: files as never,
          messageId,
          headers: { ...extraHeaders, 'X-Switchboard-Message-Id': input.messageId },
        });
        return { kind: 'accepted', providerMessageId: info.messageId ?? messageId, acceptedAt: now(), details: { to, from: fromAddress, subject, smtpResponse: String(info.response ?? '').slice(0, 200) } };
      } catch (err) {
        return classify(err);
      }
    },

    async handleCallback(req: CallbackRequest): Promise<CallbackResult> {
      const secret = str(s.inboundSecret);
      const auth = req.headers.authorization;
      const given = /^Bearer\s+(.+)$/i.exec((Array.isArray(auth) ? auth[0] : auth) ?? '')?.[1]?.trim() ?? '';
      const ok = !!secret && given.length === secret.length && timingSafeEqual(Buffer.from(given), Buffer.from(secret));
      if (!ok) return { status: 401, body: '{"message":"Invalid inbound secret"}', contentType: 'application/json' };
      if (/json/i.test(req.contentType ?? '')) {
        let body: unknown;
        try {
          body = JSON.parse(req.rawBody.toString('utf8'));
        } catch {
          return { status: 400, body: '{"message":"Invalid JSON"}', contentType: 'application/json' };
        }
        const inbound = parseJsonMail(obj(body), ctx.channelId);
        if (!inbound) return { status: 400, body: '{"message":"from is required"}', contentType: 'application/json' };
        return { status: 200, inbounds: [inbound] };
      }
      try {
        const parsed = await parseRawMail(req.rawBody, ctx.channelId, now());
        return { status: 200, ...parsed };
      } catch {
        return { status: 400, body: '{"message":"Unreadable message"}', contentType: 'application/json' };
      }
    },

    async close() {
      transport.close();
    },
  };
}

export function smtpProvider(deps: SmtpDeps = {}): ChannelProvider {
  return {
    channel: 'email',
    provider: 'smtp',
    secretSettings: ['password', 'dkim.privateKey', 'inboundSecret'],
    validateSettings: validateSmtpSettings,
    create: (ctx) => createSmtpAdapter(ctx, deps),
  };
}
