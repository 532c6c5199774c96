/**
 * Sending through Meta's Graph API, shared by the `whatsApp` (Cloud API) and `fbMessenger` (Send
 * API) providers: one pooled connection set per adapter, the classification of Graph API error
 * objects, and the rule for a message that needs several requests.
 */
import type { AdapterContext, SendOutcome } from '../adapter.js';
import { createGuardedAgents, failedRequestOutcome, guardedRequest, retryAfterMs } from '../http-guard.js';

type Json = Record<string, unknown>;
export type Failed = SendOutcome & { kind: 'transient' | 'rejected' };
/** One request's answer: the body of a 2xx, or how the message's attempt ends. */
export type Posted = { ok: true; body: Json } | { ok: false; outcome: Failed };

const TIMEOUT_MS = 10_000;

export const asObject = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
export const asString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
export const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** The digits of a phone number in international format (6–15 digits), or undefined. */
export function phoneDigits(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const d = v.replace(/[\s().+-]/g, '');
  return /^\d{6,15}$/.test(d) ? d : undefined;
}
const numberOf = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined);

/** JSON text as a value; undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `customBody.<channel>` as the message object sent verbatim (an object, or JSON text of one); undefined when it is neither. */
export function customObject(customBody: unknown): Json | undefined {
  const custom = typeof customBody === 'string' ? parseJson(customBody) : customBody;
  return custom && typeof custom === 'object' && !Array.isArray(custom) ? (custom as Json) : undefined;
}

export interface GraphErrors {
  /** Names the API in reasons ("Cloud API", "Send API"). */
  api: string;
  /** Error codes meaning "slow down" (besides HTTP 429). */
  throttle: ReadonlySet<number>;
  /** The rejection code for an API-specific error, if it is one. */
  rejection(code: number | undefined, subcode: number | undefined): string | undefined;
}

/**
 * A Graph API answer: throttling (429 or an API's codes, with Retry-After), 5xx and 408 are
 * transient; 190 or 401 is `Unauthorized`; then the API's own codes; any other error is rejected
 * with its code (or `HTTP<status>`).
 */
export function classifyGraph(status: number, headers: Record<string, string | string[] | undefined>, text: string, rules: GraphErrors): Posted {
  const body = asObject(parseJson(text));
  if (status >= 200 && status < 300) return { ok: true, body };
  const error = asObject(body.error);
  const code = numberOf(error.code);
  const subcode = numberOf(error.error_subcode);
  const message = (typeof error.message === 'string' && error.message) || text.replace(/\s+/g, ' ').trim().slice(0, 200) || `HTTP ${status}`;
  const reason = `${rules.api} answered ${status}${code !== undefined ? ` (${code}${subcode !== undefined ? `/${subcode}` : ''})` : ''}: ${message}`;
  if (status === 429 || (code !== undefined && rules.throttle.has(code))) {
    const after = retryAfterMs(headers['retry-after'], Date.now());
    return { ok: false, outcome: { kind: 'transient', code: 'RateLimited', reason, ...(after !== undefined ? { retryAfterMs: after } : {}) } };
  }
  if (status >= 500 || status === 408) return { ok: false, outcome: { kind: 'transient', code: 'ProviderUnavailable', reason } };
  if (code === 190 || status === 401) return { ok: false, outcome: { kind: 'rejected', code: 'Unauthorized', reason } };
  const own = rules.rejection(code, subcode);
  return { ok: false, outcome: { kind: 'rejected', code: own ?? (code !== undefined ? String(code) : `HTTP${status}`), reason } };
}

/** Posts JSON to one Graph API endpoint with a bearer token; closed with its adapter. */
export function createGraphPoster(ctx: AdapterContext, options: { url: string; token: unknown; userAgent: string; errors: GraphErrors }) {
  const headers = { authorization: `Bearer ${String(options.token ?? '')}`, accept: 'application/json', 'user-agent': options.userAgent };
  const jsonHeaders = { ...headers, 'content-type': 'application/json' };
  // One adapter serves one configuration: its connections are reused and closed with it.
  const agents = createGuardedAgents({ maxSockets: 32 });

  async function call(url: string, payload: Json | undefined, signal: AbortSignal | undefined): Promise<Posted> {
    try {
      const body = payload === undefined ? undefined : JSON.stringify(payload);
      const res = await guardedRequest({ url, method: body === undefined ? 'GET' : 'POST', headers: body === undefined ? headers : jsonHeaders, body, timeoutMs: TIMEOUT_MS, allowPrivate: ctx.allowPrivateTargets, signal, agents });
      return classifyGraph(res.status, res.headers, res.body.toString('utf8'), options.errors);
    } catch (err) {
      return { ok: false, outcome: failedRequestOutcome(err) };
    }
  }
  const post = (payload: Json, signal: AbortSignal | undefined) => call(options.url, payload, signal);

  return {
    post,
    /** Reads a Graph API object (a WhatsApp media id's metadata) at `url`. */
    get: (url: string, signal: AbortSignal | undefined) => call(url, undefined, signal),
    /** The bearer token's header, for downloads the Graph API points to (WhatsApp media URLs). */
    authorization: headers.authorization,
    /**
     * A message's requests in order (text, then each attachment). The first request's failure
     * ends the attempt with it, as nothing was delivered yet; later failures leave the message
     * accepted and are listed (`kindOf` names what each request carried).
     */
    async postAll(payloads: readonly Json[], signal: AbortSignal | undefined, kindOf: (payload: Json) => unknown) {
      const answers: Json[] = [];
      const failures: Array<{ index: number; type: unknown; code?: string; reason: string }> = [];
      for (const [index, payload] of payloads.entries()) {
        const answer = await post(payload, signal);
        if (answer.ok) {
          answers.push(answer.body);
          continue;
        }
        if (index === 0) return { ok: false as const, outcome: answer.outcome };
        failures.push({ index, type: kindOf(payload), ...(answer.outcome.code ? { code: answer.outcome.code } : {}), reason: answer.outcome.reason });
      }
      return { ok: true as const, answers, failures };
    },
    close(): void {
      agents.destroy();
    },
  };
}
