/**
 * Apple Push Notification service client (HTTP/2 provider API).
 *
 * One HTTP/2 session per client, opened on first use and reopened after the peer closes it:
 * Apple asks providers to keep connections open rather than connect per notification, and one
 * session multiplexes concurrent sends. The connection goes through the outbound guard's `lookup`,
 * so a push target is subject to the same private-address policy as webhooks.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { rootCertificates } from 'node:tls';
import type { LookupFunction } from 'node:net';
import { importPKCS8, SignJWT } from 'jose';
import { checkTargetUrl, guardedLookup, retryAfterMs } from '../http-guard.js';

/**
 * Outcome of one push, shared by the APNs and FCM clients. Never thrown: `retry` says whether a
 * later attempt may succeed, `invalidToken` that the device token should be forgotten.
 */
export type PushResult =
  | { ok: true; id?: string }
  | { ok: false; retry: boolean; invalidToken: boolean; reason: string; status?: number; retryAfterMs?: number };

/** Provider credentials: a signing key (.p8, signs the provider JWT each request carries) or a TLS client certificate. */
export type ApnsAuth =
  | { type: 'token'; teamId: string; keyId: string; keyPem: string }
  | { type: 'certificate'; certificatePem: string; privateKeyPem: string };

/** One notification; header fields map one-to-one onto the `apns-*` request headers. */
export interface ApnsRequest {
  token: string;
  topic: string;
  pushType: 'alert' | 'background';
  priority: 5 | 10;
  /** Epoch seconds; 0 means deliver once or not at all. */
  expiration: number;
  collapseId?: string;
  payload: Record<string, unknown>;
}

/** Origin and timing are overridable so tests and self-hosted peers can stand in for Apple. */
export interface ApnsClientOptions {
  environment: 'development' | 'production';
  auth: ApnsAuth;
  /** Allow loopback/private targets (self-hosted test peers); refused otherwise. */
  allowPrivateTargets: boolean;
  /** Origin override: `http://` speaks HTTP/2 without TLS (h2c), `https://` with TLS. */
  baseUrl?: string;
  /** An extra trusted CA (PEM), added to the default roots. */
  ca?: string;
  /** Per request (including a reconnect). Default 10000. */
  timeoutMs?: number;
  /** Clock for the provider token's age. Default `Date.now`. */
  now?: () => number;
}

const ORIGINS = { development: 'https://api.sandbox.push.apple.com', production: 'https://api.push.apple.com' } as const;
/** Apple refuses provider tokens older than an hour, and refreshes more frequent than every 20 minutes. */
const TOKEN_REFRESH_MS = 50 * 60_000;
/** Error bodies are a short JSON object; anything past this is dropped. */
const MAX_BODY_BYTES = 64 * 1024;
const INVALID_TOKEN_REASONS = new Set(['BadDeviceToken', 'DeviceTokenNotForTopic']);

type SigningKey = Awaited<ReturnType<typeof importPKCS8>>;
type Failed = Extract<PushResult, { ok: false }>;

interface Answer { status: number; headers: IncomingHttpHeaders; body: string }

/** A request that failed without an HTTP answer; `retry` as in `PushResult`. */
class ExchangeError extends Error {
  constructor(readonly retry: boolean, message: string) {
    super(message);
  }
}

/** The request never reached APNs (session gone or stream refused): safe to send again at once. */
class UnsentError extends Error {}

/** The guard's refusal behind an error (a pending stream is cancelled with it as the cause). */
function blockedCause(err: unknown): Error | undefined {
  for (let e = err as (Error & { code?: string; cause?: unknown }) | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.code === 'EBLOCKEDTARGET') return e;
  }
  return undefined;
}

const fail = (retry: boolean, reason: string, extra: Partial<Failed> = {}): Failed => ({ ok: false, retry, invalidToken: false, reason, ...extra });

/** APNs provider client; `send` never throws. */
export class ApnsClient {
  private readonly origin: string;
  private readonly targetProblem: string | undefined;
  private readonly lookup: LookupFunction;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private session: ClientHttp2Session | undefined;
  private key: Promise<SigningKey> | undefined;
  private jwt: { value: string; issuedAt: number } | undefined;
  private minting: Promise<string> | undefined;

  constructor(private readonly options: ApnsClientOptions) {
    this.origin = (options.baseUrl ?? ORIGINS[options.environment]).replace(/\/+$/, '');
    const problem = checkTargetUrl(this.origin, options.allowPrivateTargets);
    this.targetProblem = problem && `${problem}: ${this.origin}`;
    this.lookup = guardedLookup(options.allowPrivateTargets);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Classifies every failure into a `PushResult` so callers decide retries from data, not exceptions. */
  async send(req: ApnsRequest, signal?: AbortSignal): Promise<PushResult> {
    if (signal?.aborted) return fail(true, 'aborted');
    let jwt: string | undefined;
    if (this.options.auth.type === 'token') {
      try {
        jwt = await this.providerToken(this.options.auth);
      } catch (err) {
        return fail(false, `Cannot sign the APNs provider token: ${(err as Error).message}`);
      }
    }
    const headers: OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': `/3/device/${encodeURIComponent(req.token)}`,
      'apns-topic': req.topic,
      'apns-push-type': req.pushType,
      'apns-priority': String(req.priority),
      'apns-expiration': String(req.expiration),
      'content-type': 'application/json',
    };
    if (req.collapseId !== undefined) headers['apns-collapse-id'] = req.collapseId;
    if (jwt) headers.authorization = `bearer ${jwt}`;
    let answer: Answer;
    try {
      answer = await this.exchange(headers, JSON.stringify(req.payload), signal);
    } catch (err) {
      if (err instanceof ExchangeError) return fail(err.retry, err.message);
      return fail(true, (err as Error).message);
    }
    return this.outcome(answer, jwt);
  }

