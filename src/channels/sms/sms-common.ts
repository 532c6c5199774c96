/**
 * What the SMS providers share: the message text from a send input, sender rules and selection
 * (sms.md §2), receipt parsing and status mapping (§6.2), and the small stores providers need
 * (multi-part tracking, sender stitching) with in-memory defaults for tests.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { ReceiptReport, SendInput } from '../adapter.js';
import { alpha3 } from './countries.js';
import { countCodePoints, prepareSms, SMS_MAX_CHARACTERS, type PreparedSms, type SmsTextOptions } from './encoding.js';

export interface PoolNumber {
  number: string;
  countryIsoCode?: string;
  type?: 'longCode' | 'shortCode';
  keywords?: string[];
}

/** Multi-part tracking: parts of one message and their final states (sms.md §6.2). */
export interface PartStore {
  record(apiSpaceId: string, messageId: string, providerIds: string[]): Promise<void>;
  /** Marks one part's final state; returns the message id and the states of all its parts. */
  settle(apiSpaceId: string, providerId: string, state: string): Promise<{ messageId: string; states: string[] } | undefined>;
}

/** Sender stitching: the pool number last used for a recipient (60 days). */
export interface SenderStore {
  get(apiSpaceId: string, to: string, notBefore: number): Promise<string | undefined>;
  put(apiSpaceId: string, to: string, from: string, at: number): Promise<void>;
}

export function memoryPartStore(): PartStore {
  const parts = new Map<string, { messageId: string; ids: string[] }>();
  const states = new Map<string, string>();
  return {
    async record(space, messageId, ids) {
      for (const id of ids) parts.set(`${space}|${id}`, { messageId, ids });
    },
    async settle(space, providerId, state) {
      const p = parts.get(`${space}|${providerId}`);
      if (!p) return undefined;
      states.set(`${space}|${providerId}`, state);
      return { messageId: p.messageId, states: p.ids.map((id) => states.get(`${space}|${id}`) ?? 'pending') };
    },
  };
}

export function memorySenderStore(): SenderStore {
  const m = new Map<string, { from: string; at: number }>();
  return {
    async get(space, to, notBefore) {
      const v = m.get(`${space}|${to}`);
      return v && v.at >= notBefore ? v.from : undefined;
    },
    async put(space, to, from, at) {
      m.set(`${space}|${to}`, { from, at });
    },
  };
}

/** Default SMS validity (one-api.md §4.4): 48 hours. */
const DEFAULT_VALIDITY_MS = 48 * 3600 * 1000;

/**
 * When an SMS stops being worth delivering (one-api.md §4.4): `expiresOn`, unless that is less than
 * a minute after `now`, then the 48-hour default.
 */
export function smsValidUntil(input: SendInput, now: number): number {
  return input.expiresOn && input.expiresOn >= now + 60_000 ? input.expiresOn : now + DEFAULT_VALIDITY_MS;
}

export const STITCH_MS = 60 * 24 * 3600 * 1000;

/** sms.md §2: numeric 3–15 digits (leading + stripped) or alphanumeric 3–11 with a letter. */
export function senderProblem(from: string): string | undefined {
  const numeric = from.replace(/^\+/, '');
  if (/^\d+$/.test(numeric)) return numeric.length >= 3 && numeric.length <= 15 ? undefined : 'A numeric sender has 3 to 15 digits';
  if (!/^[A-Za-z0-9 ._-]{3,11}$/.test(from)) return 'An alphanumeric sender has 3 to 11 characters from A-Z a-z 0-9 space - _ .';
  if (!/[A-Za-z]/.test(from)) return 'An alphanumeric sender needs at least one letter';
  return undefined;
}

/** Source TON/NPI (sms.md §8.1): alphanumeric 5/0, short codes 3/0, international numbers 1/1. */
export function sourceAddress(from: string, pool: readonly PoolNumber[]): { addr: string; ton: number; npi: number } {
  const digits = from.replace(/^\+/, '');
  if (!/^\d+$/.test(digits)) return { addr: from, ton: 5, npi: 0 };
  const known = pool.find((n) => n.number.replace(/^\+/, '') === digits);
  if (known?.type === 'shortCode' || (!known && digits.length <= 8)) return { addr: digits, ton: 3, npi: 0 };
  return { addr: digits, ton: 1, npi: 1 };
}

