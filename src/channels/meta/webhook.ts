/**
 * What Meta's webhooks have in common (channels.md §6, §7): the `whatsApp` and `fbMessenger`
 * providers both answer the `hub.challenge` verification handshake and check the
 * `X-Hub-Signature-256` signature of every event, so both share this one implementation.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CallbackRequest, CallbackResult } from '../adapter.js';

/** The first value of a request header (`name` in lower case, as Node delivers headers). */
export function header(req: CallbackRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The first value of a query parameter. */
export function queryValue(req: CallbackRequest, name: string): string | undefined {
  const v = req.query[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Constant-time comparison, so a caller cannot learn a secret one character at a time. */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A JSON error answer in the API's error shape `{message, code, status}`. */
export const jsonAnswer = (status: number, code: string, message: string): CallbackResult => ({ status, contentType: 'application/json', body: JSON.stringify({ message, code, status }) });

const configured = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * The answer to Meta's subscription check (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`):
 * the challenge as text when the token matches the configured one, else 403. An unconfigured
 * token matches nothing.
 */
export function verificationAnswer(req: CallbackRequest, verifyToken: unknown): CallbackResult {
  const token = queryValue(req, 'hub.verify_token') ?? '';
  const challenge = queryValue(req, 'hub.challenge') ?? '';
  if (queryValue(req, 'hub.mode') === 'subscribe' && configured(verifyToken) && sameSecret(token, verifyToken)) {
    return { status: 200, body: challenge, contentType: 'text/plain; charset=utf-8' };
  }
  return jsonAnswer(403, 'Forbidden', 'The verify token does not match');
}

/**
 * Whether an event carries a valid `X-Hub-Signature-256` (`sha256=` + hex HMAC-SHA256 of the raw
 * body under the app secret). Without a configured secret no event is accepted.
 */
export function signatureValid(req: CallbackRequest, appSecret: unknown): boolean {
  if (!configured(appSecret)) return false;
  const given = header(req, 'x-hub-signature-256') ?? '';
  const expected = `sha256=${createHmac('sha256', appSecret).update(req.rawBody).digest('hex')}`;
  return sameSecret(given.toLowerCase(), expected);
}
