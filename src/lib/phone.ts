import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

/**
 * The international digits (no `+`) of a phone number written in a common form: spaces, dots,
 * dashes and brackets dropped, a leading `+` or `00` removed, and a national trunk prefix written
 * after the country code (`+44 (0)7400 123456`, `+49 030 …`) dropped when libphonenumber then
 * finds a valid number. Digits alone are taken as they are (stored numbers pass here on every
 * send). Undefined unless `min`–15 digits remain.
 */
export function phoneDigits(raw: string, min = 6): string | undefined {
  let s = raw.trim();
  if (!/^\d+$/.test(s)) {
    s = s.replace(/[\s().-]/g, '');
    if (s.startsWith('+')) s = s.slice(1);
    else if (s.startsWith('00')) s = s.slice(2);
    if (!/^\d+$/.test(s)) return undefined;
    const parsed = s.length <= 17 ? parsePhoneNumberFromString(`+${s}`) : undefined;
    if (parsed?.isValid() && parsed.number.length - 1 < s.length) s = parsed.number.slice(1);
  }
  return s.length >= min && s.length <= 15 ? s : undefined;
}

/** ISO 3166-1 alpha-2 country of international digits, when libphonenumber knows it. */
export const phoneCountry = (digits: string): string | undefined => parsePhoneNumberFromString(`+${digits}`)?.country;
