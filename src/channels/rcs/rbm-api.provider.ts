/**
 * Google RCS Business Messaging provider for the `rcs` channel (channels.md §10). Before a send
 * the recipient's RCS capability is checked (cached 24 h): a user RBM cannot reach is skipped with
 * `NoAddress`, so Branch goes on (`rules: ["rcs", "sms"]` falls back to SMS). A message is one
 * agent message per content item (text, then each file), the first carrying the Switchboard
 * message id, which RBM echoes in its DELIVERED and READ events.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { AdapterContext, ChannelAdapter, ChannelProvider, MediaFetch, ReadInbound, SendInput, SendOutcome } from '../adapter.js';
import { downloadMedia } from '../http-guard.js';
import { TtlCache } from '../../lib/cache.js';
import { phoneCountry, phoneDigits } from '../../lib/phone.js';
import { customObject, asString as str } from '../meta/graph.js';
import { parseServiceAccount } from '../google/service-account.js';
import { createRbmClient, type RbmClient } from './rbm-client.js';
import { handleRbmCallback } from './rbm-webhook.js';

type Failure = { paramName: string; message: string };
type Json = Record<string, unknown>;

/** Text limit of one RBM text message (channels.md §1.1, §10). */
export const RCS_TEXT_LIMIT = 3072;
const CAPABILITY_TTL_MS = 24 * 3600_000;
const CAPABILITY_CACHE_SIZE = 50_000;
/** RBM accepts an `expireTime` at most 15 days after submission. */
const MAX_EXPIRY_MS = 15 * 24 * 3600_000;
const AGENT_ID = /^[\w.@-]{1,200}$/;

/** Checks the `rbmApi` settings; paramNames are relative to `settings`. */
export function validateRcsSettings(s: Record<string, unknown>): Failure[] {
  const out: Failure[] = [];
  if (typeof s.agentId !== 'string' || !AGENT_ID.test(s.agentId)) out.push({ paramName: 'agentId', message: 'Required: the RBM agent id' });
  if (s.serviceAccount === undefined) out.push({ paramName: 'serviceAccount', message: 'Required: the Google service account JSON of the RBM partner' });
  else out.push(...parseServiceAccount(s.serviceAccount, { paramName: 'serviceAccount', projectId: false }).failures);
  if (typeof s.clientToken !== 'string' || !s.clientToken) out.push({ paramName: 'clientToken', message: 'Required: the webhook clientToken from the RBM console' });
  return out;
}

/** Parts RBM shows as files (`contentInfo.fileUrl`); other parts with a URL go into the text as links. */
const isFile = (type: string | undefined): boolean => /^(image|video|audio)\//i.test(type ?? '') || /^application\/pdf$/i.test(type ?? '');

type Built = { ok: true; contents: Json[] } | { ok: false; code: string; reason: string };

/** The `contentMessage` of each agent message for one send, in order. */
function buildContents(input: SendInput): Built {
  if (input.customBody !== undefined) {
    const custom = customObject(input.customBody);
    return custom ? { ok: true, contents: [custom] } : { ok: false, code: 'InvalidCustomBody', reason: 'customBody.rcs must be an RBM contentMessage object' };
  }
  const parts = input.messageParts ?? [];
  const links = parts.filter((p) => p.url && !isFile(p.type)).map((p) => p.url!);
  const text = [input.body ?? '', ...links].filter((t) => t !== '').join('\n');
  if ([...text].length > RCS_TEXT_LIMIT) return { ok: false, code: 'TextTooLong', reason: `RCS text is longer than ${RCS_TEXT_LIMIT} characters` };
  const contents: Json[] = text ? [{ text }] : [];
  for (const p of parts) if (p.url && isFile(p.type)) contents.push({ contentInfo: { fileUrl: p.url } });
  if (!contents.length) return { ok: false, code: 'NoContent', reason: 'Nothing to send on RCS (no text or file URL)' };
  return { ok: true, contents };
}

/**
 * The agent message id of content item `index`: the message id itself for the first, else a UUID
 * (RFC 4122 version 5, named by the index under the message id), so a retried send reuses its ids
 * and RBM drops the duplicates.
 */
export function agentMessageId(messageId: string, index: number): string {
  return index === 0 ? messageId : namedUuid(Buffer.from(messageId.replace(/-/g, ''), 'hex'), String(index));
}

/** The agent event id of the read receipt for a user's message: the same on every retry, so RBM drops repeats. */
const readEventId = (userMessageId: string) => namedUuid('read:', userMessageId);

