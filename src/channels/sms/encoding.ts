/**
 * SMS text encoding and segmentation (sms.md §3–§4): GSM 03.38 default alphabet with its extension
 * table, automatic UCS-2, the Unicode conversion options, and TS 23.040 concatenation limits.
 * Pure functions: no I/O, no clock.
 */

export type SmsEncoding = 'GSM7' | 'UCS2';

/** GSM 03.38 basic table in code order; index 0x1B is the escape to the extension table. */
export const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

/** Extension table: character → code sent after the 0x1B escape (each costs 2 septets). */
export const GSM_EXTENSION: ReadonlyMap<string, number> = new Map([
  ['\f', 0x0a], ['^', 0x14], ['{', 0x28], ['}', 0x29], ['\\', 0x2f],
  ['[', 0x3c], ['~', 0x3d], [']', 0x3e], ['|', 0x40], ['€', 0x65],
]);

/** Septet cost per BMP code unit: 1 basic, 2 extension, 0 not in GSM-7. */
const COST = new Uint8Array(0x10000);
/** Septet value for basic characters (extension characters use EXT_CODE). */
const BASIC_CODE = new Uint8Array(0x10000);
const EXT_CODE = new Uint8Array(0x10000);
for (let i = 0; i < GSM_BASIC.length; i++) {
  if (i === 0x1b) continue;
  const c = GSM_BASIC.charCodeAt(i);
  COST[c] = 1;
  BASIC_CODE[c] = i;
}
for (const [ch, code] of GSM_EXTENSION) {
  COST[ch.charCodeAt(0)] = 2;
  EXT_CODE[ch.charCodeAt(0)] = code;
}
const GSM_DECODE_EXT = new Map([...GSM_EXTENSION].map(([ch, code]) => [code, ch]));

/** Built-in Unicode → GSM look-alike conversion (sms.md §3.5). */
const CONVERSION = new Map<string, string>();
function add(chars: string, to: string): void {
  for (const ch of chars) CONVERSION.set(ch, to);
}
add('\u2018\u2019\u201a\u201b\u2032\u00b4\u0060', "'");
add('\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb', '"');
add('\u2010\u2011\u2012\u2013\u2014\u2015\u2212', '-');
add('\u2026', '...');
add('\u2022\u00b7', '*');
add('\u2039', '<');
add('\u203a', '>');
add('\u02c6', '^');
add('\u02dc', '~');
add('\u00a6', '|');
add('©', '(c)');
add('®', '(R)');
add('™', 'TM');
add('\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000', ' ');
add('\u200b\u200c\u200d\u2060\ufeff', '');
add('áâãāăą', 'a');
add('ÁÀÂÃĀĂĄ', 'A');
add('ç', 'Ç');
add('ćĉċč', 'c');
add('ĆĈĊČ', 'C');
add('ďđð', 'd');
add('ĎĐÐ', 'D');
add('êëēĕėęě', 'e');
add('ÈÊËĒĔĖĘĚ', 'E');
add('ĝğġģ', 'g');
add('ĜĞĠĢ', 'G');
add('íîïĩīĭįı', 'i');
add('ÍÌÎÏĨĪĬĮİ', 'I');
add('ł', 'l');
add('Ł', 'L');
add('ńņň', 'n');
add('ŃŅŇ', 'N');
add('óôõōŏő', 'o');
add('ÓÒÔÕŌŎŐ', 'O');
add('œ', 'oe');
add('Œ', 'OE');
add('ŕř', 'r');
add('ŔŘ', 'R');
add('śŝşšș', 's');
add('ŚŜŞŠȘ', 'S');
add('ţťț', 't');
add('ŢŤȚ', 'T');
add('þ', 'th');
add('Þ', 'Th');
add('úûũūŭůűų', 'u');
add('ÚÙÛŨŪŬŮŰŲ', 'U');
add('ýÿ', 'y');
add('ÝŸ', 'Y');
add('źżž', 'z');
add('ŹŻŽ', 'Z');
const GREEK_LATIN = 'ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ';
const LATIN_FOR_GREEK = 'ABEZHIKMNOPTYX';
for (let i = 0; i < GREEK_LATIN.length; i++) CONVERSION.set(GREEK_LATIN[i]!, LATIN_FOR_GREEK[i]!);
export const GSM_CONVERSION: ReadonlyMap<string, string> = CONVERSION;

