import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  GSM_BASIC, GSM_CONVERSION, GSM_EXTENSION, concatUdh, convertToGsm, decodeGsm, decodeUcs2, encodeGsm, encodeUcs2, isGsm,
  measure, parseConcatUdh, prepareSms,
} from './encoding.js';

const basicList = [...GSM_BASIC].filter((_, i) => i !== 0x1b);

describe('GSM 03.38 tables', () => {
  it('has 127 basic characters, each costing one septet with its table code', () => {
    assert.equal(basicList.length, 127);
    for (let code = 0; code < 128; code++) {
      if (code === 0x1b) continue;
      const ch = GSM_BASIC[code]!;
      const p = prepareSms(ch);
      assert.equal(p.encoding, 'GSM7', `U+${ch.charCodeAt(0).toString(16)}`);
      assert.equal(p.units, 1);
      assert.deepEqual([...encodeGsm(ch)], [code]);
      assert.equal(decodeGsm(Uint8Array.of(code)), ch);
    }
  });

  it('matches the spec table at selected code points', () => {
    const expect: Array<[number, number]> = [
      [0x00, 0x40], [0x01, 0xa3], [0x02, 0x24], [0x03, 0xa5], [0x09, 0xc7], [0x0a, 0x0a], [0x0d, 0x0d], [0x10, 0x394],
      [0x11, 0x5f], [0x1f, 0xc9], [0x20, 0x20], [0x24, 0xa4], [0x40, 0xa1], [0x5b, 0xc4], [0x5f, 0xa7], [0x60, 0xbf],
      [0x7b, 0xe4], [0x7f, 0xe0],
    ];
    for (const [code, cp] of expect) assert.equal(GSM_BASIC.charCodeAt(code), cp, `code ${code.toString(16)}`);
  });

  it('costs two septets for each of the ten extension characters', () => {
    assert.equal(GSM_EXTENSION.size, 10);
    const spec: Array<[string, number]> = [['\f', 0x0a], ['^', 0x14], ['{', 0x28], ['}', 0x29], ['\\', 0x2f], ['[', 0x3c], ['~', 0x3d], [']', 0x3e], ['|', 0x40], ['€', 0x65]];
    for (const [ch, code] of spec) {
      const p = prepareSms(ch);
      assert.equal(p.encoding, 'GSM7');
      assert.equal(p.units, 2, ch);
      assert.deepEqual([...encodeGsm(ch)], [0x1b, code]);
      assert.equal(decodeGsm(Uint8Array.of(0x1b, code)), ch);
    }
  });

  it('knows the traps that are not basic characters', () => {
    for (const ch of ['`', 'ç', 'á', 'í', 'ó', 'ú', 'ê']) assert.equal(isGsm(ch), false, ch);
    assert.equal(isGsm('€'), true);
    assert.equal(measure('€').units, 2);
    assert.equal(measure('[').units, 2);
    assert.deepEqual([...encodeGsm('$¤')], [0x02, 0x24]);
  });

  it('every non-GSM BMP character forces UCS-2 when Unicode is allowed', () => {
    const gsm = new Set([...basicList, ...GSM_EXTENSION.keys()]);
    let checked = 0;
    for (let cp = 0; cp < 0x800; cp++) {
      const ch = String.fromCharCode(cp);
      assert.equal(isGsm(ch), gsm.has(ch), `U+${cp.toString(16)}`);
      checked++;
    }
    assert.equal(checked, 0x800);
  });
});

describe('conversion (sms.md §3.5, §3.6)', () => {
  it('converts every table entry to GSM', () => {
    for (const [from, to] of GSM_CONVERSION) {
      assert.equal(convertToGsm(from), to, `U+${from.charCodeAt(0).toString(16)}`);
      assert.ok(isGsm(to), to);
    }
    assert.equal(convertToGsm('Zoë’s café'), "Zoe's café");
    assert.equal(convertToGsm('a\u200bb'), 'ab');
    assert.equal(convertToGsm('“x” – ©…'), '"x" - (c)...');
  });

  it('replaces unconvertible characters with ? by default and counts them', () => {
    const p = prepareSms('Hi 😀');
    assert.equal(p.text, 'Hi ?');
    assert.equal(p.encoding, 'GSM7');
    assert.equal(p.units, 4);
    assert.equal(p.charactersReplaced, 1);
  });

  it('keeps UCS-2 with allowUnicode and converts only when the copy is all GSM', () => {
    const u = prepareSms('Hi 😀', { allowUnicode: true });
    assert.deepEqual([u.encoding, u.units, u.segmentCount], ['UCS2', 5, 1]);
    const c = prepareSms('Zoë’s', { allowUnicode: true, unicodeConversion: { convertUnicodeToGsm: true } });
    assert.deepEqual([c.text, c.encoding], ["Zoe's", 'GSM7']);
    const mixed = prepareSms('Zoë’s Ж', { allowUnicode: true, unicodeConversion: { convertUnicodeToGsm: true } });
    assert.deepEqual([mixed.text, mixed.encoding], ['Zoë’s Ж', 'UCS2']);
    const plain = prepareSms('Zoë’s', { allowUnicode: true });
    assert.equal(plain.encoding, 'UCS2');
  });

  it('applies custom replacements first, in order', () => {
    const p = prepareSms('Coffee ☕ ☕', { unicodeConversion: { customReplacements: [{ from: '☕', to: '(coffee)' }, { from: '(coffee)', to: 'C' }] } });
    assert.equal(p.text, 'Coffee C C');
    assert.equal(p.charactersReplaced, 0);
  });

  it('runs the spec example: Zoë’s café without allowUnicode', () => {
    const p = prepareSms('Zoë’s café');
    assert.deepEqual([p.text, p.encoding, p.units, p.segmentCount], ["Zoe's café", 'GSM7', 10, 1]);
  });
});

