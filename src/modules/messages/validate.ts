/**
 * The message request validation checklist (one-api.md §2.6): every failure is collected, none
 * stops the others. Returns the request as it is stored and echoed (unknown properties dropped,
 * `to.phoneNumber` normalised to digits, `to.email` with a lower-case domain).
 */
import { phoneDigits } from '../../lib/phone.js';
import type { ValidationFailure } from '../../http/errors.js';
import { clientIdProblem } from '../../lib/ids.js';
import { parseDateTime } from '../../lib/clock.js';
import { CHANNEL_SHORT_NAMES } from '../../auth/permissions.js';
import { checkPart, MAX_PARTS } from '../../lib/message-parts.js';

export const BUILT_IN_CHANNELS: ReadonlySet<string> = new Set(Object.keys(CHANNEL_SHORT_NAMES));
const CUSTOM_ID = /^[A-Za-z][A-Za-z0-9_-]{1,49}$/;
const SUCCESS_STATUSES = ['sent', 'delivered', 'read'];

export const isChannelId = (id: string): boolean => BUILT_IN_CHANNELS.has(id) || (CUSTOM_ID.test(id) && id !== 'facebook');
export const isCustomChannel = (id: string): boolean => !BUILT_IN_CHANNELS.has(id);

/** International digits of a recipient's number (`phoneDigits`); undefined if not 7–15 digits. */
export const normalisePhone = (raw: string): string | undefined => phoneDigits(raw, 7);

export function normaliseEmail(raw: string): string | undefined {
  const v = raw.trim();
  const at = v.lastIndexOf('@');
  if (at < 1 || at === v.length - 1 || /\s/.test(v)) return undefined;
  return v.slice(0, at) + '@' + v.slice(at + 1).toLowerCase();
}

/** Sender id rule of sms.md §2. */
export function senderProblem(from: unknown): string | undefined {
  if (typeof from !== 'string') return 'Must be a string';
  if (/^\+?\d+$/.test(from)) return /^\+?\d{3,15}$/.test(from) ? undefined : 'A numeric sender must have 3 to 15 digits';
  if (!/^[A-Za-z0-9 _.-]{3,11}$/.test(from) || !/[A-Za-z]/.test(from)) return 'An alphanumeric sender must be 3 to 11 letters, digits, spaces, "-", "_" or "." with at least one letter';
  return undefined;
}