export const SMS_MAX_CHARACTERS = 2000;
export const LIMITS = {
  GSM7: { single: 160, part: 153 },
  UCS2: { single: 70, part: 67 },
} as const;

export interface UnicodeConversion {
  convertUnicodeToGsm?: boolean;
  customReplacements?: ReadonlyArray<{ from: string; to: string }>;
}

export interface SmsTextOptions {
  allowUnicode?: boolean;
  unicodeConversion?: UnicodeConversion;
}

export interface PreparedSms {
  /** The text that goes on the wire (after replacements and conversion). */
  text: string;
  encoding: SmsEncoding;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2). */
  units: number;
  segmentCount: number;
  /** The text split into parts, never inside an escape pair or a surrogate pair. */
  segments: string[];
  /** Characters replaced by `?` (sms.md §3.6 step 4). */
  charactersReplaced: number;
  /** Unicode code points of the final text. */
  characters: number;
}

/** True when every character is in the basic or extension table. */
export function isGsm(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (COST[text.charCodeAt(i)] === 0) return false;
  return true;
}

/** Septets of GSM text (extension characters count 2). Assumes `isGsm(text)`. */
export function gsmUnits(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) n += COST[text.charCodeAt(i)]!;
  return n;
}

export function countCodePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

function applyCustom(text: string, replacements: UnicodeConversion['customReplacements']): string {
  if (!replacements) return text;
  let out = text;
  for (const r of replacements) if (r.from) out = out.split(r.from).join(r.to);
  return out;
}

/** Conversion by BMP code unit (every §3.5 source is a single BMP character). */
const CONV: Array<string | undefined> = new Array(0x10000);
for (const [from, to] of CONVERSION) CONV[from.charCodeAt(0)] = to;

/**
 * One pass over the text: GSM characters are kept, convertible ones replaced by their look-alike,
 * the rest kept (`replace` false) or turned into `?` (a surrogate pair becomes one `?`).
 */
function rewrite(text: string, replace: boolean): { text: string; replaced: number } {
  let out = '';
  let start = 0;
  let replaced = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (COST[c] !== 0) continue;
    const conv = CONV[c];
    const width = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
    if (conv !== undefined) out += text.slice(start, i) + conv;
    else if (replace) {
      out += text.slice(start, i) + '?';
      replaced++;
    } else {
      i += width - 1;
      continue;
    }
    i += width - 1;
    start = i + 1;
  }
  return { text: start === 0 ? text : out + text.slice(start), replaced };
}

/** Applies the built-in look-alike table (§3.5) to every non-GSM character. */
export function convertToGsm(text: string): string {
  return rewrite(text, false).text;
}

/** Splits text into parts of at most `max` units, never splitting an escape or surrogate pair. */
function split(text: string, encoding: SmsEncoding, units: number): string[] {
  const limits = LIMITS[encoding];
  if (units <= limits.single) return [text];
  const parts: string[] = [];
  let start = 0;
  let used = 0;
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    let len = 1;
    let cost: number;
    if (encoding === 'GSM7') cost = COST[c]!;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      cost = 2;
      len = 2;
    } else cost = 1;
    if (used + cost > limits.part) {
      parts.push(text.slice(start, i));
      start = i;
      used = 0;
    }
    used += cost;
    i += len;
  }
  parts.push(text.slice(start));
  return parts;
}

function ucs2Units(text: string): number {
  return text.length;
}

