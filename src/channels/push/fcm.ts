/**
 * Firebase Cloud Messaging client (HTTP v1 API) authenticated with a service account.
 *
 * The service account's key signs a JWT that is exchanged for an OAuth2 access token; the token
 * is cached until shortly before it expires and one fetch serves every send waiting for it. Both
 * calls go through the outbound guard (private-address policy, keep-alive pool of this client).
 */
import { importPKCS8, SignJWT } from 'jose';
import { createGuardedAgents, guardedRequest, OutboundError, retryAfterMs, type GuardedResponse } from '../http-guard.js';
import type { PushResult } from './apns.js';

export type { PushResult } from './apns.js';

/** The fields of a Google service account JSON key file that the client uses. */
export interface FcmServiceAccount { project_id: string; client_email: string; private_key: string; token_uri?: string; [k: string]: unknown }

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
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** A token this close to expiry is replaced, so it cannot lapse between check and use. */
const EARLY_REFRESH_MS = 60_000;
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';

type Failed = Extract<PushResult, { ok: false }>;
type SigningKey = Awaited<ReturnType<typeof importPKCS8>>;
type Grant = { token: string } | { failure: Failed };

interface GoogleError {
  error?: { code?: number; message?: string; status?: string; details?: Array<{ '@type'?: string; errorCode?: string }> };
}

const fail = (retry: boolean, reason: string, extra: Partial<Failed> = {}): Failed => ({ ok: false, retry, invalidToken: false, reason, ...extra });

/** A guard failure as a result: a refused or malformed target will not get better by retrying. */
function outboundFailure(err: unknown, what: string): Failed {
  if (err instanceof OutboundError) {
    if (err.kind === 'aborted') return fail(true, 'aborted');
    return fail(err.kind !== 'blocked' && err.kind !== 'invalid', `${what}: ${err.message}`);
  }
  return fail(true, `${what}: ${(err as Error).message}`);
}

function parseJson<T>(body: Buffer): T | undefined {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Settles with `onAbort` when the signal fires first (the shared work itself goes on). */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined, onAbort: T): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.resolve(onAbort);
  return new Promise<T>((resolve, reject) => {
    const abort = () => resolve(onAbort);
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** FCM HTTP v1 sender for one Firebase project; `send` never throws. */
export class FcmClient {
  private readonly sendUrl: string;
  private readonly tokenUrl: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly agents = createGuardedAgents({ maxSockets: 32 });
  private key: Promise<SigningKey> | undefined;
  private access: { token: string; expiresAt: number } | undefined;
  private fetching: Promise<Grant> | undefined;

  constructor(private readonly options: FcmClientOptions) {
    const account = options.serviceAccount;
    const base = (options.baseUrl ?? 'https://fcm.googleapis.com').replace(/\/+$/, '');
    this.sendUrl = `${base}/v1/projects/${encodeURIComponent(account.project_id)}/messages:send`;
    this.tokenUrl = options.tokenUrl ?? account.token_uri ?? 'https://oauth2.googleapis.com/token';
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * `message` is the FCM v1 `message` object WITHOUT `token`; the client adds `token`, so one
   * prepared message can go to many devices. Never throws.
   */
  async send(token: string, message: Record<string, unknown>, signal?: AbortSignal): Promise<PushResult> {
    if (signal?.aborted) return fail(true, 'aborted');
    const grant = await raceAbort(this.accessToken(), signal, { failure: fail(true, 'aborted') });
    if ('failure' in grant) return grant.failure;
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
      return outboundFailure(err, 'FCM send failed');
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
      if (this.access?.token === accessToken) this.access = undefined;
      // FCM's credentials for Apple/web push are wrong: a new access token does not change that.
      return fail(errorCode !== 'THIRD_PARTY_AUTH_ERROR', reason, { status });
    }
    if (status === 429 || status >= 500) {
      const after = retryAfterMs(res.headers['retry-after'], this.now());
      return fail(true, reason, after === undefined ? { status } : { status, retryAfterMs: after });
    }
    return fail(false, reason, { status });
  }

  /** The cached access token, or one fetch shared by every caller until it settles. */
  private accessToken(): Promise<Grant> {
    if (this.access && this.now() < this.access.expiresAt - EARLY_REFRESH_MS) return Promise.resolve({ token: this.access.token });
    this.fetching ??= this.fetchToken().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async fetchToken(): Promise<Grant> {
    const account = this.options.serviceAccount;
    const now = this.now();
    const iat = Math.floor(now / 1000);
    let assertion: string;
    try {
      this.key ??= importPKCS8(account.private_key, 'RS256');
      const header: { alg: string; typ: string; kid?: string } = { alg: 'RS256', typ: 'JWT' };
      if (typeof account.private_key_id === 'string') header.kid = account.private_key_id;
      assertion = await new SignJWT({ scope: SCOPE })
        .setProtectedHeader(header)
        .setIssuer(account.client_email)
        .setAudience(this.tokenUrl)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 3600)
        .sign(await this.key);
    } catch (err) {
      return { failure: fail(false, `Cannot sign the access token request with the service account key: ${(err as Error).message}`) };
    }
    let res: GuardedResponse;
    try {
      res = await guardedRequest({
        url: this.tokenUrl,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: GRANT_TYPE, assertion }).toString(),
        timeoutMs: this.timeoutMs,
        allowPrivate: this.options.allowPrivateTargets,
        agents: this.agents,
      });
    } catch (err) {
      return { failure: outboundFailure(err, 'Access token request failed') };
    }
    const doc = parseJson<{ access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown }>(res.body);
    if (res.status !== 200) {
      const detail = [doc?.error, doc?.error_description].filter((v) => typeof v === 'string').join(': ');
      const reason = `Access token request failed: HTTP ${res.status}${detail ? ` ${detail}` : ''}`;
      // 4xx: the service account is wrong or revoked; retrying with it will not help.
      const retry = res.status === 429 || res.status >= 500;
      const after = retry ? retryAfterMs(res.headers['retry-after'], this.now()) : undefined;
      return { failure: fail(retry, reason, after === undefined ? { status: res.status } : { status: res.status, retryAfterMs: after }) };
    }
    if (typeof doc?.access_token !== 'string' || !doc.access_token) {
      return { failure: fail(true, 'Access token request failed: the answer has no access_token', { status: res.status }) };
    }
    const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 3600;
    this.access = { token: doc.access_token, expiresAt: now + expiresIn * 1000 };
    return { token: doc.access_token };
  }
}