function nameFromUrl(url: string): string | undefined {
  try {
    const last = new URL(url).pathname.split('/').filter(Boolean).pop();
    return last ? decodeURIComponent(last) : undefined;
  } catch {
    return undefined;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

export interface ValidationContext {
  now: number;
  /** The rule set's channels when `ruleSet` was given: undefined = no ruleSet, null = unknown. */
  ruleSetRules?: string[] | null;
  /** Whether `templateId` names an existing template (undefined when not given). */
  templateExists?: boolean;
}

export interface ValidatedRequest {
  stored: Record<string, unknown>;
  /** Deduplicated channel list (from `rules` or the rule set). */
  channels: string[];
  expiresAt?: number;
  deliverAfter?: number;
}

type Fail = (paramName: string, message: string) => void;

function checkOptions(ch: string, o: Record<string, unknown>, fail: Fail): void {
  const p = `channelOptions.${ch}`;
  const bool = (k: string) => { if (o[k] !== undefined && typeof o[k] !== 'boolean') fail(`${p}.${k}`, 'Must be a boolean'); };
  const str = (k: string) => { if (o[k] !== undefined && typeof o[k] !== 'string') fail(`${p}.${k}`, 'Must be a string'); };
  const obj = (k: string) => { if (o[k] !== undefined && !isObj(o[k])) fail(`${p}.${k}`, 'Must be an object'); };
  switch (ch) {
    case 'sms':
    case 'mms': {
      if (o.from !== undefined) { const m = senderProblem(o.from); if (m) fail(`${p}.from`, m); }
      bool('allowUnicode'); bool('trackLinks'); obj('unicodeConversion');
      const uc = o.unicodeConversion;
      if (isObj(uc)) {
        if (uc.convertUnicodeToGsm !== undefined && typeof uc.convertUnicodeToGsm !== 'boolean') fail(`${p}.unicodeConversion.convertUnicodeToGsm`, 'Must be a boolean');
        if (uc.customReplacements !== undefined) {
          if (!Array.isArray(uc.customReplacements)) fail(`${p}.unicodeConversion.customReplacements`, 'Must be an array');
          else uc.customReplacements.forEach((r, i) => {
            if (!isObj(r) || typeof r.from !== 'string' || typeof r.to !== 'string') fail(`${p}.unicodeConversion.customReplacements[${i}]`, 'Must be {from, to} strings');
          });
        }
      }
      break;
    }
    case 'email':
      str('htmlBody'); str('fromName'); bool('trackClicks'); bool('trackOpens');
      for (const k of ['fromAddress', 'replyTo']) if (o[k] !== undefined && (typeof o[k] !== 'string' || !normaliseEmail(o[k] as string))) fail(`${p}.${k}`, 'Must be an e-mail address');
      break;
    case 'nativePush': {
      obj('data'); obj('deepLink');
      if (isObj(o.data)) {
        for (const k of ['fcm', 'apns']) if (o.data[k] !== undefined && !isObj(o.data[k])) fail(`${p}.data.${k}`, 'Must be an object');
        if (o.data.isSilent !== undefined && typeof o.data.isSilent !== 'boolean') fail(`${p}.data.isSilent`, 'Must be a boolean');
      }
      if (isObj(o.deepLink)) {
        if (o.deepLink.trackingLink !== undefined && typeof o.deepLink.trackingLink !== 'string') fail(`${p}.deepLink.trackingLink`, 'Must be a string');
        for (const k of ['fcm', 'apns']) {
          const v = o.deepLink[k];
          if (v !== undefined && (!isObj(v) || typeof v.url !== 'string')) fail(`${p}.deepLink.${k}.url`, 'Required string');
        }
      }
      break;
    }
    case 'whatsApp':
      str('phoneNumber'); bool('enableUrlPreview');
      break;
    case 'fbMessenger':
      str('messageTag');
      if (o.messagingType !== undefined && !['RESPONSE', 'UPDATE', 'MESSAGE_TAG'].includes(o.messagingType as string)) fail(`${p}.messagingType`, 'Must be RESPONSE, UPDATE or MESSAGE_TAG');
      break;
    case 'rcs':
      str('agentId');
      break;
    case 'appMessaging':
      obj('from');
      if (isObj(o.from)) for (const k of ['profileId', 'name', 'avatarUrl']) if (o.from[k] !== undefined && typeof o.from[k] !== 'string') fail(`${p}.from.${k}`, 'Must be a string');
      break;
  }
}

/**
 * True when `v` (parsed JSON) certainly serialises to at most `limit` characters: an upper bound
 * (every string character counted as a six-character escape) that stops early. Cheaper than
 * serialising for the small objects requests carry; callers serialise when it says no.
 */
function surelyWithin(v: unknown, limit: number): boolean {
  let budget = limit;
  const walk = (x: unknown, depth: number): boolean => {
    if (typeof x === 'string') return (budget -= x.length * 6 + 2) >= 0;
    if (x === null || typeof x !== 'object') return (budget -= 24) >= 0;
    if ((budget -= 2) < 0 || depth > 32) return false;
    if (Array.isArray(x)) {
      for (const e of x) if (!walk(e, depth + 1) || (budget -= 1) < 0) return false;
      return true;
    }
    for (const k in x) if (!walk(k, depth) || !walk((x as Record<string, unknown>)[k], depth + 1) || (budget -= 2) < 0) return false;
    return true;
  };
  return walk(v, 0);
}

/** The serialised length of `v`, or Infinity when it cannot be serialised (nested too deeply). */
function serialisedLength(v: unknown): number {
  try {
    return JSON.stringify(v).length;
  } catch {
    return Infinity;
  }
}

/** A `Fail` that collects into `failures` (made by a factory: tsx names a `const` arrow on every call). */
function failInto(failures: ValidationFailure[], index: number | undefined): Fail {
  return (paramName, message) => { failures.push(index === undefined ? { paramName, message } : { index, paramName, message }); };
}

/** Applies the checklist to one request body (`failures` collects with paramName only). */
export function validateRequest(body: unknown, vc: ValidationContext, failures: ValidationFailure[], index?: number): ValidatedRequest | undefined {
  const start = failures.length;
  const fail = failInto(failures, index);
  if (!isObj(body)) {
    fail('body', 'A message request object is required');
    return undefined;
  }
  const b = body;
  const stored: Record<string, unknown> = {};

  // 1. to
  const to: Record<string, string> = {};
  if (!isObj(b.to)) fail('to', 'Required object of recipient identifiers');
  else {
    for (const k in b.to) {
      if (!Object.hasOwn(b.to, k)) continue;
      const v = b.to[k];
      if (typeof v !== 'string') { fail(`to.${k}`, 'Must be a string'); continue; }
      if (v === '') continue;
      if (k === 'phoneNumber') { const n = normalisePhone(v); if (!n) fail('to.phoneNumber', 'Not a valid international phone number'); else to[k] = n; }
      else if (k === 'email') { const n = normaliseEmail(v); if (!n) fail('to.email', 'Not a valid e-mail address'); else to[k] = n; }
      else if (k === 'profileId') { const m = clientIdProblem(v); if (m) fail('to.profileId', m); else to[k] = v; }
      else to[k] = v;
    }
    let any = false;
    for (const _k in to) { any = true; break; }
    if (!any && failures.length === start) fail('to', 'At least one recipient identifier is required');
  }
  stored.to = to;

  // 2–3. rules xor ruleSet
  let channels: string[] = [];
  const hasRules = b.rules !== undefined;
  const hasRuleSet = b.ruleSet !== undefined;
  if (hasRules && hasRuleSet) fail('rules', 'Supply either rules or ruleSet, not both');
  else if (!hasRules && !hasRuleSet) fail('rules', 'Supply either rules or ruleSet');
  if (hasRules) {
    if (!Array.isArray(b.rules) || b.rules.length === 0 || b.rules.length > 20) fail('rules', 'Must be an array of 1 to 20 channel ids');
    else {
      for (let i = 0; i < b.rules.length; i++) {
        const c: unknown = b.rules[i];
        if (typeof c !== 'string' || !isChannelId(c)) fail(`rules[${i}]`, 'Not a valid channel id');
        else if (!channels.includes(c)) channels.push(c);
      }
      stored.rules = b.rules;
    }
  }
  if (hasRuleSet) {
    if (typeof b.ruleSet !== 'string' || b.ruleSet === '') fail('ruleSet', 'Must be a rule set id or name');
    else if (vc.ruleSetRules === null) fail('ruleSet', 'Unknown rule set');
    else if (!hasRules) channels = [...new Set(vc.ruleSetRules ?? [])];
    stored.ruleSet = b.ruleSet;
  }

  // 4. content
  if (b.title !== undefined) { if (typeof b.title !== 'string' || b.title.length > 1000) fail('title', 'Must be a string of at most 1000 characters'); else stored.title = b.title; }
  if (b.body !== undefined) {
    if (typeof b.body !== 'string') fail('body', 'Must be a string');
    else if (b.body.length > 16_384 && Buffer.byteLength(b.body) > 65_536) fail('body', 'Must be at most 64 KiB');
    else stored.body = b.body;
  }
  if (b.messageParts !== undefined) {
    if (!Array.isArray(b.messageParts) || b.messageParts.length > MAX_PARTS) fail('messageParts', `Must be an array of at most ${MAX_PARTS} parts`);
    else {
      b.messageParts.forEach((part, i) => checkPart(part, `messageParts[${i}]`, fail));
      // A URL part needs only type and url; its name is derived from the URL (§2.4.2).
      stored.messageParts = b.messageParts.map((p) => (isObj(p) && typeof p.url === 'string' && p.name === undefined ? { ...p, name: nameFromUrl(p.url) } : p));
    }
  }
  if (b.templateId !== undefined) {
    if (typeof b.templateId !== 'string' || b.templateId === '') fail('templateId', 'Must be a template id');
    else if (vc.templateExists === false) fail('templateId', 'Unknown template');
    else stored.templateId = b.templateId;
    if (b.body !== undefined || b.messageParts !== undefined) fail('templateId', 'templateId cannot be combined with body or messageParts');
  }
  const customBody = isObj(b.customBody) ? b.customBody : undefined;
  if (b.customBody !== undefined) {
    if (!customBody) fail('customBody', 'Must be an object keyed by channel id');
    else {
      for (const [ch, v] of Object.entries(customBody)) {
        if (isCustomChannel(ch)) { if (typeof v !== 'string') fail(`customBody.${ch}`, 'A custom channel body must be a string'); }
        else if (!isObj(v)) fail(`customBody.${ch}`, 'Must be an object');
      }
      const sms = customBody.sms;
      if (isObj(sms)) {
        if (sms.from !== undefined) { const m = senderProblem(sms.from); if (m) fail('customBody.sms.from', m); }
        if (sms.clientRef !== undefined && (typeof sms.clientRef !== 'string' || sms.clientRef.length > 64)) fail('customBody.sms.clientRef', 'Must be a string of at most 64 characters');
        if (sms.deliverAfter !== undefined) {
          const at = typeof sms.deliverAfter === 'string' ? parseDateTime(sms.deliverAfter) : undefined;
          if (at === undefined) fail('customBody.sms.deliverAfter', 'Must be an RFC 3339 date-time');
          else if (at > vc.now + 30 * 86_400_000) fail('customBody.sms.deliverAfter', 'Must be at most 30 days ahead');
        }
      }
      const mms = customBody.mms;
      if (isObj(mms)) {
        if (mms.from !== undefined) { const m = senderProblem(mms.from); if (m) fail('customBody.mms.from', m); }
        for (const k of ['to', 'subject', 'body']) if (mms[k] !== undefined && typeof mms[k] !== 'string') fail(`customBody.mms.${k}`, 'Must be a string');
        if (mms.mediaUrls !== undefined && (!Array.isArray(mms.mediaUrls) || mms.mediaUrls.some((u) => typeof u !== 'string' || !/^https?:\/\/[^\s]+$/i.test(u)))) {
          fail('customBody.mms.mediaUrls', 'Must be an array of absolute http(s) URLs');
        }
      }
      stored.customBody = customBody;
    }
  }
  // An empty `messageParts` is no content (checklist item 4 asks for content, not for the field).
  const hasGeneric = stored.body !== undefined || (Array.isArray(b.messageParts) && b.messageParts.length > 0) || b.templateId !== undefined;
  if (!hasGeneric && channels.length && !channels.every((c) => customBody && customBody[c] !== undefined)) {
    fail('body', 'Supply body, messageParts, templateId, or a customBody for every channel');
  }

  // 5, 9. channel options
  if (b.channelOptions !== undefined) {
    if (!isObj(b.channelOptions)) fail('channelOptions', 'Must be an object keyed by channel id');
    else {
      for (const [ch, o] of Object.entries(b.channelOptions)) {
        if (customBody && customBody[ch] !== undefined) fail(`channelOptions.${ch}`, 'A channel cannot have both customBody and channelOptions');
        else if (!isObj(o)) fail(`channelOptions.${ch}`, 'Must be an object');
        else checkOptions(ch, o, fail);
      }
      stored.channelOptions = b.channelOptions;
    }
  }

  if (b.overrides !== undefined) {
    if (!isObj(b.overrides)) fail('overrides', 'Must be an object');
    else if (b.overrides.appMessaging !== undefined && (!isObj(b.overrides.appMessaging) || (b.overrides.appMessaging.conversation !== undefined && !isObj(b.overrides.appMessaging.conversation)))) fail('overrides.appMessaging.conversation', 'Must be an object');
    else stored.overrides = b.overrides;
  }
  if (b.conversationId !== undefined) {
    const m = typeof b.conversationId === 'string' ? clientIdProblem(b.conversationId) : 'Must be a string';
    if (m) fail('conversationId', m); else stored.conversationId = b.conversationId;
  }
  let expiresAt: number | undefined;
  if (b.expiresOn !== undefined) {
    expiresAt = typeof b.expiresOn === 'string' ? parseDateTime(b.expiresOn) : undefined;
    if (expiresAt === undefined) fail('expiresOn', 'Must be an RFC 3339 date-time with a time zone');
    else if (expiresAt <= vc.now) fail('expiresOn', 'Must be in the future');
    else stored.expiresOn = new Date(expiresAt).toISOString();
  }
  if (b.metadata !== undefined) {
    if (!isObj(b.metadata)) fail('metadata', 'Must be an object');
    else if (!surelyWithin(b.metadata, 16_384) && serialisedLength(b.metadata) > 16_384) fail('metadata', 'Must be at most 16 KiB serialised');
    else stored.metadata = b.metadata;
  }
  if (b.requireOptIn !== undefined) { if (typeof b.requireOptIn !== 'boolean') fail('requireOptIn', 'Must be a boolean'); else stored.requireOptIn = b.requireOptIn; }
  if (b.fallbackAfter !== undefined) {
    if (!Number.isInteger(b.fallbackAfter) || (b.fallbackAfter as number) < 30 || (b.fallbackAfter as number) > 86_400) fail('fallbackAfter', 'Must be an integer from 30 to 86400 seconds');
    else if (!hasRules) fail('fallbackAfter', 'fallbackAfter is only allowed with rules; set it on the rule set instead');
    else stored.fallbackAfter = b.fallbackAfter;
  }
  if (b.successStatus !== undefined) {
    if (!SUCCESS_STATUSES.includes(b.successStatus as string)) fail('successStatus', 'Must be sent, delivered or read');
    else stored.successStatus = b.successStatus;
  }

  if (failures.length > start) return undefined;
  const sms = customBody?.sms as Record<string, unknown> | undefined;
  // The schedule is held in our queue (sms.md §5); it applies when SMS is one of the channels.
  const deliverAfter = typeof sms?.deliverAfter === 'string' && channels.includes('sms') ? parseDateTime(sms.deliverAfter) : undefined;
  return { stored, channels, expiresAt, deliverAfter };
}

/** The send permission a channel needs (conventions.md §3.4). */
export const sendPermission = (ch: string): string => `msg:${CHANNEL_SHORT_NAMES[ch] ?? 'custom'}:s`;
export const inboundPermission = (ch: string): string => `msg:${CHANNEL_SHORT_NAMES[ch] ?? 'custom'}:i`;
