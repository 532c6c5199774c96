import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SendInput } from '../adapter.js';
import {
  aggregate, memorySenderStore, parseReceiptText, receiptStatus, selectSender, senderProblem, smsText, smsTextWithLinks, sourceAddress, STITCH_MS,
} from './sms-common.js';

const base: SendInput = { apiSpaceId: 's', messageId: 'm1', channelId: 'sms', to: { phoneNumber: '447400123456' }, body: 'Hi' };

describe('SMS rules', () => {
  it('validates sender ids (sms.md §2)', () => {
    for (const ok of ['BRIGHT', 'Acme Ltd', 'a_b.c-d', '447700900100', '+447700900100', '123']) assert.equal(senderProblem(ok), undefined, ok);
    for (const bad of ['AB', '12', 'TwelveChars1', '1234567890123456', 'Bad!', '12345-']) assert.ok(senderProblem(bad), bad);
  });

  it('chooses TON/NPI by sender form', () => {
    assert.deepEqual(sourceAddress('BRIGHT', []), { addr: 'BRIGHT', ton: 5, npi: 0 });
    assert.deepEqual(sourceAddress('+447700900100', []), { addr: '447700900100', ton: 1, npi: 1 });
    assert.deepEqual(sourceAddress('88000', []), { addr: '88000', ton: 3, npi: 0 });
    assert.deepEqual(sourceAddress('123456789', [{ number: '123456789', type: 'shortCode' }]), { addr: '123456789', ton: 3, npi: 0 });
  });

  it('selects explicit, stitched, country pool, then default senders', async () => {
    const senders = memorySenderStore();
    const settings = { numbers: [{ number: '447700900100', countryIsoCode: 'GBR' }, { number: '447700900200', countryIsoCode: 'GBR' }, { number: '33600000000', countryIsoCode: 'FRA' }], defaultFrom: 'ACME' };
    const now = 1_000_000_000_000;
    assert.deepEqual(await selectSender({ ...base, options: { from: '+447000000001' } }, '447400123456', settings, senders, now), { from: '447000000001', pooled: false });
    assert.deepEqual(await selectSender(base, '447400123456', settings, senders, now), { from: '447700900100', pooled: true });
    assert.deepEqual(await selectSender(base, '33612345678', settings, senders, now), { from: '33600000000', pooled: true });
    assert.deepEqual(await selectSender(base, '12025550123', settings, senders, now), { from: 'ACME', pooled: false });
    await senders.put('s', '447400123456', '447700900200', now);
    assert.equal((await selectSender(base, '447400123456', settings, senders, now + STITCH_MS - 1))?.from, '447700900200', 'stitched within 60 days');
    assert.equal((await selectSender(base, '447400123456', settings, senders, now + STITCH_MS + 1))?.from, '447700900100', 'stitch expired');
    assert.equal(await selectSender(base, '12025550123', { numbers: [] }, senders, now), undefined);
    assert.equal((await selectSender({ ...base, metadata: { verifyFrom: 'AB' } }, '447400123456', settings, senders, now))?.from, 'AB');
  });

  it('builds the text from body, custom body and media parts', async () => {
    assert.equal(smsText({ ...base, body: 'See', messageParts: [{ type: 'image/png', url: 'https://x/a.png' }] }), 'See\nhttps://x/a.png');
    assert.equal(smsText({ ...base, body: undefined, messageParts: [{ type: 'text/plain', data: 'part text' }] }), 'part text');
    assert.equal(smsText({ ...base, customBody: { body: 'custom' } }), 'custom');
    const tracked = await smsTextWithLinks({ ...base, body: 'Go to https://shop.example/o/1. Now', options: { trackLinks: true } }, async (url, id) => `https://sb/t/${id}${url.length}`);
    assert.equal(tracked, 'Go to https://sb/t/m124. Now');
    // The message's metadata travels with the link, for its interaction.click event.
    let seen: unknown;
    await smsTextWithLinks({ ...base, body: 'https://shop.example/x', metadata: { order: 7 }, options: { trackLinks: true } }, async (url, _id, metadata) => ((seen = metadata), url));
    assert.deepEqual(seen, { order: 7 });
  });

  it('parses receipts and maps every stat', () => {
    const r = parseReceiptText('id:0123abc sub:001 dlvrd:001 submit date:2405010930 done date:2405010931 stat:DELIVRD err:000 text:Hello world');
    assert.deepEqual([r.id, r.stat, r.err, r.fields.text], ['0123abc', 'DELIVRD', '000', 'Hello world']);
    const expect: Array<[string | number, string | undefined, string | undefined]> = [
      ['DELIVRD', 'delivered', undefined], ['EXPIRED', 'expired', 'Expired'], ['DELETED', 'failed', 'Deleted'], ['UNDELIV', 'failed', 'Undeliverable'],
      ['ACCEPTD', undefined, undefined], ['UNKNOWN', 'failed', 'Unknown'], ['REJECTD', 'failed', 'Rejected'], ['ENROUTE', undefined, undefined],
      [2, 'delivered', undefined], [3, 'expired', 'Expired'], [5, 'failed', 'Undeliverable'], [8, 'failed', 'Rejected'], [1, undefined, undefined],
    ];
    for (const [stat, status, code] of expect) {
      const m = receiptStatus(stat);
      assert.deepEqual([m.status, m.errorCode], [status, code], String(stat));
    }
    assert.equal(aggregate(['DELIVRD', 'pending']), undefined);
    assert.equal(aggregate(['DELIVRD', 'DELIVRD']), 'delivered');
    assert.equal(aggregate(['pending', 'UNDELIV']), 'failed');
    assert.equal(aggregate(['EXPIRED', 'DELIVRD']), 'expired');
  });
});
