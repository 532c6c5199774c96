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
