/**
 * Offline phone number analysis (phone-validation.md §2.3) with libphonenumber's full metadata:
 * `BadNumber` for impossible or invalid numbers, `CountryMismatch` when the number belongs to
 * another country than the one asked about, `NotProvisioned` for fixed lines (they cannot receive
 * SMS), otherwise the configured offline status.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

export type PnvStatus = 'On' | 'Off' | 'Dead' | 'NotProvisioned' | 'BadNumber' | 'CountryMismatch';

export interface Lookup {
  phoneNumber: string;
  status: PnvStatus;
  countryIdd: string;
  /** Extension fields: the number's country (alpha-2) and libphonenumber type. */
  countryCode?: string;
  numberType?: string;
}

export function lookupOffline(raw: string, country: string | undefined, offlineStatus: PnvStatus, international = false): Lookup {
  const cleaned = raw.trim().replace(/[\s().\-/]/g, '');
  const digits = cleaned.replace(/^(\+|00)/, '');
  const asIntl = international || cleaned.startsWith('+') || cleaned.startsWith('00') || !country;
  const wellFormed = /^\+?\d{2,17}$/.test(cleaned.replace(/^00/, '+'));
  let parsed = wellFormed ? (asIntl ? parsePhoneNumberFromString(`+${digits}`) : parsePhoneNumberFromString(cleaned, country as CountryCode)) : undefined;
  // A national parse that fails may be an international number written without `+`.
  if (wellFormed && !asIntl && !parsed?.isValid()) {
    const intl = parsePhoneNumberFromString(`+${digits}`);
    if (intl?.isValid()) parsed = intl;
  }
  if (!parsed) return { phoneNumber: /^\+?\d+$/.test(cleaned) ? digits : raw, status: 'BadNumber', countryIdd: '' };
  const phoneNumber = parsed.number.replace(/^\+/, '');
  const base = { phoneNumber, countryIdd: String(parsed.countryCallingCode), ...(parsed.country ? { countryCode: parsed.country } : {}) };
  if (!parsed.isPossible() || !parsed.isValid()) return { ...base, status: 'BadNumber' };
  const numberType = parsed.getType();
  const typed = { ...base, ...(numberType ? { numberType } : {}) };
  if (country && parsed.country !== country) return { ...typed, status: 'CountryMismatch' };
  if (numberType === 'FIXED_LINE') return { ...typed, status: 'NotProvisioned' };
  return { ...typed, status: offlineStatus };
}

/** The CSV spelling of a status (`Bad Number`, `Not Provisioned`, `Country Mismatch`). */
export function csvStatus(status: PnvStatus): string {
  return status.replace(/([a-z])([A-Z])/g, '$1 $2');
}
