/**
 * Verify (verify.md): six-digit codes from a CSPRNG, stored only as a salted HMAC, sent as an SMS
 * through the One API, validated with at most five wrong attempts before the request locks.
 */
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import { AppError } from '../../http/errors.js';
import { iso, parseDateTime } from '../../lib/clock.js';
import { alpha2 } from '../../channels/sms/countries.js';
import { SMS_MAX_CHARACTERS, countCodePoints } from '../../channels/sms/encoding.js';
import { senderProblem as smsSenderProblem } from '../../channels/sms/sms-common.js';
import { verifyErrors, VerifyError, type VerifyProblem } from './verify.errors.js';

export interface VerifyRow {
  api_space_id: string;
  id: string;
  phone_number: string;
  code_hash: string;
  code_salt: string;
  attempts: number;
  state: string;
  number_status: string;
  message_id: string | null;
  created_at: number;
  valid_until: number;
  verified_at: number | null;
}

declare module '../../storage/schema.js' {
  interface Database {
    verify_requests: VerifyRow;
  }
}

export const MAX_VALIDITY_MS = 30 * 60_000;
export const DEFAULT_VALIDITY_MS = 10 * 60_000;
export const MAX_WRONG_ATTEMPTS = 5;
export const THROTTLE_WINDOW_MS = 10 * 60_000;
export const THROTTLE_MAX = 3;
export const EXPIRE_JOB = 'verify.expire';
const DEFAULT_BODY = 'Your verification code is {{code}}';

export interface VerifyCodeView {
  requestId: string;
  phoneNumber: string;
  status: 'CodeVerified' | 'CodeNotVerified' | 'CodeLocked' | 'CodeExpired';
  numberStatus: 'Valid' | 'Invalid' | 'Unknown';
  created: string;
  validUntil?: string;
  verified?: string;
}

const hash = (salt: string, code: string) => createHmac('sha256', Buffer.from(salt, 'base64')).update(code).digest('base64');
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** `from` rules of verify.md §3 (2–15 digits, or 2–11 characters of `0-9 a-z A-Z - _ .` and space). */
export function fromProblems(from: unknown): VerifyProblem[] {
  if (from === undefined || from === null) return [];
  if (typeof from !== 'string') return [{ code: 'FromContainsDisallowedCharacters', description: 'from must be a string' }];
  if (from === '') return [{ code: 'FromEmpty', description: 'from must not be empty' }];
  const digits = from.replace(/^\+/, '');
  if (/^\d+$/.test(digits)) {
    if (digits.length > 15) return [{ code: 'FromExceedsMaxNumericLength', description: 'A numeric from has at most 15 digits' }];
    if (digits.length < 2) return [{ code: 'FromUnderMinTextLength', description: 'from has at least 2 characters' }];
    return [];
  }
  if (!/^[0-9A-Za-z _.-]+$/.test(from)) return [{ code: 'FromContainsDisallowedCharacters', description: 'from may contain only 0-9, a-z, A-Z, space, "-", "_" and "."' }];
  if (from.length > 11) return [{ code: 'FromExceedsMaxTextLength', description: 'An alphanumeric from has at most 11 characters' }];
  if (from.length < 2) return [{ code: 'FromUnderMinTextLength', description: 'An alphanumeric from has at least 2 characters' }];
  return [];
}

/** Normalises `to` (international, or national with an alpha-3 country) and rates it offline. */
export function analyseNumber(to: string, country?: string): { phoneNumber: string; numberStatus: 'Valid' | 'Invalid' | 'Unknown' } {
  const cleaned = to.replace(/[\s().-]/g, '');
  const region = alpha2(country) as CountryCode | undefined;
  const intl = cleaned.startsWith('+') ? cleaned : cleaned.startsWith('00') ? `+${cleaned.slice(2)}` : undefined;
  let parsed = intl ? parsePhoneNumberFromString(intl) : region ? parsePhoneNumberFromString(cleaned, region) : parsePhoneNumberFromString(`+${cleaned}`);
  if (!parsed && region && /^\d+$/.test(cleaned)) parsed = parsePhoneNumberFromString(`+${cleaned}`);
  if (!parsed || !/^\+?\d+$/.test(cleaned)) return { phoneNumber: cleaned.replace(/\D/g, ''), numberStatus: 'Invalid' };
  const phoneNumber = parsed.number.replace(/^\+/, '');
  if (parsed.isValid()) return { phoneNumber, numberStatus: 'Valid' };
  return { phoneNumber, numberStatus: parsed.isPossible() ? 'Unknown' : 'Invalid' };
}

