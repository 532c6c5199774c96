/**
 * Custom channels (channels.md §11): one HTTP request per message, built from the channel's
 * request definition. Registered as channel `custom`, provider `http`; every custom channel id
 * uses it.
 */
import type { AdapterContext, ChannelAdapter, ChannelProvider, SendInput, SendOutcome } from '../adapter.js';
import { checkTargetUrl, createGuardedAgents, failedRequestOutcome, guardedRequest, retryAfterMs } from '../http-guard.js';
import { escapingForContentType, renderTemplate, textOf, valueAt, type MergeValues } from './template.js';

export interface CustomChannelSettings {
  url: string;
  method: string;
  contentType: string;
  userIdProperty: string;
  auth: { type: 'none' } | { type: 'basic'; username: string; password: string } | { type: 'bearer'; token: string };
  headers: Array<{ key: string; value: string }>;
  bodyTemplate: string;
  /** Dot path of the provider message id in a JSON response (default: `id`, then `messageId`). */
  responseIdPath?: string;
  /** Request deadline, 0.1–10 seconds (default 10). */
  timeoutSeconds?: number;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'authorization', 'content-type']);
const DEFAULT_TIMEOUT_MS = 10_000;

type Failure = { paramName: string; message: string };
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number): boolean => typeof v === 'string' && v.length > 0 && v.length <= max;

export function validateCustomSettings(s: Record<string, unknown>): Failure[] {
  const out: Failure[] = [];
  if (!str(s.url, 2048)) out.push({ paramName: 'url', message: 'Required: an absolute http(s) URL' });
  else {
    // Merge fields may appear in the URL; check the URL with them blanked out.
    const problem = checkTargetUrl((s.url as string).replace(/\{\{[^}]*\}\}/g, 'x'), true);
    if (problem) out.push({ paramName: 'url', message: problem });
  }
  if (s.method !== undefined && (typeof s.method !== 'string' || !METHODS.includes(s.method.toUpperCase()))) out.push({ paramName: 'method', message: `Must be one of ${METHODS.join(', ')}` });
  if (s.contentType !== undefined && (!str(s.contentType, 200) || !/^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/.test(s.contentType as string))) out.push({ paramName: 'contentType', message: 'Must be a media type' });
  if (!str(s.userIdProperty, 200)) out.push({ paramName: 'userIdProperty', message: 'Required: the profile or "to" property holding the recipient' });
  if (s.bodyTemplate !== undefined && (typeof s.bodyTemplate !== 'string' || s.bodyTemplate.length > 100_000)) out.push({ paramName: 'bodyTemplate', message: 'Must be a string of at most 100000 characters' });
  if (s.responseIdPath !== undefined && !str(s.responseIdPath, 200)) out.push({ paramName: 'responseIdPath', message: 'Must be a non-empty string' });
  if (s.timeoutSeconds !== undefined && (typeof s.timeoutSeconds !== 'number' || !(s.timeoutSeconds >= 0.1 && s.timeoutSeconds <= 10))) out.push({ paramName: 'timeoutSeconds', message: 'Must be a number from 0.1 to 10' });
  const auth = s.auth;
  if (auth !== undefined) {
    if (!isObj(auth) || !['none', 'basic', 'bearer'].includes(auth.type as string)) out.push({ paramName: 'auth.type', message: 'Must be none, basic or bearer' });
    else if (auth.type === 'basic') {
      if (!str(auth.username, 200) || (auth.username as string).includes(':')) out.push({ paramName: 'auth.username', message: 'Required, without ":"' });
      if (!str(auth.password, 1000)) out.push({ paramName: 'auth.password', message: 'Required' });
    } else if (auth.type === 'bearer' && (!str(auth.token, 4000) || /[\r\n]/.test(auth.token as string))) out.push({ paramName: 'auth.token', message: 'Required, one line' });
  }
  if (s.headers !== undefined) {
    if (!Array.isArray(s.headers) || s.headers.length > 50) out.push({ paramName: 'headers', message: 'Must be an array of at most 50 {key, value} objects' });
    else s.headers.forEach((h, i) => {
      if (!isObj(h) || typeof h.key !== 'string' || !HEADER_NAME.test(h.key)) out.push({ paramName: `headers[${i}].key`, message: 'Must be a header name' });
      else if (h.key.toLowerCase() === 'authorization') out.push({ paramName: `headers[${i}].key`, message: 'Credentials go in `auth` (basic or bearer), where they are stored write-only; header values are shown as written' });
      else if (RESERVED_HEADERS.has(h.key.toLowerCase())) out.push({ paramName: `headers[${i}].key`, message: `"${h.key}" is set by the channel itself` });
      if (isObj(h) && (typeof h.value !== 'string' || h.value.length > 4000 || /[\r\n\0]/.test(h.value))) out.push({ paramName: `headers[${i}].value`, message: 'Must be a one-line string' });
    });
  }
  return out;
}

