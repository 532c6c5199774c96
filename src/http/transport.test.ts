import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonBody } from './transport.js';

it('JSON bodies: empty or blank → undefined, a byte order mark ignored, invalid UTF-8 or JSON refused', () => {
  assert.equal(parseJsonBody(Buffer.alloc(0)), undefined);
  assert.equal(parseJsonBody(Buffer.from(' \n\t ')), undefined);
  assert.deepEqual(parseJsonBody(Buffer.from('{"a":"é\u{1F600}"}')), { a: 'é\u{1F600}' });
  assert.deepEqual(parseJsonBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[1]')])), [1]);
  assert.equal(parseJsonBody(Buffer.from([0xef, 0xbb, 0xbf])), undefined);
  // Not UTF-8: a lone continuation byte, an overlong form, an encoded surrogate, a truncated sequence.
  for (const bad of [[0x22, 0x80, 0x22], [0x22, 0xc0, 0xaf, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xe2, 0x82]]) {
    assert.throws(() => parseJsonBody(Buffer.from(bad)), (err: { code?: string; message?: string }) => err.code === 'InvalidJson' && /UTF-8/.test(err.message ?? ''));
  }
  assert.throws(() => parseJsonBody(Buffer.from('{"a":')), (err: { code?: string }) => err.code === 'InvalidJson');
});
