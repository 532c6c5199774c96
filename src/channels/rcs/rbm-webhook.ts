/**
 * RBM webhook callbacks (channels.md §10): the verification handshake (a POST of
 * `{clientToken, secret}` answered with the secret), and events signed with `X-Goog-Signature`
 * (base64 HMAC-SHA512 under the webhook's `clientToken`). Events arrive in a Pub/Sub push
 * envelope `{message: {data: base64, attributes, messageId, publishTime}, subscription}`; the
 * signature covers the decoded `data`, which holds a user event, a server event or a user message.
 */
import { createHmac } from 'node:crypto';
import type { CallbackRequest, CallbackResult, InboundReport, ReceiptReport } from '../adapter.js';
import { phoneDigits } from '../../lib/phone.js';
import { header, jsonAnswer, sameSecret } from '../meta/webhook.js';
import { asObject as obj, asString as str, parseJson } from '../meta/graph.js';

type Json = Record<string, unknown>;

/** Receipts Switchboard tracks: the user's client reports delivery and reading; RBM reports a revoked expired message. */
const RECEIPTS: Record<string, ReceiptReport['status']> = { DELIVERED: 'delivered', READ: 'read', TTL_EXPIRATION_REVOKED: 'expired' };

const timeOf = (v: unknown): number | undefined => {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isFinite(t) ? t : undefined;
};

/** A MIME type without parameters, as inbound parts require. */
function bareType(v: unknown): string {
  const t = typeof v === 'string' ? v.split(';')[0]!.trim().toLowerCase() : '';
  return /^[\w.+-]+\/[\w.+-]+$/.test(t) ? t : 'application/octet-stream';
}

/** The event the callback carries: the decoded `message.data` of an envelope, else the body itself. */
function unwrap(doc: Json, raw: Buffer): { signed: Buffer; event: unknown } {
  const message = obj(doc.message);
  if (typeof message.data !== 'string') return { signed: raw, event: doc };
  const data = Buffer.from(message.data, 'base64');
  return { signed: data, event: parseJson(data.toString('utf8')) };
}

function signatureValid(req: CallbackRequest, signed: Buffer, clientToken: string): boolean {
  const given = header(req, 'x-goog-signature') ?? '';
  return sameSecret(given, createHmac('sha512', clientToken).update(signed).digest('base64'));
}

/** A user or server event as a receipt; undefined for events Switchboard does not track (typing…). */
function toReceipt(e: Json): ReceiptReport | undefined {
  const status = RECEIPTS[str(e.eventType) ?? ''];
  const id = str(e.messageId);
  if (!status || !id) return undefined;
  const at = timeOf(e.sendTime);
  return { providerMessageId: id, status, details: status === 'expired' ? { errorCode: 'Expired' } : {}, ...(at ? { at } : {}) };
}

/** A user message as an inbound message; undefined without a sender or content. */
function toInbound(channelId: string, m: Json): InboundReport | undefined {
  const from = typeof m.senderPhoneNumber === 'string' ? phoneDigits(m.senderPhoneNumber) : undefined;
  if (!from) return undefined;
  let body: string | undefined;
  let messageParts: Array<Record<string, unknown>> | undefined;
  if (typeof m.text === 'string') body = m.text;
  else if (m.userFile !== undefined) {
    const file = obj(obj(m.userFile).payload);
    const url = str(file.fileUri);
    if (!url) return undefined;
    const size = typeof file.fileSizeBytes === 'number' && Number.isInteger(file.fileSizeBytes) && file.fileSizeBytes >= 0 ? file.fileSizeBytes : undefined;
    messageParts = [{ type: bareType(file.mimeType), url, ...(str(file.fileName) ? { name: file.fileName } : {}), ...(size !== undefined ? { size } : {}) }];
  } else if (m.location !== undefined) {
    const l = obj(m.location);
    if (typeof l.latitude !== 'number' || typeof l.longitude !== 'number') return undefined;
    body = `${l.latitude},${l.longitude}`;
  } else if (m.suggestionResponse !== undefined) {
    const r = obj(m.suggestionResponse);
    body = str(r.text) ?? str(r.postbackData);
  }
  if (body === undefined && !messageParts) return undefined;
  const at = timeOf(m.sendTime);
  return {
    channelId, from: { phoneNumber: from },
    ...(body !== undefined ? { body } : {}), ...(messageParts ? { messageParts } : {}),
    ...(str(m.messageId) ? { providerMessageId: m.messageId as string } : {}), ...(at ? { sentOn: at } : {}),
    raw: m,
  };
}

/** The answer to one RBM callback; `clientToken` is the channel's webhook secret. */
export function handleRbmCallback(channelId: string, req: CallbackRequest, clientToken: unknown): CallbackResult {
  if (req.method !== 'POST') return jsonAnswer(405, 'MethodNotAllowed', 'RBM callbacks are POST requests');
  // Without a configured token nothing is accepted, not even the handshake.
  if (typeof clientToken !== 'string' || !clientToken) return { status: 401 };
  const doc = parseJson(req.rawBody.toString('utf8'));
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return jsonAnswer(400, 'InvalidJson', 'The callback body is not a JSON object');
  const root = doc as Json;
  if (typeof root.clientToken === 'string' && typeof root.secret === 'string' && root.message === undefined) {
    if (!sameSecret(root.clientToken, clientToken)) return jsonAnswer(403, 'Forbidden', 'The clientToken does not match');
    return { status: 200, body: root.secret, contentType: 'text/plain; charset=utf-8' };
  }
  const { signed, event: decoded } = unwrap(root, req.rawBody);
  if (!signatureValid(req, signed, clientToken)) return { status: 401 };
  if (decoded === undefined) return jsonAnswer(400, 'InvalidJson', 'message.data is not base64-encoded JSON');
  const event = obj(decoded);
  const receipts: ReceiptReport[] = [];
  const inbounds: InboundReport[] = [];
  if (event.eventType !== undefined) {
    const r = toReceipt(event);
    if (r) receipts.push(r);
  } else {
    const i = toInbound(channelId, event);
    if (i) inbounds.push(i);
  }
  return { status: 200, body: '{}', contentType: 'application/json', receipts, inbounds };
}
