/**
 * Requests to Google's RCS Business Messaging API for one `rcs` configuration: the capability
 * check (`GET /v1/phones/{E.164}/capabilities`) and agent messages
 * (`POST /v1/phones/{E.164}/agentMessages?messageId=…&agentId=…`), with a bearer token from the
 * service account, and the classification of Google's error answers.
 */
import type { SendOutcome } from '../adapter.js';
import { createGuardedAgents, failedRequestOutcome, guardedRequest, retryAfterMs, type GuardedResponse } from '../http-guard.js';
import { createGoogleTokens, parseJson } from '../google/oauth.js';
import type { GoogleServiceAccount } from '../google/service-account.js';

type Json = Record<string, unknown>;
type Failed = SendOutcome & { kind: 'transient' | 'rejected' };
/** One request's answer: the body of a 2xx, or how it failed (`status` 0: no answer). */
export type RbmAnswer = { ok: true; body: Json } | { ok: false; status: number; outcome: Failed };

const SCOPE = 'https://www.googleapis.com/auth/rcsbusinessmessaging';
const TIMEOUT_MS = 10_000;

/**
 * A Google API error answer (`{error: {code, message, status}}`) as an outcome: 429 (quota), 408
 * and 5xx are transient; 401 is transient too (the token is dropped, the next attempt fetches a
 * new one; a revoked account then fails at the token endpoint); anything else is rejected with
 * Google's status name (`INVALID_ARGUMENT`, `PERMISSION_DENIED`…) or `HTTP<status>`.
 */
export function classifyGoogle(res: GuardedResponse, now: number): Failed {
  const error = parseJson<{ error?: { message?: unknown; status?: unknown } }>(res.body)?.error ?? {};
  const name = typeof error.status === 'string' && /^[A-Z_]{2,40}$/.test(error.status) ? error.status : undefined;
  const message = typeof error.message === 'string' && error.message ? error.message : res.body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
  const reason = `RBM API answered ${res.status}${name ? ` ${name}` : ''}${message ? `: ${message}` : ''}`;
  if (res.status === 429) {
    const after = retryAfterMs(res.headers['retry-after'], now);
    return { kind: 'transient', code: 'RateLimited', reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  if (res.status >= 500 || res.status === 408) {
    const after = retryAfterMs(res.headers['retry-after'], now);
    return { kind: 'transient', code: 'ProviderUnavailable', reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  if (res.status === 401) return { kind: 'transient', code: 'Unauthorized', reason };
  return { kind: 'rejected', code: name ?? `HTTP${res.status}`, reason };
}

/** The RBM client of one adapter: its connections and access token are closed and dropped with it. */
export function createRbmClient(options: { baseUrl: string; serviceAccount: GoogleServiceAccount; allowPrivateTargets: boolean; now?: () => number }) {
  const base = options.baseUrl.replace(/\/+$/, '');
  const now = options.now ?? Date.now;
  const agents = createGuardedAgents({ maxSockets: 32 });
  const tokens = createGoogleTokens({ serviceAccount: options.serviceAccount, scope: SCOPE, allowPrivateTargets: options.allowPrivateTargets, agents, timeoutMs: TIMEOUT_MS, now });
  // RBM names a user `phones/{E.164}`; the `+` stays literal in the path, as Google's examples write it.
  const phoneUrl = (digits: string, tail: string, query: Record<string, string>) => `${base}/v1/phones/+${digits}/${tail}?${new URLSearchParams(query).toString()}`;

  async function call(method: 'GET' | 'POST', url: string, body: Json | undefined, signal: AbortSignal | undefined): Promise<RbmAnswer> {
    const grant = await tokens.get(signal);
    if ('failure' in grant) {
      const f = grant.failure;
      const outcome: Failed = f.retry
        ? { kind: 'transient', code: 'AuthUnavailable', reason: f.reason, ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}) }
        : { kind: 'rejected', code: 'Unauthorized', reason: f.reason };
      return { ok: false, status: 0, outcome };
    }
    let res: GuardedResponse;
    try {
      res = await guardedRequest({
        url, method, signal, agents, timeoutMs: TIMEOUT_MS, allowPrivate: options.allowPrivateTargets,
        headers: { authorization: `Bearer ${grant.token}`, accept: 'application/json', 'user-agent': 'Switchboard-RBM/1', ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      return { ok: false, status: 0, outcome: failedRequestOutcome(err) };
    }
    if (res.status >= 200 && res.status < 300) {
      const doc = parseJson<unknown>(res.body);
      return { ok: true, body: doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Json) : {} };
    }
    if (res.status === 401) tokens.drop(grant.token);
    return { ok: false, status: res.status, outcome: classifyGoogle(res, now()) };
  }

  return {
    /** `phones.getCapabilities`: 200 when the user can be reached through the agent, 404 when not. */
    capabilities(digits: string, agentId: string, requestId: string, signal?: AbortSignal): Promise<RbmAnswer> {
      return call('GET', phoneUrl(digits, 'capabilities', { agentId, requestId }), undefined, signal);
    },
    /** `phones.agentMessages.create` with the agent-assigned message id (a UUID). */
    agentMessage(digits: string, agentId: string, messageId: string, message: Json, signal?: AbortSignal): Promise<RbmAnswer> {
      return call('POST', phoneUrl(digits, 'agentMessages', { messageId, agentId }), message, signal);
    },
    /** `phones.agentEvents.create` (a `READ` receipt for a user's message) with an agent-assigned event id (a UUID). */
    agentEvent(digits: string, agentId: string, eventId: string, event: Json, signal?: AbortSignal): Promise<RbmAnswer> {
      return call('POST', phoneUrl(digits, 'agentEvents', { eventId, agentId }), event, signal);
    },
    close(): void {
      agents.destroy();
    },
  };
}

export type RbmClient = ReturnType<typeof createRbmClient>;
