/**
 * MMS over the generic HTTP gateway (channels.md §3, sms.md §8.2): the SMS gateway's request,
 * callbacks and sender rules, with `{{subject}}` and a `{{mediaUrls}}` list in the request
 * template, an optional list of countries where MMS is available (others are refused with
 * `ContentNotSupported`, so Branch falls back, typically to `sms`), and inbound media as parts.
 */
import type { AdapterContext, ChannelAdapter, ChannelProvider, InboundReport, MediaFetch, SendInput, SendOutcome } from '../adapter.js';
import { PART_TYPE } from '../../lib/message-parts.js';
import { alpha2, alpha3 } from '../sms/countries.js';
import { countCodePoints, prepareSms, type UnicodeConversion } from '../sms/encoding.js';
import { countryOf, memorySenderStore, senderProblem, smsRecipient, smsValidUntil, withTrackedLinks, type SenderStore } from '../sms/sms-common.js';
import { createGateway, GATEWAY_SECRETS, inboundAddresses, obj, pointer, str, validateGatewaySettings, type Failure } from '../sms/http/gateway.js';
import { MMS_MAX_CHARACTERS, MMS_MAX_MEDIA_BYTES, mediaTooLarge, mmsContent } from './mms-content.js';

/** channels.md §3: MMS receipts are delivered or failed (an expired one is reported as failed). */
const STATUSES = ['delivered', 'failed'] as const;
const INBOUND_PATHS = ['fromPath', 'toPath', 'textPath', 'subjectPath', 'mediaPath', 'mediaUrlPath', 'mediaTypePath'];
const DEFAULT_TEMPLATE = '{"to":"{{to}}","from":"{{from}}","subject":"{{subject}}","text":"{{text}}","mediaUrls":{{mediaUrls}},"reference":"{{messageId}}"}';

export interface MmsDeps {
  senders?: SenderStore;
  now?: () => number;
}

export function validateHttpMmsSettings(s: Record<string, unknown>): Failure[] {
  const out = validateGatewaySettings(s, STATUSES, INBOUND_PATHS);
  const json = /json/i.test(str(s.contentType) ?? 'application/json');
  if (json && typeof s.bodyTemplate === 'string' && /"\{\{\s*mediaUrls\s*\}\}"/.test(s.bodyTemplate)) {
    out.push({ paramName: 'bodyTemplate', message: 'In a JSON body {{mediaUrls}} becomes a JSON array: write it without quotes' });
  }
  if (s.countries !== undefined && (!Array.isArray(s.countries) || s.countries.length === 0)) out.push({ paramName: 'countries', message: 'Must be a non-empty array of ISO 3166-1 alpha-3 codes' });
  else if (Array.isArray(s.countries)) {
    s.countries.forEach((c, i) => {
      if (typeof c !== 'string' || c.length !== 3 || !alpha2(c)) out.push({ paramName: `countries[${i}]`, message: 'Must be an ISO 3166-1 alpha-3 code' });
    });
  }
  if (s.defaultFrom !== undefined) {
    const problem = typeof s.defaultFrom === 'string' ? senderProblem(s.defaultFrom) : 'Must be a string';
    if (problem) out.push({ paramName: 'defaultFrom', message: problem });
  }
  if (s.numbers !== undefined && !Array.isArray(s.numbers)) out.push({ paramName: 'numbers', message: 'Must be an array' });
  return out;
}

/**
 * Media items of an inbound callback item (`inbound.mediaPath`: a list, or one item): a URL, or an
 * object with its URL at `mediaUrlPath` (default `/url`) and its type at `mediaTypePath` (default
 * `/type`; `application/octet-stream` when missing). Items without an http(s) URL are dropped.
 */
function inboundMedia(value: unknown, cfg: Record<string, unknown>): Array<Record<string, unknown>> {
  const items = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const parts: Array<Record<string, unknown>> = [];
  for (const item of items) {
    const url = typeof item === 'string' ? item : pointer(item, str(cfg.mediaUrlPath) ?? '/url');
    if (typeof url !== 'string' || !/^https?:\/\/\S+$/i.test(url)) continue;
    const type = typeof item === 'string' ? undefined : pointer(item, str(cfg.mediaTypePath) ?? '/type');
    parts.push({ type: typeof type === 'string' && PART_TYPE.test(type) ? type.toLowerCase() : 'application/octet-stream', url });
  }
  return parts;
}

