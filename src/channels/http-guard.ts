/**
 * Outbound HTTP guard against SSRF (conventions.md §12 `ALLOW_PRIVATE_CHANNEL_TARGETS`, webhooks.md
 * §4.7): refuses loopback, private, link-local and other non-public targets. The check runs on the
 * addresses DNS actually returned, inside the socket's `lookup`, so the connection goes to the
 * address that was checked (no DNS-rebinding window between check and connect).
 *
 * Reusable: `guardedRequest` for one request (with `createGuardedAgents` for keep-alive callers
 * such as webhooks), `guardedLookup` for any `http.request`, and `isPublicAddress` /
 * `checkTargetUrl` for configuration-time checks.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import type { MediaFetch, SendOutcome } from './adapter.js';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) blocked.addSubnet(net, prefix, 'ipv6');

/**
 * IPv4 address embedded in an IPv4-mapped/compatible, NAT64 or 6to4 (`2002::/16`) IPv6 address,
 * if any. The compatible form matters in hex too: `URL` writes `[::127.0.0.1]` as `[::7f00:1]`.
 */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:(?:0:)?|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:(?:0:)?|::|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower) ?? /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4})(?::|$)/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return undefined;
}

/** Whether an IP address is a public unicast address (false for anything else, or not an IP). */
export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return !blocked.check(bare, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4) return !blocked.check(v4, 'ipv4');
    return !blocked.check(bare, 'ipv6');
  }
  return false;
}

/** Thrown (as the request error) when a target resolves to a refused address. */
export class BlockedTargetError extends Error {
  readonly code = 'EBLOCKEDTARGET';
  constructor(readonly host: string, readonly address: string) {
    super(`Refusing to connect to ${host} (${address}): not a public address`);
    this.name = 'BlockedTargetError';
  }
}

/**
 * A `lookup` for `http.request`/`net.connect` that resolves as usual and fails with
 * `BlockedTargetError` when any returned address is not public (unless `allowPrivate`).
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return ((hostname: string, options: object, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as LookupAddress[];
      if (!allowPrivate) {
        const bad = list.find((a) => !isPublicAddress(a.address));
        if (bad) return callback(new BlockedTargetError(hostname, bad.address) as unknown as NodeJS.ErrnoException, '', 0);
      }
      if ((options as { all?: boolean }).all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`No address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  }) as LookupFunction;
}

/** One lookup per policy: `guardedRequest` does not build a closure per request. */
const sharedLookups = { strict: guardedLookup(false), open: guardedLookup(true) };

export interface TargetUrlOptions {
  /** Refuse `http:` (webhooks.md §4.7: https unless ALLOW_HTTP_WEBHOOKS). Default false. */
  httpsOnly?: boolean;
}

/**
 * Static check of a target URL (configuration time): http(s) only (https only with `httpsOnly`),
 * with a host; a literal IP address must be public unless `allowPrivate`. Names are checked again
 * at connect time. Returns a problem description or undefined.
 */
export function checkTargetUrl(raw: string, allowPrivate: boolean, options: TargetUrlOptions = {}): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'Must be an absolute URL';
  }
  return urlProblem(url, allowPrivate, options);
}

function urlProblem(url: URL, allowPrivate: boolean, options: TargetUrlOptions): string | undefined {
  if (options.httpsOnly && url.protocol !== 'https:') return 'Must be an https URL';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'Must be an http or https URL';
  if (!url.hostname) return 'Must name a host';
  if (url.username || url.password) return 'Must not contain credentials';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate) {
    if (isIP(host) && !isPublicAddress(host)) return 'Must not target a private, loopback or link-local address';
    if (/^localhost$|\.localhost$/i.test(host)) return 'Must not target localhost';
  }
  return undefined;
}

export interface GuardedRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-request deadline (connect, send, response headers and body). */
  timeoutMs: number;
  allowPrivate: boolean;
  signal?: AbortSignal;
  /** Response bytes kept (the rest is discarded). Default 64 KiB. */
  maxResponseBytes?: number;
  /** Refuse `http:` targets (see `checkTargetUrl`). */
  httpsOnly?: boolean;
  /**
   * Keep-alive connection pools (`createGuardedAgents`) for callers sending many requests to the
   * same targets. Default: a fresh connection per request. A pooled socket was checked when it was
   * connected; each pool serves one `allowPrivate` policy.
   */
  agents?: GuardedAgents;
}