describe('segmentation (sms.md §4)', () => {
  const cases: Array<[string, string, number, number[]]> = [
    ['Hello', 'GSM7', 5, [5]],
    ['a'.repeat(153), 'GSM7', 153, [153]],
    ['a'.repeat(154), 'GSM7', 154, [154]],
    ['a'.repeat(160), 'GSM7', 160, [160]],
    ['a'.repeat(161), 'GSM7', 161, [153, 8]],
    ['a'.repeat(306), 'GSM7', 306, [153, 153]],
    ['a'.repeat(307), 'GSM7', 307, [153, 153, 1]],
    ['Total: 10€', 'GSM7', 11, [11]],
    ['Ж'.repeat(70), 'UCS2', 70, [70]],
    ['Ж'.repeat(71), 'UCS2', 71, [67, 4]],
    ['Ж'.repeat(134), 'UCS2', 134, [67, 67]],
    ['Ж'.repeat(135), 'UCS2', 135, [67, 67, 1]],
  ];
  for (const [text, enc, units, parts] of cases) {
    it(`${text.length > 12 ? `${text.length} × ${text[0]}` : text} → ${parts.length} part(s)`, () => {
      const p = prepareSms(text, { allowUnicode: true });
      assert.equal(p.encoding, enc);
      assert.equal(p.units, units);
      assert.equal(p.segmentCount, parts.length);
      assert.deepEqual(p.segments.map((s) => (enc === 'GSM7' ? encodeGsm(s).length : s.length)), parts);
      assert.equal(p.segments.join(''), text);
      assert.equal(measure(text).segmentCount, parts.length);
    });
  }

  it('moves an escape pair that would straddle the border to the next part', () => {
    const text = 'a'.repeat(152) + '€' + 'a'.repeat(10);
    const p = prepareSms(text);
    assert.equal(p.units, 164);
    assert.deepEqual(p.segments.map((s) => encodeGsm(s).length), [152, 12]);
    assert.equal(p.segments[1]![0], '€');
  });

  it('fills an escape pair exactly to 153', () => {
    const p = prepareSms('a'.repeat(151) + '€' + 'a'.repeat(10));
    assert.deepEqual(p.segments.map((s) => encodeGsm(s).length), [153, 10]);
  });

  it('never splits a surrogate pair at a UCS-2 border', () => {
    const text = 'Ж'.repeat(66) + '😀' + 'Ж'.repeat(10);
    const p = prepareSms(text, { allowUnicode: true });
    assert.equal(p.units, 78);
    assert.deepEqual(p.segments.map((s) => s.length), [66, 12]);
    assert.equal(p.segments[1]!.codePointAt(0), 0x1f600);
    const exact = prepareSms('Ж'.repeat(65) + '😀' + 'Ж'.repeat(10), { allowUnicode: true });
    assert.deepEqual(exact.segments.map((s) => s.length), [67, 10]);
    const emojis = prepareSms('😀'.repeat(36), { allowUnicode: true });
    assert.deepEqual(emojis.segments.map((s) => s.length), [66, 6]);
    for (const s of emojis.segments) assert.equal(decodeUcs2(encodeUcs2(s)), s);
  });

  it('counts the 2000-character worst cases from the spec', () => {
    assert.equal(prepareSms('a'.repeat(2000)).segmentCount, 14);
    assert.equal(prepareSms('€'.repeat(2000)).segmentCount, 27);
    assert.equal(prepareSms('Ж'.repeat(2000), { allowUnicode: true }).segmentCount, 30);
    const pairs = prepareSms('😀'.repeat(2000), { allowUnicode: true });
    // sms.md §4 says "at most 60" (4000 units / 67); with pairs never split a part holds 33 emoji.
    assert.equal(pairs.segmentCount, 61);
    assert.equal(pairs.characters, 2000);
  });
});

describe('wire helpers', () => {
  it('builds and parses concatenation UDHs', () => {
    const udh = concatUdh(0x2a, 3, 2);
    assert.deepEqual([...udh], [0x05, 0x00, 0x03, 0x2a, 0x03, 0x02]);
    assert.deepEqual(parseConcatUdh(udh), { ref: 0x2a, total: 3, seq: 2 });
    assert.deepEqual(parseConcatUdh(Uint8Array.of(0x06, 0x08, 0x04, 0x01, 0x02, 0x02, 0x01)), { ref: 0x102, total: 2, seq: 1 });
  });

  it('round-trips GSM and UCS-2 payloads', () => {
    const s = 'Ünïcode {x} € ~';
    assert.equal(decodeGsm(encodeGsm(convertToGsm(s))), convertToGsm(s));
    assert.deepEqual([...encodeUcs2('Ж😀')], [0x04, 0x16, 0xd8, 0x3d, 0xde, 0x00]);
  });
});
