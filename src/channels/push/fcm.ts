/**
 * Firebase Cloud Messaging client (HTTP v1 API) authenticated with a service account.
 *
 * Access tokens come from the shared Google service account flow (`../google/oauth.ts`): cached
 * until shortly before they expire, one fetch serving every send waiting for it. Both calls go
 * through the outbound guard (private-address policy, keep-alive pool of this client).
 */
import { createGuardedAgents, guardedRequest, retryAfterMs, type GuardedResponse } from '../http-guard.js';
import { createGoogleTokens, outboundFailure, parseJson, type GoogleFailure } from '../google/oauth.js';
import type { GoogleServiceAccount } from '../google/service-account.js';
import type { PushResult } from './apns.js';

export type { PushResult } from './apns.js';

/** The fields of a Google service account JSON key file that the client uses. */
export type FcmServiceAccount = GoogleServiceAccount & { project_id: string };

/** Endpoints and clock are overridable so tests and self-hosted peers can stand in for Google. */
export interface FcmClientOptions {
  serviceAccount: FcmServiceAccount;
  /** Allow loopback/private targets (self-hosted test peers); refused otherwise. */
  allowPrivateTargets: boolean;
  /** Default `https://fcm.googleapis.com`. */
  baseUrl?: string;
  /** Default the service account's `token_uri`, else Google's token endpoint. */
  tokenUrl?: string;
  /** Per HTTP request (the token fetch and the send each get this much). Default 10000. */
  timeoutMs?: number;
  /** Clock for the access token's expiry and the assertion's `iat`. Default `Date.now`. */
  now?: () => number;
}

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';

type Failed = Extract<PushResult, { ok: false }>;

interface GoogleError {
  error?: { code?: number; message?: string; status?: string; details?: Array<{ '@type'?: string; errorCode?: string }> };
}

const fail = (retry: boolean, reason: string, extra: Partial<Failed> = {}): Failed => ({ ok: false, retry, invalidToken: false, reason, ...extra });
const failed = (f: GoogleFailure): Failed => fail(f.retry, f.reason, { ...(f.status === undefined ? {} : { status: f.status }), ...(f.retryAfterMs === undefined ? {} : { retryAfterMs: f.retryAfterMs }) });

/** FCM HTTP v1 sender for one Firebase project; `send` never throws. */
export class FcmClient {
  private readonly sendUrl: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly agents = createGuardedAgents({ maxSockets: 32 });
  private readonly tokens: ReturnType<typeof createGoogleTokens>;

  constructor(private readonly options: FcmClientOptions) {
    const account = options.serviceAccount;
    const base = (options.baseUrl ?? 'https://fcm.googleapis.com').replace(/\/+$/, '');
    this.sendUrl = `${base}/v1/projects/${encodeURIComponent(account.project_id)}/messages:send`;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
    this.tokens = createGoogleTokens({
      serviceAccount: account, scope: SCOPE, allowPrivateTargets: options.allowPrivateTargets, agents: this.agents,
      ...(options.tokenUrl ? { tokenUrl: options.tokenUrl } : {}), timeoutMs: this.timeoutMs, now: this.now,
    });
  }

  /**
   * `message` is the FCM v1 `message` object WITHOUT `token`; the client adds `token`, so one
   * prepared message can go to many devices. Never throws.
   */
  async send(token: string, message: Record<string, unknown>, signal?: AbortSignal): Promise<PushResult> {
    const grant = await this.tokens.get(signal);
    if ('failure' in grant) return failed(grant.failure);
    let res: GuardedResponse;
    try {
      res = await guardedRequest({
        url: this.sendUrl,
        method: 'POST',
        headers: { authorization: `Bearer ${grant.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: { ...message, token } }),
        timeoutMs: this.timeoutMs,
        allowPrivate: this.options.allowPrivateTargets,
        signal,
        agents: this.agents,
      });
    } catch (err) {
      return failed(outboundFailure(err, 'FCM send failed'));
    }
    return this.outcome(res, grant.token);
  }

  /** Drops the keep-alive connections; a later `send` opens new ones. */
  async close(): Promise<void> {
    this.agents.destroy();
  }

  private outcome(res: GuardedResponse, accessToken: string): PushResult {
    const { status } = res;
    if (status >= 200 && status < 300) {
      const name = parseJson<{ name?: unknown }>(res.body)?.name;
      return { ok: true, id: typeof name === 'string' ? name : undefined };
    }
    const error = parseJson<GoogleError>(res.body)?.error;
    const errorCode = error?.details?.find((d) => d?.['@type'] === FCM_ERROR_TYPE)?.errorCode;
    const reason = errorCode ?? error?.status ?? error?.message ?? `HTTP ${status}`;
    if (errorCode === 'UNREGISTERED' || status === 404 || error?.status === 'NOT_FOUND' || (status === 403 && errorCode === 'SENDER_ID_MISMATCH')) {
      return { ok: false, retry: false, invalidToken: true, reason, status };
    }
    if (status === 401) {
      this.tokens.drop(accessToken);
      // FCM's credentials for Apple/web push are wrong: a new access token does not change that.
      return fail(errorCode !== 'THIRD_PARTY_AUTH_ERROR', reason, { status });
    }
    if (status === 429 || status >= 500) {
      const after = retryAfterMs(res.headers['retry-after'], this.now());
      return fail(true, reason, after === undefined ? { status } : { status, retryAfterMs: after });
    }
    return fail(false, reason, { status });
  }
}
