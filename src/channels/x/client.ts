/**
 * Requests to the X API for one `xApi` configuration (channels.md §8), shared by sending, media
 * upload and `dm_events` polling: OAuth 1.0a user-context signatures or an OAuth 2.0 user token,
 * one pooled connection set, and the classification of X's answers into send outcomes.
 */
import type { AdapterContext, MediaFetch, SendOutcome } from '../adapter.js';
import { createGuardedAgents, downloadMedia, failedRequestOutcome, guardedRequest, retryAfterMs } from '../http-guard.js';
import { asArray as arr, asObject as obj, asString as str, parseJson } from '../meta/graph.js';
import { oauth1Header } from './oauth1.js';

export type Headers = Record<string, string | string[] | undefined>;
/** An HTTP answer from X. */
export interface XAnswer { status: number; headers: Headers; text: string }
export type Failed = SendOutcome & { kind: 'transient' | 'rejected' };

const TIMEOUT_MS = 10_000;

/** An X user (or event) id: digits, as a string or a number from a sender that did not quote it. */
export const idOf = (v: unknown): string | undefined => {
  const s = typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? String(v) : v;
  return typeof s === 'string' && /^\d{1,25}$/.test(s) ? s : undefined;
};

/** Milliseconds until `x-rate-limit-reset` (epoch seconds), capped at a day; else `Retry-After`. */
function rateLimitDelay(headers: Headers, now: number): number | undefined {
  const raw = headers['x-rate-limit-reset'];
  const reset = Array.isArray(raw) ? raw[0] : raw;
  if (reset && /^\d+$/.test(reset.trim())) return Math.max(0, Math.min(Number(reset.trim()) * 1000 - now, 86_400_000));
  return retryAfterMs(headers['retry-after'], now);
}

/**
 * An X API answer as a send outcome: 201/2xx accepted with `data.dm_event_id`; 429 (with its
 * reset time), 408 and 5xx transient; 401 `Unauthorized`; 403 `ProviderRejected` (X refuses DMs
 * to users who have not allowed them, channels.md §8); other 4xx `HTTP<status>`.
 */
export function classifyX(status: number, headers: Headers, text: string): SendOutcome {
  const body = obj(parseJson(text));
  if (status >= 200 && status < 300) {
    const data = obj(body.data);
    const id = str(data.dm_event_id);
    const conversation = str(data.dm_conversation_id);
    return { kind: 'accepted', ...(id ? { providerMessageId: id } : {}), acceptedAt: Date.now(), details: conversation ? { dmConversationId: conversation } : {} };
  }
  const first = obj(arr(body.errors)[0]);
  const message = str(body.detail) ?? str(body.title) ?? str(first.message) ?? (text.replace(/\s+/g, ' ').trim().slice(0, 200) || `HTTP ${status}`);
  const type = str(body.type) ?? (first.code !== undefined ? String(first.code) : undefined);
  const reason = `X API answered ${status}${type ? ` (${type})` : ''}: ${message}`;
  if (status === 429) {
    const after = rateLimitDelay(headers, Date.now());
    return { kind: 'transient', code: 'RateLimited', reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  if (status >= 500 || status === 408) return { kind: 'transient', code: 'ProviderUnavailable', reason };
  if (status === 401) return { kind: 'rejected', code: 'Unauthorized', reason };
  if (status === 403) return { kind: 'rejected', code: 'ProviderRejected', reason };
  return { kind: 'rejected', code: `HTTP${status}`, reason };
}

export interface XRequest {
  method: 'GET' | 'POST';
  url: string;
  signal: AbortSignal | undefined;
  /** A JSON text, or another body with its content type (a multipart media segment). */
  body?: string | { type: string; data: Buffer };
  timeoutMs?: number;
}

export interface XClient {
  /** One signed request; a failure before any answer comes back as the outcome it means. */
  call(req: XRequest): Promise<XAnswer | Failed>;
  /** A DM's media file (`ton.twitter.com` serves it only to a signed request). */
  download(url: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<MediaFetch>;
  close(): void;
}

/** The client of one configuration; its connections are reused and closed with its adapter. */
export function createXClient(ctx: AdapterContext): XClient {
  const s = ctx.settings;
  const bearer = str(s.bearerToken);
  const agents = createGuardedAgents({ maxSockets: 32 });

  // Neither a JSON nor a multipart body is part of an OAuth 1.0a signature (RFC 5849 §3.4.1.3.1).
  const authorization = (method: string, url: string): string => (bearer
    ? `Bearer ${bearer}`
    : oauth1Header({ method, url, consumerKey: String(s.consumerKey ?? ''), consumerSecret: String(s.consumerSecret ?? ''), token: String(s.accessToken ?? ''), tokenSecret: String(s.accessTokenSecret ?? '') }));

  return {
    async call({ method, url, signal, body, timeoutMs = TIMEOUT_MS }) {
      const type = body === undefined ? undefined : typeof body === 'string' ? 'application/json' : body.type;
      const headers = { authorization: authorization(method, url), accept: 'application/json', 'user-agent': 'Switchboard-X/1', ...(type ? { 'content-type': type } : {}) };
      try {
        const res = await guardedRequest({
          url, method, headers, ...(body !== undefined ? { body: typeof body === 'string' ? body : body.data } : {}),
          timeoutMs, allowPrivate: ctx.allowPrivateTargets, signal, agents,
        });
        return { status: res.status, headers: res.headers, text: res.body.toString('utf8') };
      } catch (err) {
        return failedRequestOutcome(err);
      }
    },
    download(url, { maxBytes, signal }) {
      return downloadMedia({ url, headers: { authorization: authorization('GET', url), 'user-agent': 'Switchboard-X/1' }, allowPrivate: ctx.allowPrivateTargets, maxBytes, signal });
    },
    close() {
      agents.destroy();
    },
  };
}

/** Whether a call ended before any answer (its outcome) rather than with one. */
export const isFailure = (a: XAnswer | Failed): a is Failed => 'kind' in a;