export function countryOf(phone: string): string | undefined {
  return parsePhoneNumberFromString(`+${phone.replace(/^\+/, '')}`)?.country;
}

/** The SMS text of a send (channels.md §2): customBody.sms.body, else body plus media URLs. */
export function smsText(input: SendInput): string {
  const custom = (input.customBody ?? {}) as Record<string, unknown>;
  if (typeof custom.body === 'string') return custom.body;
  let text = input.body ?? '';
  const parts = input.messageParts ?? [];
  if (!input.body) {
    const firstText = parts.find((p) => (p.type ?? '').startsWith('text/plain') && typeof p.data === 'string');
    if (firstText) text = firstText.data!;
  }
  for (const p of parts) if (p.url && !(p.type ?? '').startsWith('text/')) text += (text ? '\n' : '') + p.url;
  return text;
}

export function smsRecipient(input: SendInput): string | undefined {
  const custom = (input.customBody ?? {}) as Record<string, unknown>;
  const raw = typeof custom.to === 'string' ? custom.to : typeof input.to.phoneNumber === 'string' ? input.to.phoneNumber : undefined;
  return raw?.replace(/[\s()+-]/g, '') || undefined;
}

export type PrepareResult = { ok: true; sms: PreparedSms; details: Record<string, unknown> } | { ok: false; code: string; reason: string };

/** Encodes the text per the request's options and checks the 2000-character cap. */
export function prepareFor(input: SendInput, to: string, text = smsText(input)): PrepareResult {
  if (countCodePoints(text) > SMS_MAX_CHARACTERS) return { ok: false, code: 'ContentTooLong', reason: `SMS text is longer than ${SMS_MAX_CHARACTERS} characters` };
  if (!text) return { ok: false, code: 'ContentNotSupported', reason: 'No text to send' };
  const custom = (input.customBody ?? {}) as Record<string, unknown>;
  const options = { ...(input.options ?? {}), ...(typeof custom.allowUnicode === 'boolean' ? { allowUnicode: custom.allowUnicode } : {}) } as SmsTextOptions;
  const sms = prepareSms(text, { allowUnicode: options.allowUnicode === true, unicodeConversion: options.unicodeConversion });
  const country = countryOf(to);
  // `to` and `clientRef` are what the events' additionalInfo reports (webhooks.md §5.1).
  const details: Record<string, unknown> = { to, segmentCount: sms.segmentCount, encoding: sms.encoding };
  if (typeof custom.clientRef === 'string' && custom.clientRef) details.clientRef = custom.clientRef;
  if (sms.charactersReplaced) details.charactersReplaced = sms.charactersReplaced;
  if (country) details.phoneNumberCountryCode = country;
  return { ok: true, sms, details };
}

type TrackLink = (url: string, messageId: string, metadata?: unknown) => Promise<string>;

/** `channelOptions.sms.trackLinks` (channels.md §2): URLs in the text become tracked links. */
export async function smsTextWithLinks(input: SendInput, track: TrackLink | undefined): Promise<string> {
  return withTrackedLinks(smsText(input), input, track);
}

/** `text` with its URLs rewritten to tracked links when the send's options ask for it (`trackLinks`). */
export async function withTrackedLinks(text: string, input: SendInput, track: TrackLink | undefined): Promise<string> {
  if (input.options?.trackLinks !== true || !track) return text;
  const urls = [...new Set(text.match(/https?:\/\/[^\s<>"]+[^\s<>".,;:!?)]/g) ?? [])];
  let out = text;
  for (const url of urls) out = out.split(url).join(await track(url, input.messageId, input.metadata));
  return out;
}

/**
 * Sender selection (sms.md §2): explicit `from` → number stitched to the recipient within 60 days
 * → pool number for the destination country → `defaultFrom`; undefined → `SenderIdRejected`.
 */