/** An RFC 4122 version 5 style UUID: the SHA-1 of `parts`, with the version and variant bits set. */
function namedUuid(...parts: Array<Buffer | string>): string {
  const sha = createHash('sha1');
  for (const p of parts) sha.update(p);
  const hash = sha.digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Capability answers shared by a provider's adapters, per (space, agent, number). */
type Capabilities = TtlCache<string, boolean>;

/** Whether RBM can reach the number through the agent: `true`, `false` (404), or the failure of the check. */
async function capable(client: RbmClient, cache: Capabilities, key: string, digits: string, agentId: string, signal?: AbortSignal): Promise<boolean | SendOutcome> {
  const known = cache.get(key);
  if (known !== undefined) return known;
  const answer = await client.capabilities(digits, agentId, randomUUID(), signal);
  if (answer.ok || answer.status === 404) {
    cache.set(key, answer.ok);
    return answer.ok;
  }
  // Transient failures are not remembered; a refusal (bad agent, no permission) ends the attempt.
  return answer.outcome;
}

const notReachable = (digits: string): SendOutcome => ({ kind: 'skipped', code: 'NoAddress', reason: `+${digits} cannot be reached over RCS through this agent` });

/** The adapter for one `rbmApi` configuration. */
export function createRcsAdapter(ctx: AdapterContext, options: { rcsApiUrl: string; capabilities: Capabilities }): ChannelAdapter {
  const s = ctx.settings;
  const parsed = parseServiceAccount(s.serviceAccount, { paramName: 'serviceAccount', projectId: false });
  // Settings are validated when stored: a failure here means they were changed behind the API.
  if (!parsed.account) throw new Error(`rcs settings: ${parsed.failures.map((f) => `${f.paramName} ${f.message}`).join('; ')}`);
  const client = createRbmClient({ baseUrl: options.rcsApiUrl, serviceAccount: parsed.account, allowPrivateTargets: ctx.allowPrivateTargets });
  const defaultAgent = String(s.agentId);

  return {
    async close() {
      client.close();
    },

    mediaByUrl: true,

    async send(input: SendInput): Promise<SendOutcome> {
      const digits = typeof input.to.phoneNumber === 'string' ? phoneDigits(input.to.phoneNumber) : undefined;
      if (!digits) return { kind: 'rejected', code: 'NoAddress', reason: 'No valid phone number to send to' };
      const agentId = str(input.options?.agentId) ?? defaultAgent;
      if (!AGENT_ID.test(agentId)) return { kind: 'rejected', code: 'InvalidAgent', reason: 'channelOptions.rcs.agentId is not an RBM agent id' };
      const built = buildContents(input);
      if (!built.ok) return { kind: 'rejected', code: built.code, reason: built.reason };
      const key = `${ctx.apiSpaceId}\u0000${agentId}\u0000${digits}`;
      const reachable = await capable(client, options.capabilities, key, digits, agentId, input.signal);
      if (reachable === false) return notReachable(digits);
      if (reachable !== true) return reachable;

      const expires = input.expiresOn !== undefined && input.expiresOn - Date.now() <= MAX_EXPIRY_MS ? { expireTime: new Date(input.expiresOn).toISOString() } : {};
      const failures: Array<{ index: number; code?: string; reason: string }> = [];
      for (const [index, contentMessage] of built.contents.entries()) {
        const answer = await client.agentMessage(digits, agentId, agentMessageId(input.messageId, index), { contentMessage, ...expires }, input.signal);
        // 409: the id was used before, so an earlier attempt of this send got through.
        if (answer.ok || answer.status === 409) continue;
        if (index > 0) {
          failures.push({ index, ...(answer.outcome.code ? { code: answer.outcome.code } : {}), reason: answer.outcome.reason });
          continue;
        }
        // The capability answer was stale: the user is not reachable now, and nothing was sent.
        if (answer.status === 404) {
          options.capabilities.set(key, false);
          return notReachable(digits);
        }
        return answer.outcome;
      }
      const country = phoneCountry(digits);
      return {
        kind: 'accepted', providerMessageId: input.messageId, acceptedAt: Date.now(),
        details: {
          phoneNumber: `+${digits}`, ...(country ? { phoneNumberCountryCode: country } : {}), agentId,
          ...(built.contents.length > 1 ? { requests: built.contents.length } : {}), ...(failures.length ? { failures } : {}),
        },
      };
    },

    /** Marks a user's message read with an agent `READ` event: the user sees a read receipt. */
    async markRead(inbound: ReadInbound, signal?: AbortSignal): Promise<SendOutcome> {
      const digits = typeof inbound.from.phoneNumber === 'string' ? phoneDigits(inbound.from.phoneNumber) : undefined;
      if (!digits) return { kind: 'rejected', code: 'NoAddress', reason: 'The inbound message has no sender phone number' };
      const answer = await client.agentEvent(digits, defaultAgent, readEventId(inbound.providerMessageId), { eventType: 'READ', messageId: inbound.providerMessageId }, signal);
      // 409: the event id was used before, so an earlier attempt got through.
      return answer.ok || answer.status === 409 ? { kind: 'accepted' } : answer.outcome;
    },

    /** A user's file: its `fileUri` (the only inbound parts with a URL) serves it for a limited time. */
    async fetchMedia(part, { maxBytes, signal }): Promise<MediaFetch | undefined> {
      const link = str(part.url);
      return link ? downloadMedia({ url: link, allowPrivate: ctx.allowPrivateTargets, maxBytes, signal }) : undefined;
    },

    async handleCallback(req) {
      return handleRbmCallback(ctx.channelId, req, s.clientToken);
    },
  };
}

/**
 * The `rcs`/`rbmApi` provider. `rcsApiUrl` comes from RCS_API_URL so that a relay or a test peer
 * can stand in for `https://rcsbusinessmessaging.googleapis.com`; the capability cache lives as
 * long as the provider, so a configuration change does not forget it.
 */
export function rcsRbmProvider(options: { rcsApiUrl: string }): ChannelProvider {
  const capabilities: Capabilities = new TtlCache(CAPABILITY_TTL_MS, CAPABILITY_CACHE_SIZE);
  return {
    channel: 'rcs',
    provider: 'rbmApi',
    secretSettings: ['serviceAccount', 'clientToken'],
    validateSettings: validateRcsSettings,
    create: (ctx) => createRcsAdapter(ctx, { rcsApiUrl: options.rcsApiUrl, capabilities }),
  };
}