export function createHttpMmsAdapter(ctx: AdapterContext, deps: MmsDeps = {}): ChannelAdapter {
  const s = ctx.settings;
  const now = deps.now ?? Date.now;
  const countries = Array.isArray(s.countries) ? new Set(s.countries.map((c) => String(c).toUpperCase())) : undefined;
  const inboundCfg = obj(s.inbound);

  const gateway = createGateway(ctx, {
    statuses: STATUSES,
    defaultTemplate: DEFAULT_TEMPLATE,
    now,
    senders: deps.senders ?? memorySenderStore(),
    inbound(item): InboundReport | undefined {
      const addresses = inboundAddresses(item, inboundCfg);
      if (!addresses) return undefined;
      const text = pointer(item, str(inboundCfg.textPath));
      const subject = pointer(item, str(inboundCfg.subjectPath));
      const media = inboundMedia(pointer(item, str(inboundCfg.mediaPath)), inboundCfg);
      if ((text === undefined || text === null) && !media.length) return undefined;
      return {
        channelId: ctx.channelId, ...addresses,
        ...(text !== undefined && text !== null ? { body: String(text) } : {}),
        ...(typeof subject === 'string' && subject ? { title: subject } : {}),
        ...(media.length ? { messageParts: media } : {}),
        raw: item,
      };
    },
  });

  /**
   * MMS text is Unicode whatever the options say (`allowUnicode` changes nothing); the options'
   * `unicodeConversion` still applies, as sms.md §3.6 does with Unicode allowed.
   */
  function convert(text: string, input: SendInput): string {
    const conversion = input.options?.unicodeConversion as UnicodeConversion | undefined;
    return conversion ? prepareSms(text, { allowUnicode: true, unicodeConversion: conversion }).text : text;
  }

  return {
    /** An inbound item's media: carriers' URLs expire, and a gateway may serve them only to its own credentials. */
    async fetchMedia(part, options): Promise<MediaFetch | undefined> {
      return typeof part.url === 'string' ? gateway.download(part.url, options) : undefined;
    },

    mediaByUrl: true,

    async send(input: SendInput): Promise<SendOutcome> {
      const to = smsRecipient(input);
      if (!to || !/^\d{4,15}$/.test(to)) return { kind: 'rejected', reason: 'No valid phone number to send to', code: 'InvalidNumber' };
      const country = countryOf(to);
      if (countries && !countries.has(alpha3(country) ?? '')) {
        return { kind: 'rejected', reason: `This channel has no MMS for ${country ?? 'the number\'s country'}`, code: 'ContentNotSupported' };
      }
      const built = mmsContent(input);
      if (!built.ok) return { kind: 'rejected', reason: built.reason, code: built.code };
      const { subject, media } = built.content;
      const text = convert(await withTrackedLinks(built.content.text, input, ctx.trackLink), input);
      if (countCodePoints(text) > MMS_MAX_CHARACTERS) return { kind: 'rejected', reason: `MMS text is longer than ${MMS_MAX_CHARACTERS} characters`, code: 'ContentTooLong' };
      if (await mediaTooLarge(media, async (url) => ctx.contentSize?.(url))) {
        return { kind: 'rejected', reason: `MMS media are larger than ${MMS_MAX_MEDIA_BYTES} bytes in total`, code: 'ContentTooLong' };
      }
      const sent = await gateway.send(input, to, {
        to, subject, text, mediaUrls: media.map((m) => m.url), messageId: input.messageId,
        validUntil: new Date(smsValidUntil(input, now())).toISOString(),
      });
      if (!sent.ok) return sent.outcome;
      const details = { to, from: sent.from, mediaCount: media.length, ...(country ? { phoneNumberCountryCode: country } : {}), ...(subject ? { subject } : {}) };
      return { kind: 'accepted', providerMessageId: sent.providerMessageId, acceptedAt: now(), details };
    },

    handleCallback: (req) => gateway.handleCallback(req),
  };
}

export function httpMmsProvider(deps: MmsDeps = {}): ChannelProvider {
  return {
    channel: 'mms',
    provider: 'http',
    secretSettings: GATEWAY_SECRETS,
    validateSettings: validateHttpMmsSettings,
    create: (ctx) => createHttpMmsAdapter(ctx, deps),
  };
}