export interface GuardedAgents {
  /** The pool for one policy (its connections were checked under that policy). */
  pool(allowPrivate: boolean): Dispatcher;
  destroy(): void;
}

/** An undici pool whose connections resolve names through the guard's `lookup`. */
function guardedAgent(allowPrivate: boolean, connections: number): Agent {
  return new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    connect: { lookup: allowPrivate ? sharedLookups.open : sharedLookups.strict },
  });
}

/**
 * Keep-alive pools for `guardedRequest`, one per `allowPrivate` policy, made on first use. The
 * HTTP client is undici: per request it costs about a fifth less CPU than `node:http` with a
 * keep-alive agent (ADR 0006), and a dispatch worker makes one request per message.
 */
export function createGuardedAgents(options: { maxSockets?: number } = {}): GuardedAgents {
  const pools = new Map<boolean, Agent>();
  return {
    pool(allowPrivate) {
      let a = pools.get(allowPrivate);
      if (!a) pools.set(allowPrivate, (a = guardedAgent(allowPrivate, options.maxSockets ?? 64)));
      return a;
    },
    destroy() {
      for (const a of pools.values()) void a.destroy().catch(() => {});
      pools.clear();
    },
  };
}

/** Shared pools for one-off requests, which close their connection after the response. */
const oneOff = createGuardedAgents({ maxSockets: 256 });

export interface GuardedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Failure classes callers map to outcomes: `timeout` and `network` are worth retrying. */
export class OutboundError extends Error {
  constructor(readonly kind: 'blocked' | 'timeout' | 'network' | 'aborted' | 'invalid', message: string) {
    super(message);
    this.name = 'OutboundError';
  }
}

/** Hop-by-hop headers the client manages itself (undici refuses them), and the length it computes. */
const MANAGED_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'content-length', 'host', 'expect']);

function blockedCause(err: unknown): BlockedTargetError | undefined {
  for (let e = err as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e instanceof BlockedTargetError || e.code === 'EBLOCKEDTARGET') return e as BlockedTargetError;
  }
  return undefined;
}

/**
 * One request through undici's `dispatch` with a handler that keeps the body's first `limit`
 * bytes (the rest is read and dropped, so the connection stays usable). `request()` would wrap
 * the body in a stream and the answer in its own objects: about half the client's CPU per
 * request, and a dispatch worker makes one request per message. `abort(reason)` ends it at any
 * point, queued (the promise settles at once) or under way.
 */
function dispatchLimited(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, limit: number): { response: Promise<GuardedResponse>; abort(reason: Error): void } {
  let controller: Dispatcher.DispatchController | undefined;
  let reason: Error | undefined;
  let settle!: { resolve(r: GuardedResponse): void; reject(err: unknown): void };
  const response = new Promise<GuardedResponse>((resolve, reject) => (settle = { resolve, reject }));
  let status = 0;
  let headers: Record<string, string | string[] | undefined> = {};
  const chunks: Buffer[] = [];
  let size = 0;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (reason) c.abort(reason);
    },
    onResponseStart(_c, statusCode, h) {
      // 1xx answers come first; the last call is the response.
      status = statusCode;
      headers = h;
    },
    onResponseData(_c, chunk) {
      if (size < limit) chunks.push(chunk.length <= limit - size ? chunk : chunk.subarray(0, limit - size));
      size += chunk.length;
    },
    onResponseEnd() {
      settle.resolve({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
    },
    onResponseError(_c, err) {
      settle.reject(err);
    },
  };
  try {
    dispatcher.dispatch(options, handler);
  } catch (err) {
    settle.reject(err);
  }
  return {
    response,
    abort(r) {
      if (reason) return;
      reason = r;
      if (controller) controller.abort(r);
      else settle.reject(r);
    },
  };
}