  /** Closes the session once its streams are done; a later `send` opens a new one. */
  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (!s || s.destroyed) return;
    const closed = new Promise<void>((ok) => s.once('close', () => ok()));
    s.close();
    await closed;
  }

  private outcome(answer: Answer, jwt: string | undefined): PushResult {
    const { status, headers } = answer;
    if (status === 200) {
      const id = headers['apns-id'];
      return { ok: true, id: typeof id === 'string' ? id : undefined };
    }
    let reason: string | undefined;
    try {
      const doc = JSON.parse(answer.body) as { reason?: unknown };
      if (typeof doc?.reason === 'string') reason = doc.reason;
    } catch {}
    const text = reason ?? `HTTP ${status}`;
    if (status === 410 || (status === 400 && reason && INVALID_TOKEN_REASONS.has(reason))) {
      return { ok: false, retry: false, invalidToken: true, reason: text, status };
    }
    if (status === 403 && reason === 'ExpiredProviderToken') {
      // Only the token this request carried: a concurrent send may have minted a fresh one.
      if (jwt && this.jwt?.value === jwt) this.jwt = undefined;
      return fail(true, text, { status });
    }
    if (status === 429 || status >= 500) {
      const after = retryAfterMs(headers['retry-after'], this.now());
      return fail(true, text, after === undefined ? { status } : { status, retryAfterMs: after });
    }
    return fail(false, text, { status });
  }

  /** The cached provider JWT, or a new one when it is 50 minutes old; concurrent sends share a mint. */
  private providerToken(auth: Extract<ApnsAuth, { type: 'token' }>): Promise<string> {
    const now = this.now();
    if (this.jwt && now - this.jwt.issuedAt < TOKEN_REFRESH_MS) return Promise.resolve(this.jwt.value);
    this.minting ??= (async () => {
      this.key ??= importPKCS8(auth.keyPem, 'ES256');
      const value = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: auth.keyId })
        .setIssuer(auth.teamId)
        .setIssuedAt(Math.floor(now / 1000))
        .sign(await this.key);
      this.jwt = { value, issuedAt: now };
      return value;
    })().finally(() => {
      this.minting = undefined;
    });
    return this.minting;
  }

  /** One request with one deadline; sent again once on a fresh session if the old one refused it. */
  private async exchange(headers: OutgoingHttpHeaders, body: string, signal: AbortSignal | undefined): Promise<Answer> {
    const deadline = Date.now() + this.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.request(headers, body, signal, Math.max(1, deadline - Date.now()));
      } catch (err) {
        if (err instanceof UnsentError) {
          if (attempt === 0) continue;
          throw new ExchangeError(true, err.message);
        }
        throw err;
      }
    }
  }

  private connect(): ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    if (this.targetProblem) throw new ExchangeError(false, this.targetProblem);
    const auth = this.options.auth;
    const s = http2.connect(this.origin, {
      lookup: this.lookup,
      ...(this.options.ca ? { ca: [...rootCertificates, this.options.ca] } : {}),
      ...(auth.type === 'certificate' ? { cert: auth.certificatePem, key: auth.privateKeyPem } : {}),
    });
    const drop = () => {
      if (this.session === s) this.session = undefined;
    };
    // The error also reaches the session's streams; the listener keeps it from being thrown.
    s.on('error', drop);
    s.on('goaway', drop);
    s.on('close', drop);
    this.session = s;
    return s;
  }

  private request(headers: OutgoingHttpHeaders, body: string, signal: AbortSignal | undefined, timeoutMs: number): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      let session: ClientHttp2Session | undefined;
      let stream: http2.ClientHttp2Stream;
      // A session that refused a stream takes no more: the next attempt gets a new one.
      const unsent = (message: string) => {
        if (session && this.session === session) this.session = undefined;
        return new UnsentError(message);
      };
      try {
        session = this.connect();
        stream = session.request(headers);
      } catch (err) {
        // A refused target, or a session that closed under us before anything was sent.
        return reject(err instanceof ExchangeError ? err : unsent((err as Error).message));
      }
      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const cancel = (reason: string) => {
        settle(() => reject(new ExchangeError(true, reason)));
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      };
      const timer = setTimeout(() => cancel(`No response from APNs within ${timeoutMs} ms`), timeoutMs);
      const onAbort = () => cancel('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      const refused = () => status === 0 && stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
      stream.on('response', (h) => {
        status = Number(h[':status']);
        responseHeaders = h;
      });
      stream.on('data', (chunk: Buffer) => {
        if (size < MAX_BODY_BYTES) chunks.push(chunk);
        size += chunk.length;
      });
      stream.on('end', () => settle(() => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8') })));
      stream.on('error', (err: Error & { code?: string }) => settle(() => {
        const blocked = blockedCause(err);
        if (blocked) reject(new ExchangeError(false, blocked.message));
        else if (refused() || err.code === 'ERR_HTTP2_GOAWAY_SESSION') reject(unsent(`APNs refused the stream: ${err.message}`));
        else reject(new ExchangeError(true, `${err.code ?? 'error'}: ${err.message}`));
      }));
      stream.on('close', () => settle(() => {
        if (refused()) reject(unsent('APNs refused the stream'));
        else reject(new ExchangeError(true, `APNs closed the stream before the response ended (code ${stream.rstCode})`));
      }));
      stream.end(body);
    });
  }
}
