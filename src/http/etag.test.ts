import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, etagFor } from './etag.js';

it('canonical JSON sorts keys at every level, drops undefined members and keeps array order', () => {
  const at = new Date('2026-11-27T10:00:00.000Z');
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, undefined, { z: null, y: 'x' }], c: undefined }, e: at, f: '', g: 0, h: false }),
    '{"a":{"d":[3,null,{"y":"x","z":null}]},"b":1,"e":"2026-11-27T10:00:00.000Z","f":"","g":0,"h":false}',
  );
  assert.equal(canonicalJson({ 'quote"d': 'é\n' }), '{"quote\\"d":"é\\n"}');
  assert.equal(canonicalJson([]), '[]');
  assert.equal(canonicalJson({}), '{}');
  assert.equal(canonicalJson(undefined), 'null');
  assert.equal(canonicalJson('s'), '"s"');
});

it('ETags are the revision in hex and 16 base64url characters of the SHA-256 of the canonical JSON', () => {
  const doc = { b: 2, a: 1 };
  const digest = createHash('sha256').update('{"a":1,"b":2}').digest('base64url').slice(0, 16);
  assert.equal(etagFor(27, doc), `"1b-${digest}"`);
  assert.equal(etagFor(27, { a: 1, b: 2 }), etagFor(27, doc));
});

it('canonical JSON equals the plain sort-every-object form on random documents (keys in and out of order)', () => {
  // The plain form: keys always sorted, members serialised one by one.
  const plain = (value: unknown): string => {
    if (typeof value !== 'object' || value === null) return JSON.stringify(value ?? null);
    if (Array.isArray(value)) return `[${value.map(plain).join(',')}]`;
    const toJSON = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') return plain(toJSON.call(value));
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record).sort().filter((k) => record[k] !== undefined).map((k) => `${JSON.stringify(k)}:${plain(record[k])}`).join(',')}}`;
  };
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const KEYS = ['a', 'b', 'B', 'é', '10', '9', 'z"q', 'line\n', '_x', 'status', 'statusDetails', 'ñ', '\u{1F600}', ''];
  const make = (depth: number): unknown => {
    switch (depth > 3 ? rand(5) : rand(8)) {
      case 0: return rand(1000) - 500;
      case 1: return `s${rand(100)}\u0001"\\`;
      case 2: return rand(2) === 0;
      case 3: return null;
      case 4: return undefined;
      case 5: return Array.from({ length: rand(4) }, () => make(depth + 1));
      case 6: return new Date(1_700_000_000_000 + rand(1e6));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = rand(6); i > 0; i--) o[KEYS[rand(KEYS.length)]!] = make(depth + 1);
        return o;
      }
    }
  };
  for (let i = 0; i < 2000; i++) {
    const doc = make(0);
    assert.equal(canonicalJson(doc), plain(doc));
  }
});