/** Encoding and size of a text as it stands (no conversion): GSM-7 if possible, else UCS-2. */
export function measure(text: string): { encoding: SmsEncoding; units: number; segmentCount: number } {
  const gsm = isGsm(text);
  const encoding: SmsEncoding = gsm ? 'GSM7' : 'UCS2';
  const units = gsm ? gsmUnits(text) : ucs2Units(text);
  const limits = LIMITS[encoding];
  // Counting fast path: without pairs the greedy split is a plain division.
  if (units <= limits.single) return { encoding, units, segmentCount: 1 };
  return { encoding, units, segmentCount: split(text, encoding, units).length };
}

function finish(text: string, encoding: SmsEncoding, charactersReplaced: number): PreparedSms {
  const units = encoding === 'GSM7' ? gsmUnits(text) : ucs2Units(text);
  const segments = split(text, encoding, units);
  return { text, encoding, units, segmentCount: segments.length, segments, charactersReplaced, characters: countCodePoints(text) };
}

/** Chooses the encoding exactly as sms.md §3.6 and segments the result (§4). */
export function prepareSms(input: string, options: SmsTextOptions = {}): PreparedSms {
  const conv = options.unicodeConversion;
  const text = conv?.customReplacements ? applyCustom(input, conv.customReplacements) : input;
  if (isGsm(text)) return finish(text, 'GSM7', 0);
  if (options.allowUnicode === true) {
    if (conv?.convertUnicodeToGsm === true) {
      const copy = convertToGsm(text);
      if (isGsm(copy)) return finish(copy, 'GSM7', 0);
    }
    return finish(text, 'UCS2', 0);
  }
  const replaced = rewrite(text, true);
  return finish(replaced.text, 'GSM7', replaced.replaced);
}

/** GSM-7 text as unpacked septets (one octet each, escapes included), as SMPP carries it. */
export function encodeGsm(text: string): Buffer {
  const out = Buffer.allocUnsafe(gsmUnits(text));
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (COST[c] === 2) {
      out[o++] = 0x1b;
      out[o++] = EXT_CODE[c]!;
    } else out[o++] = BASIC_CODE[c]!;
  }
  return out;
}

/** Decodes unpacked GSM-7 septets; unknown escapes become a space. */
export function decodeGsm(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]! & 0x7f;
    if (b === 0x1b && i + 1 < bytes.length) out += GSM_DECODE_EXT.get(bytes[++i]! & 0x7f) ?? ' ';
    else if (b === 0x1b) out += ' ';
    else out += GSM_BASIC[b];
  }
  return out;
}

/** UTF-16 big-endian (UCS-2 on the wire; surrogate pairs pass through as two units). */
export function encodeUcs2(text: string): Buffer {
  return Buffer.from(text, 'utf16le').swap16();
}

export function decodeUcs2(bytes: Uint8Array): string {
  const even = bytes.length & ~1;
  return Buffer.from(bytes.subarray(0, even)).swap16().toString('utf16le');
}

/** Concatenation UDH with an 8-bit reference (TS 23.040 IEI 00): `05 00 03 ref total seq`. */
export function concatUdh(ref: number, total: number, seq: number): Buffer {
  return Buffer.from([0x05, 0x00, 0x03, ref & 0xff, total & 0xff, seq & 0xff]);
}

/** Parses a UDH for a concatenation element (8-bit IEI 00 or 16-bit IEI 08). */
export function parseConcatUdh(udh: Uint8Array): { ref: number; total: number; seq: number } | undefined {
  let i = 1;
  const end = Math.min(udh.length, (udh[0] ?? 0) + 1);
  while (i + 1 < end) {
    const iei = udh[i]!;
    const len = udh[i + 1]!;
    const d = i + 2;
    if (iei === 0x00 && len === 3) return { ref: udh[d]!, total: udh[d + 1]!, seq: udh[d + 2]! };
    if (iei === 0x08 && len === 4) return { ref: (udh[d]! << 8) | udh[d + 1]!, total: udh[d + 2]!, seq: udh[d + 3]! };
    i = d + len;
  }
  return undefined;
}