/** One HTTP(S) request through the guard; never follows redirects. */
export async function guardedRequest(req: GuardedRequest): Promise<GuardedResponse> {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    throw new OutboundError('invalid', `Must be an absolute URL: ${req.url}`);
  }
  const problem = urlProblem(url, req.allowPrivate, { httpsOnly: req.httpsOnly });
  if (problem) throw new OutboundError(problem.includes('private') || problem.includes('localhost') ? 'blocked' : 'invalid', `${problem}: ${req.url}`);
  if (req.signal?.aborted) throw new OutboundError('aborted', 'Request aborted');
  const limit = req.maxResponseBytes ?? 64 * 1024;
  let headers: Record<string, string> | undefined;
  if (req.headers) {
    headers = {};
    for (const k in req.headers) if (!MANAGED_HEADERS.has(k.toLowerCase())) headers[k] = req.headers[k]!;
  }
  // The deadline or the caller's abort, whichever comes first, ends the request.
  let timedOut = false;
  let call: ReturnType<typeof dispatchLimited> | undefined;
  const abort = () => call?.abort(new OutboundError('aborted', 'Request aborted'));
  const timer = setTimeout(() => {
    timedOut = true;
    abort();
  }, req.timeoutMs);
  req.signal?.addEventListener('abort', abort, { once: true });
  try {
    call = dispatchLimited(req.agents ? req.agents.pool(req.allowPrivate) : oneOff.pool(req.allowPrivate), {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body: req.body,
      reset: !req.agents,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    }, limit);
    return await call.response;
  } catch (err) {
    if (timedOut) throw new OutboundError('timeout', `No complete response within ${req.timeoutMs} ms`);
    if (req.signal?.aborted) throw new OutboundError('aborted', 'Request aborted');
    const blocked = blockedCause(err);
    if (blocked) throw new OutboundError('blocked', blocked.message);
    const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
    if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') throw new OutboundError('timeout', `No complete response within ${req.timeoutMs} ms`);
    if (e.code === 'UND_ERR_INVALID_ARG') throw new OutboundError('invalid', e.message);
    const code = e.cause?.code ?? e.code ?? 'error';
    throw new OutboundError('network', `${code}: ${e.cause?.message ?? e.message}`);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', abort);
  }
}

/**
 * How a send ends when its request failed before any answer: a target the guard refuses (or a bad
 * URL) is the configuration's fault and is not retried; a timeout or a network failure is.
 */
export function failedRequestOutcome(err: unknown): SendOutcome & { kind: 'transient' | 'rejected' } {
  if (err instanceof OutboundError && (err.kind === 'blocked' || err.kind === 'invalid')) return { kind: 'rejected', code: 'ChannelMisconfigured', reason: err.message };
  return { kind: 'transient', code: err instanceof OutboundError && err.kind === 'timeout' ? 'Timeout' : 'NetworkError', reason: (err as Error).message };
}

/**
 * Downloads a media file (an inbound message's attachment) of at most `maxBytes`: 404 and 410 are
 * `MediaNotFound`, a larger file `MediaTooLarge`, throttling, 408 and 5xx worth another try.
 */
export async function downloadMedia(req: { url: string; headers?: Record<string, string>; allowPrivate: boolean; maxBytes: number; signal?: AbortSignal }): Promise<MediaFetch> {
  let res: GuardedResponse;
  try {
    res = await guardedRequest({ url: req.url, headers: req.headers, allowPrivate: req.allowPrivate, signal: req.signal, timeoutMs: MEDIA_TIMEOUT_MS, maxResponseBytes: req.maxBytes + 1 });
  } catch (err) {
    return failedRequestOutcome(err);
  }
  const reason = `The media download answered ${res.status}`;
  if (res.status === 404 || res.status === 410) return { kind: 'rejected', code: 'MediaNotFound', reason };
  if (res.status === 429 || res.status === 408 || res.status >= 500) {
    const after = retryAfterMs(res.headers['retry-after'], Date.now());
    return { kind: 'transient', code: 'ProviderUnavailable', reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  if (res.status < 200 || res.status >= 300) return { kind: 'rejected', code: `HTTP${res.status}`, reason };
  if (res.body.length > req.maxBytes) return { kind: 'rejected', code: 'MediaTooLarge', reason: `The media file is larger than ${req.maxBytes} bytes` };
  const type = res.headers['content-type'];
  return { kind: 'fetched', bytes: res.body, ...(typeof type === 'string' ? { type } : {}) };
}
/** A media file of tens of megabytes may take a while. */
const MEDIA_TIMEOUT_MS = 60_000;

/** `Retry-After` (delta seconds or an HTTP date) in ms from `now`, if present and sensible. */
export function retryAfterMs(header: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Math.min(Number(v.trim()), 86_400) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.min(at - now, 86_400_000));
}