export function createVerifyService(ctx: ModuleContext) {
  const { db, clock, ids } = ctx;

  const view = (r: VerifyRow, status: VerifyCodeView['status'], extra: Partial<VerifyCodeView> = {}): VerifyCodeView => ({
    requestId: r.id, phoneNumber: r.phone_number, status, numberStatus: r.number_status as VerifyCodeView['numberStatus'], created: iso(Number(r.created_at)), ...extra,
  });

  async function create(apiSpaceId: string, actor: Actor, body: unknown): Promise<VerifyCodeView> {
    if (!isObj(body)) throw verifyErrors.invalidJson();
    const now = clock.now();
    const problems: VerifyProblem[] = [];
    const to = body.to;
    if (to !== undefined && typeof to !== 'string') problems.push({ code: 'ToInvalid', description: 'to must be a string' });
    else if (!to || !to.trim()) problems.push({ code: 'ToEmpty', description: 'to is required' });
    problems.push(...fromProblems(body.from));
    const country = body.countryIsoCode;
    if (country !== undefined && (typeof country !== 'string' || !/^[A-Za-z]{3}$/.test(country) || !alpha2(country))) {
      problems.push({ code: 'CountryIsoCodeInvalid', description: 'countryIsoCode must be an ISO 3166-1 alpha-3 code' });
    }
    const template = body.body === undefined || body.body === null ? DEFAULT_BODY : body.body;
    if (typeof template !== 'string') problems.push({ code: 'InvalidJson', description: 'body must be a string' });
    else if (!template.includes('{{code}}')) problems.push({ code: 'BodyMissingCodePlaceholder', description: 'body must contain {{code}}' });
    let validUntil = now + DEFAULT_VALIDITY_MS;
    if (body.validUntil !== undefined && body.validUntil !== null) {
      const at = typeof body.validUntil === 'string' ? parseDateTime(body.validUntil) : undefined;
      if (at === undefined) problems.push({ code: 'InvalidJson', description: 'validUntil must be an RFC 3339 date-time' });
      else if (at <= now) problems.push({ code: 'ValidUntilMinExceeded', description: 'validUntil must be in the future' });
      else if (at > now + MAX_VALIDITY_MS) problems.push({ code: 'ValidUntilMaxExceeded', description: 'validUntil may be at most 30 minutes in the future' });
      else validUntil = at;
    }
    let number: ReturnType<typeof analyseNumber> | undefined;
    if (typeof to === 'string' && to.trim() && !problems.some((p) => p.code === 'CountryIsoCodeInvalid')) {
      number = analyseNumber(to, typeof country === 'string' ? country : undefined);
      if (number.numberStatus === 'Invalid') problems.push({ code: 'ToInvalid', description: 'to is not a valid phone number' });
    }
    if (problems.length || !number) throw verifyErrors.invalid(problems);

    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const validMinutes = Math.ceil((validUntil - now) / 60_000);
    const text = (template as string).split('{{code}}').join(code).split('{{validMinutes}}').join(String(validMinutes));
    if (countCodePoints(text) > SMS_MAX_CHARACTERS) throw verifyErrors.invalid([{ code: 'InvalidJson', description: `body is longer than ${SMS_MAX_CHARACTERS} characters after substitution` }]);

    const salt = randomBytes(16).toString('base64');
    const row: VerifyRow = {
      api_space_id: apiSpaceId, id: ids.uuid(), phone_number: number.phoneNumber, code_hash: hash(salt, code), code_salt: salt,
      attempts: 0, state: 'open', number_status: number.numberStatus, message_id: null, created_at: now, valid_until: validUntil, verified_at: null,
    };
    // Throttle check and insert in one transaction, so concurrent requests cannot both slip under it.
    await ctx.transaction(async (uow) => {
      const recent = await uow.tx.selectFrom('verify_requests').select(['created_at'])
        .where('api_space_id', '=', apiSpaceId).where('phone_number', '=', row.phone_number).where('created_at', '>', now - THROTTLE_WINDOW_MS)
        .orderBy('created_at', 'asc').execute();
      if (recent.length >= THROTTLE_MAX) throw verifyErrors.throttled((Number(recent[recent.length - THROTTLE_MAX]!.created_at) + THROTTLE_WINDOW_MS - now) / 1000);
      await uow.tx.insertInto('verify_requests').values(row).execute();
      await ctx.queue.enqueue(uow, { kind: EXPIRE_JOB, apiSpaceId, runAt: validUntil, payload: { v: 1, requestId: row.id } });
    });

    const messages = ctx.services.messages;
    try {
      if (!messages) throw new Error('the messages module is not available');
      const sent = await messages.send(apiSpaceId, actor, {
        to: { phoneNumber: row.phone_number },
        rules: ['sms'],
        body: text,
        expiresOn: iso(validUntil),
        ...(typeof body.from === 'string' && !smsSenderProblem(body.from) ? { channelOptions: { sms: { from: body.from } } } : {}),
        // Senders Verify accepts but the One API refuses (2 characters) reach the SMS adapters this way.
        metadata: { verifyRequestId: row.id, ...(typeof body.from === 'string' && smsSenderProblem(body.from) ? { verifyFrom: body.from } : {}) },
      });
      await db.updateTable('verify_requests').set({ message_id: sent.messageId }).where('api_space_id', '=', apiSpaceId).where('id', '=', row.id).execute();
    } catch (err) {
      await db.deleteFrom('verify_requests').where('api_space_id', '=', apiSpaceId).where('id', '=', row.id).execute();
      if (err instanceof AppError && err.status === 400) {
        const onFrom = err.validationFailures?.some((f) => f.paramName.includes('from'));
        throw verifyErrors.invalid([{ code: onFrom ? 'FromReserved' : 'InvalidJson', description: err.validationFailures?.map((f) => f.message).join('; ') || err.message }]);
      }
      if (err instanceof AppError && err.status === 402) throw verifyErrors.insufficientCredit();
      ctx.log.error({ err }, 'verify: sending the code failed');
      throw verifyErrors.internal();
    }
    return view(row, 'CodeNotVerified', { validUntil: iso(validUntil) });
  }

  /** Checks a code; undefined → 204 (unknown, discarded, or another space's request). */
  async function validate(apiSpaceId: string, requestId: string, body: unknown): Promise<VerifyCodeView | undefined> {
    if (!isObj(body) || typeof body.code !== 'string') throw verifyErrors.invalidJson('code is required and must be a string');
    const submitted = body.code.replace(/\D/g, '');
    const now = clock.now();
    for (let i = 0; i < 3; i++) {
      const r = await db.selectFrom('verify_requests').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', requestId).where('state', '=', 'open').executeTakeFirst();
      if (!r) return undefined;
      const guard = (q: any) => q.where('api_space_id', '=', apiSpaceId).where('id', '=', requestId).where('state', '=', 'open').where('attempts', '=', r.attempts);
      if (now > Number(r.valid_until)) {
        const res = await guard(db.updateTable('verify_requests').set({ state: 'expired' })).executeTakeFirst();
        if (Number(res.numUpdatedRows) === 1) return view(r, 'CodeExpired');
        continue;
      }
      const expected = Buffer.from(r.code_hash, 'base64');
      const actual = Buffer.from(hash(r.code_salt, submitted), 'base64');
      const ok = submitted.length === 6 && timingSafeEqual(expected, actual);
      const next = ok ? { state: 'verified', verified_at: now } : r.attempts + 1 >= MAX_WRONG_ATTEMPTS ? { state: 'locked', attempts: r.attempts + 1 } : { attempts: r.attempts + 1 };
      const res = await guard(db.updateTable('verify_requests').set(next)).executeTakeFirst();
      // Another validate call changed the row first: read it again.
      if (Number(res.numUpdatedRows) !== 1) continue;
      if (ok) return view(r, 'CodeVerified', { verified: iso(now) });
      return view(r, next.state === 'locked' ? 'CodeLocked' : 'CodeNotVerified');
    }
    throw verifyErrors.internal();
  }

  /**
   * At `validUntil` the message body is redacted whatever happened to the hand-off. The request row
   * stays `open`, so the first validate call after expiry still answers `CodeExpired`.
   */
  async function expire(apiSpaceId: string, requestId: string): Promise<void> {
    const r = await db.selectFrom('verify_requests').select(['message_id']).where('api_space_id', '=', apiSpaceId).where('id', '=', requestId).executeTakeFirst();
    if (r?.message_id) await ctx.services.messages?.redactBody(apiSpaceId, r.message_id);
  }

  return { create, validate, expire };
}

export type VerifyService = ReturnType<typeof createVerifyService>;
export { VerifyError };
