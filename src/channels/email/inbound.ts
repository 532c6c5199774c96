/**
 * Inbound e-mail (channels.md §4): a raw RFC 5322 message or a relay's JSON becomes an inbound
 * message correlated by In-Reply-To/References; RFC 3464 delivery status notifications become
 * receipts for the message named in the returned headers.
 */
import { simpleParser, type AddressObject } from 'mailparser';
import type { InboundReport, ReceiptReport } from '../adapter.js';

/** Our Message-IDs look like `<sb.{messageId}@{domain}>`, so any copy of one names the message. */
export const messageIdFor = (messageId: string, domain: string) => `<sb.${messageId}@${domain}>`;
const OURS = /<sb\.([0-9A-Za-z-]{1,100})@[^>\s]+>/;

export function ourMessageId(text: string | undefined): string | undefined {
  return text ? OURS.exec(text)?.[1] : undefined;
}

function firstAddress(a: AddressObject | AddressObject[] | undefined): string | undefined {
  const list = Array.isArray(a) ? a : a ? [a] : [];
  return list.flatMap((x) => x.value).find((v) => v.address)?.address?.toLowerCase();
}

/** Per-recipient fields of a message/delivery-status body (RFC 3464 §2.3). */
export function parseDeliveryStatus(text: string): Array<{ action?: string; status?: string; diagnostic?: string; recipient?: string }> {
  const unfolded = text.replace(/\r?\n[ \t]+/g, ' ');
  const blocks = unfolded.split(/\r?\n\r?\n/).slice(1);
  const out = [];
  for (const block of blocks) {
    const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'im').exec(block)?.[1]?.trim();
    const action = field('Action')?.toLowerCase();
    if (!action) continue;
    out.push({ action, status: field('Status'), diagnostic: field('Diagnostic-Code'), recipient: field('Final-Recipient')?.replace(/^rfc822;\s*/i, '') });
  }
  return out;
}

export interface ParsedInboundMail {
  receipts: ReceiptReport[];
  inbounds: InboundReport[];
}

/** Parses a raw message: a DSN yields receipts, anything else one inbound message. */
export async function parseRawMail(raw: Buffer, channelId: string, now: number): Promise<ParsedInboundMail> {
  const mail = await simpleParser(raw, { skipImageLinks: true });
  const contentType = String(mail.headers.get('content-type') && (mail.headers.get('content-type') as { value?: string }).value || '');
  const reportType = (mail.headers.get('content-type') as { params?: Record<string, string> } | undefined)?.params?.['report-type'];
  if (/multipart\/report/i.test(contentType) && /delivery-status/i.test(reportType ?? '')) {
    const boundary = (mail.headers.get('content-type') as { params?: Record<string, string> }).params?.boundary;
    const sections = boundary ? raw.toString('utf8').split(`--${boundary}`) : [];
    // mailparser folds message/delivery-status into the text body, so the report is read raw.
    const statusPart = sections.find((p) => /^\s*Content-Type:\s*message\/(global-)?delivery-status/im.test(p.split(/\r?\n\r?\n/)[0] ?? ''));
    const statusBody = statusPart ? statusPart.slice(statusPart.search(/\r?\n\r?\n/)).replace(/^\r?\n\r?\n/, '') : '';
    const returned = mail.attachments.filter((a) => /rfc822/i.test(a.contentType)).map((a) => a.content.toString('utf8')).join('\n');
    const messageId = ourMessageId(returned) ?? ourMessageId(sections.slice(2).join('\n'));
    const statuses = parseDeliveryStatus(`\n\n${statusBody}`);
    const receipts: ReceiptReport[] = [];
    for (const s of statuses) {
      if (!messageId) break;
      if (s.action === 'failed') {
        receipts.push({ messageId, status: 'failed', at: now, details: { errorCode: 'Bounced', dsnStatus: s.status, diagnosticCode: s.diagnostic, recipient: s.recipient } });
      } else if (s.action === 'delivered') receipts.push({ messageId, status: 'delivered', at: now, details: { dsnStatus: s.status } });
    }
    return { receipts, inbounds: [] };
  }
  const inReplyTo = ourMessageId(String(mail.inReplyTo ?? '')) ?? ourMessageId(Array.isArray(mail.references) ? mail.references.join(' ') : String(mail.references ?? ''));
  const parts: Array<Record<string, unknown>> = [];
  if (mail.html) parts.push({ type: 'text/html', data: mail.html });
  for (const a of mail.attachments) parts.push({ type: a.contentType, name: a.filename, size: a.size, data: a.content.toString('base64') });
  return {
    receipts: [],
    inbounds: [{
      channelId,
      from: { email: firstAddress(mail.from) ?? '' },
      ...(firstAddress(mail.to) ? { to: { email: firstAddress(mail.to) } } : {}),
      title: mail.subject,
      body: mail.text?.trim() ?? '',
      ...(parts.length ? { messageParts: parts } : {}),
      providerMessageId: mail.messageId,
      ...(inReplyTo ? { inReplyToMessageId: inReplyTo } : {}),
      sentOn: mail.date?.getTime(),
    }],
  };
}

/** The relay's JSON form: `{from, to, subject, text, html, headers, attachments}`. */
export function parseJsonMail(body: Record<string, unknown>, channelId: string): InboundReport | undefined {
  const addr = (v: unknown) => (typeof v === 'string' ? (/<([^>]+)>/.exec(v)?.[1] ?? v).trim().toLowerCase() : undefined);
  const from = addr(body.from);
  if (!from) return undefined;
  const headers = (body.headers && typeof body.headers === 'object' ? body.headers : {}) as Record<string, unknown>;
  const h = (name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  const inReplyTo = ourMessageId(String(h('in-reply-to') ?? '')) ?? ourMessageId(String(h('references') ?? ''));
  const parts: Array<Record<string, unknown>> = [];
  if (typeof body.html === 'string') parts.push({ type: 'text/html', data: body.html });
  if (Array.isArray(body.attachments)) for (const a of body.attachments) if (a && typeof a === 'object') parts.push({ ...(a as Record<string, unknown>) });
  return {
    channelId,
    from: { email: from },
    ...(addr(body.to) ? { to: { email: addr(body.to) } } : {}),
    title: typeof body.subject === 'string' ? body.subject : undefined,
    body: typeof body.text === 'string' ? body.text : '',
    ...(parts.length ? { messageParts: parts } : {}),
    ...(inReplyTo ? { inReplyToMessageId: inReplyTo } : {}),
    raw: undefined,
  };
}