export async function selectSender(
  input: SendInput, to: string, settings: { numbers: PoolNumber[]; defaultFrom?: string }, senders: SenderStore, now: number,
): Promise<{ from: string; pooled: boolean } | undefined> {
  const custom = (input.customBody ?? {}) as Record<string, unknown>;
  // Verify allows 2-character senders the One API refuses (verify.md §3), so it passes them here.
  const verifyFrom = (input.metadata as Record<string, unknown> | undefined)?.verifyFrom;
  const explicit = typeof custom.from === 'string' ? custom.from : typeof input.options?.from === 'string' ? input.options.from : typeof verifyFrom === 'string' ? verifyFrom : undefined;
  if (explicit) return { from: explicit.replace(/^\+(?=\d+$)/, ''), pooled: false };
  const longCodes = settings.numbers.filter((n) => n.type !== 'shortCode');
  const stitched = await senders.get(input.apiSpaceId, to, now - STITCH_MS);
  if (stitched && longCodes.some((n) => n.number === stitched)) return { from: stitched, pooled: true };
  const country = alpha3(countryOf(to));
  const match = country ? longCodes.find((n) => n.countryIsoCode?.toUpperCase() === country) : undefined;
  if (match) return { from: match.number, pooled: true };
  if (settings.defaultFrom) return { from: settings.defaultFrom, pooled: false };
  return undefined;
}

const STAT: Record<string, { status?: ReceiptReport['status']; errorCode?: string }> = {
  DELIVRD: { status: 'delivered' },
  EXPIRED: { status: 'expired', errorCode: 'Expired' },
  DELETED: { status: 'failed', errorCode: 'Deleted' },
  UNDELIV: { status: 'failed', errorCode: 'Undeliverable' },
  ACCEPTD: {},
  UNKNOWN: { status: 'failed', errorCode: 'Unknown' },
  REJECTD: { status: 'failed', errorCode: 'Rejected' },
  ENROUTE: {},
  SCHEDULED: {},
};
const STATE_NAMES = ['SCHEDULED', 'ENROUTE', 'DELIVRD', 'EXPIRED', 'DELETED', 'UNDELIV', 'ACCEPTD', 'UNKNOWN', 'REJECTD', 'SCHEDULED'];

export interface ParsedReceipt {
  id?: string;
  stat?: string;
  err?: string;
  fields: Record<string, string>;
}

/** Parses `id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`. */
export function parseReceiptText(text: string): ParsedReceipt {
  const fields: Record<string, string> = {};
  const re = /(id|sub|dlvrd|submit date|done date|stat|err|text):/gi;
  const marks: Array<{ key: string; start: number; end: number }> = [];
  for (let m = re.exec(text); m; m = re.exec(text)) marks.push({ key: m[1]!.toLowerCase(), start: m.index, end: m.index + m[0].length });
  for (let i = 0; i < marks.length; i++) {
    const value = text.slice(marks[i]!.end, i + 1 < marks.length ? marks[i + 1]!.start : undefined);
    fields[marks[i]!.key] = marks[i]!.key === 'text' ? value : value.trim();
  }
  return { id: fields.id, stat: fields.stat?.toUpperCase(), err: fields.err, fields };
}

/** Maps a receipt `stat` (or an SMPP `message_state` number) to a Switchboard status. */
export function receiptStatus(stat: string | number | undefined): { state: string; status?: ReceiptReport['status']; errorCode?: string } {
  const name = typeof stat === 'number' ? STATE_NAMES[stat] ?? 'UNKNOWN' : (stat ?? 'UNKNOWN').toUpperCase();
  const m = STAT[name] ?? STAT.UNKNOWN!;
  return { state: name, ...m };
}

/** Combines part states: delivered when all are, failed/expired as soon as one is (sms.md §6.2). */
export function aggregate(states: string[]): ReceiptReport['status'] | undefined {
  for (const s of states) {
    const m = STAT[s];
    if (m?.status === 'failed' || m?.status === 'expired') return m.status;
  }
  return states.every((s) => s === 'DELIVRD') ? 'delivered' : undefined;
}

export function numberList(raw: unknown): PoolNumber[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((n): n is Record<string, unknown> => !!n && typeof n === 'object' && typeof (n as Record<string, unknown>).number === 'string')
    .map((n) => ({
      number: String(n.number).replace(/^\+/, ''),
      countryIsoCode: typeof n.countryIsoCode === 'string' ? n.countryIsoCode.toUpperCase() : undefined,
      type: n.type === 'shortCode' ? 'shortCode' : 'longCode',
      keywords: Array.isArray(n.keywords) ? n.keywords.map(String) : [],
    }));
}
