import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { batchItemId, batchKey, batchKeyOf, pack, unpack, type Prepared } from './batches.js';
import { messageId } from './messages.repo.js';

describe('batch envelopes', () => {
  it('derives item ids in the UUID form from the envelope key, and the key back from an id', () => {
    const key = batchKey(messageId(Date.now(), crypto.randomUUID()));
    const ids = [0, 1, 4999].map((i) => batchItemId(key, i));
    for (const id of ids) {
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(batchKeyOf(id), key);
    }
    assert.equal(new Set(ids).size, 3);
    assert.equal(batchKeyOf('not-an-id'), undefined);
  });

  it('stores only what the request does not imply, and restores every item as prepared', () => {
    const cases: Prepared[] = [
      { id: 'a', stored: { to: { crmId: 'x' }, rules: ['sms', 'email'], body: 'hi' }, channels: ['sms', 'email'], state: { rules: ['sms', 'email'], next: 0, retries: 0 } },
      { id: 'b', stored: { to: { crmId: 'x' }, rules: ['sms', 'sms', 'email'], body: 'hi' }, channels: ['sms', 'email'], state: { rules: ['sms', 'email'], next: 0, retries: 0 } },
      { id: 'c', stored: { to: { crmId: 'x' }, ruleSet: 'rs', body: 'hi' }, channels: ['email', 'sms'], state: { rules: ['email', 'sms'], next: 0, retries: 0, fallbackOnFailure: true, fallbackAfter: 60, successStatus: 'read' }, expiresAt: 123, deliverAfter: 45 },
    ];
    const packed = cases.map(pack);
    assert.deepEqual(Object.keys(packed[0]!), ['r']);
    assert.deepEqual(Object.keys(packed[1]!), ['r']);
    assert.deepEqual(Object.keys(packed[2]!), ['r', 'c', 'f', 'e', 'd']);
    const back = (JSON.parse(JSON.stringify(packed)) as typeof packed).map((p, i) => unpack(p, cases[i]!.id));
    assert.deepEqual(back.map((p) => ({ ...p, expiresAt: p.expiresAt, deliverAfter: p.deliverAfter })), cases.map((p) => ({ ...p, expiresAt: p.expiresAt, deliverAfter: p.deliverAfter })));
  });
});