function normalise(s: Record<string, unknown>): CustomChannelSettings {
  return {
    url: s.url as string,
    method: ((s.method as string | undefined) ?? 'POST').toUpperCase(),
    contentType: (s.contentType as string | undefined) ?? 'application/json',
    userIdProperty: s.userIdProperty as string,
    auth: (s.auth as CustomChannelSettings['auth'] | undefined) ?? { type: 'none' },
    headers: (s.headers as CustomChannelSettings['headers'] | undefined) ?? [],
    bodyTemplate: (s.bodyTemplate as string | undefined) ?? '',
    responseIdPath: s.responseIdPath as string | undefined,
    timeoutSeconds: s.timeoutSeconds as number | undefined,
  };
}

/** The recipient: `to.<prop>`, else the profile's `<prop>` (dot paths allowed). */
function userIdOf(input: SendInput, prop: string): string {
  return textOf(valueAt(input.to, prop) ?? valueAt(input.profile, prop));
}

function providerIdFrom(body: Buffer, contentType: string | undefined, path: string | undefined): string | undefined {
  if (!body.length || !/json/i.test(contentType ?? 'application/json')) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const v = path ? valueAt(doc, path) : (valueAt(doc, 'id') ?? valueAt(doc, 'messageId'));
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

export function createCustomAdapter(ctx: Pick<AdapterContext, 'settings' | 'allowPrivateTargets'>, now: () => number = Date.now): ChannelAdapter {
  const s = normalise(ctx.settings);
  const escaping = escapingForContentType(s.contentType);
  // One adapter serves one configuration (one allowPrivateTargets policy): its sockets are reused
  // across sends and closed with the adapter when the configuration changes.
  const agents = createGuardedAgents({ maxSockets: 64 });
  return {
    async close() {
      agents.destroy();
    },
    async send(input: SendInput): Promise<SendOutcome> {
      const userId = userIdOf(input, s.userIdProperty);
      if (!userId) return { kind: 'rejected', code: 'NoAddress', reason: `No "${s.userIdProperty}" for this recipient` };
      const values: MergeValues = {
        userId, body: input.body, title: input.title, messageId: input.messageId, conversationId: input.conversationId,
        profileId: (input.to as { profileId?: unknown }).profileId ?? input.profile?.id ?? input.profile?.profileId,
        profile: input.profile ?? input.to, metadata: input.metadata,
      };
      const hasBody = !['GET', 'DELETE'].includes(s.method);
      // A customBody string is the caller's own: merge-substituted, never escaped (channels.md §11).
      const body = !hasBody ? undefined
        : typeof input.customBody === 'string' ? renderTemplate(input.customBody, values, 'none')
          : renderTemplate(s.bodyTemplate, values, escaping);
      const headers: Record<string, string> = { 'user-agent': 'Switchboard-CustomChannel/1', accept: 'application/json, */*;q=0.5' };
      for (const h of s.headers) headers[h.key.toLowerCase()] = renderTemplate(h.value, values, 'header');
      if (hasBody) headers['content-type'] = s.contentType;
      if (s.auth.type === 'basic') headers.authorization = `Basic ${Buffer.from(`${s.auth.username}:${s.auth.password}`).toString('base64')}`;
      if (s.auth.type === 'bearer') headers.authorization = `Bearer ${s.auth.token}`;
      try {
        const res = await guardedRequest({
          url: renderTemplate(s.url, values, 'url'), method: s.method, headers, body,
          timeoutMs: s.timeoutSeconds ? Math.round(s.timeoutSeconds * 1000) : DEFAULT_TIMEOUT_MS,
          allowPrivate: ctx.allowPrivateTargets, signal: input.signal, agents,
        });
        const details = { httpStatus: res.status, successful: res.status >= 200 && res.status < 300 };
        if (details.successful) {
          const providerMessageId = providerIdFrom(res.body, [res.headers['content-type']].flat()[0], s.responseIdPath);
          return { kind: 'accepted', ...(providerMessageId ? { providerMessageId } : {}), acceptedAt: now(), details };
        }
        const snippet = res.body.toString('utf8', 0, 200).replace(/\s+/g, ' ').trim();
        const reason = `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`;
        if (res.status === 408 || res.status === 429 || res.status >= 500) {
          const after = retryAfterMs(res.headers['retry-after'], now());
          return { kind: 'transient', code: res.status === 429 ? 'RateLimited' : 'ProviderUnavailable', reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
        }
        return { kind: 'rejected', code: 'ProviderRejected', reason };
      } catch (err) {
        return failedRequestOutcome(err);
      }
    },
  };
}

export const customHttpProvider: ChannelProvider = {
  channel: 'custom',
  provider: 'http',
  secretSettings: ['auth.password', 'auth.token'],
  validateSettings: validateCustomSettings,
  create: (ctx) => createCustomAdapter(ctx),
};
