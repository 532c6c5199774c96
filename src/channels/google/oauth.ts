/**
 * OAuth 2.0 access tokens for a Google service account (the JWT bearer grant), shared by the FCM
 * push client and the RBM (`rcs`) adapter.
 *
 * The service account's key signs a JWT that is exchanged for an access token; the token is cached
 * until shortly before it expires and one fetch serves every request waiting for it. The exchange
 * goes through the outbound guard (private-address policy, the caller's keep-alive pool).
 */
import { importPKCS8, SignJWT } from 'jose';
import { guardedRequest, OutboundError, retryAfterMs, type GuardedAgents, type GuardedResponse } from '../http-guard.js';
import type { GoogleServiceAccount } from './service-account.js';

/** Why a request could not be made or answered; `retry` says whether trying again may help. */
export interface GoogleFailure { retry: boolean; reason: string; status?: number; retryAfterMs?: number }
export type Grant = { token: string } | { failure: GoogleFailure };

export interface GoogleTokenOptions {
  serviceAccount: GoogleServiceAccount;
  scope: string;
  /** Allow loopback/private targets (self-hosted test peers); refused otherwise. */
  allowPrivateTargets: boolean;
  agents: GuardedAgents;
  /** Default the service account's `token_uri`, else Google's token endpoint. */
  tokenUrl?: string;
  timeoutMs: number;
  /** Clock for the token's expiry and the assertion's `iat`. */
  now: () => number;
}

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** A token this close to expiry is replaced, so it cannot lapse between check and use. */
const EARLY_REFRESH_MS = 60_000;

type SigningKey = Awaited<ReturnType<typeof importPKCS8>>;

/** A guard failure: a refused or malformed target will not get better by retrying. */
export function outboundFailure(err: unknown, what: string): GoogleFailure {
  if (err instanceof OutboundError) {
    if (err.kind === 'aborted') return { retry: true, reason: 'aborted' };
    return { retry: err.kind !== 'blocked' && err.kind !== 'invalid', reason: `${what}: ${err.message}` };
  }
  return { retry: true, reason: `${what}: ${(err as Error).message}` };
}

/** JSON text as a value of the expected shape; undefined when it is not JSON. */
export function parseJson<T>(body: Buffer): T | undefined {
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

/** Access tokens for one service account and scope; `get` never throws. */
export function createGoogleTokens(options: GoogleTokenOptions) {
  const account = options.serviceAccount;
  const tokenUrl = options.tokenUrl ?? account.token_uri ?? 'https://oauth2.googleapis.com/token';
  let key: Promise<SigningKey> | undefined;
  let access: { token: string; expiresAt: number } | undefined;
  let fetching: Promise<Grant> | undefined;

  async function signedAssertion(iat: number): Promise<string> {
    key ??= importPKCS8(account.private_key, 'RS256');
    const header: { alg: string; typ: string; kid?: string } = { alg: 'RS256', typ: 'JWT' };
    if (typeof account.private_key_id === 'string') header.kid = account.private_key_id;
    return new SignJWT({ scope: options.scope })
      .setProtectedHeader(header)
      .setIssuer(account.client_email)
      .setAudience(tokenUrl)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(await key);
  }

  async function fetchToken(): Promise<Grant> {
    const now = options.now();
    let assertion: string;
    try {
      assertion = await signedAssertion(Math.floor(now / 1000));
    } catch (err) {
      return { failure: { retry: false, reason: `Cannot sign the access token request with the service account key: ${(err as Error).message}` } };
    }
    let res: GuardedResponse;
    try {
      res = await guardedRequest({
        url: tokenUrl,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: GRANT_TYPE, assertion }).toString(),
        timeoutMs: options.timeoutMs,
        allowPrivate: options.allowPrivateTargets,
        agents: options.agents,
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
      const after = retry ? retryAfterMs(res.headers['retry-after'], options.now()) : undefined;
      return { failure: { retry, reason, status: res.status, ...(after === undefined ? {} : { retryAfterMs: after }) } };
    }
    if (typeof doc?.access_token !== 'string' || !doc.access_token) {
      return { failure: { retry: true, reason: 'Access token request failed: the answer has no access_token', status: res.status } };
    }
    const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 3600;
    access = { token: doc.access_token, expiresAt: now + expiresIn * 1000 };
    return { token: doc.access_token };
  }

  return {
    /** The cached access token, or one fetch shared by every caller until it settles. */
    get(signal?: AbortSignal): Promise<Grant> {
      if (access && options.now() < access.expiresAt - EARLY_REFRESH_MS) return Promise.resolve({ token: access.token });
      fetching ??= fetchToken().finally(() => {
        fetching = undefined;
      });
      return raceAbort(fetching, signal, { failure: { retry: true, reason: 'aborted' } });
    },
    /** Forgets `token` after the API refused it (401), unless a newer one replaced it already. */
    drop(token: string): void {
      if (access?.token === token) access = undefined;
    },
  };
}

export type GoogleTokens = ReturnType<typeof createGoogleTokens>;
