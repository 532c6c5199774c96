import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { ChannelProvider, InboundReport, ReceiptReport } from '../../src/channels/adapter.js';
import { eachDatabase, useServer } from '../helpers/harness.js';

/** A provider in the style of Meta's webhooks: hub.challenge handshake, X-Hub-Signature-256. */
const testProvider: ChannelProvider = {
  channel: 'whatsApp',
  provider: 'test-hmac',
  secretSettings: ['appSecret'],
  validateSettings: (s) => (typeof s.appSecret === 'string' ? [] : [{ paramName: 'appSecret', message: 'Required' }]),
  create: (ctx) => ({
    async send() {
      return { kind: 'accepted' };
    },
    async handleCallback(req) {
      if (req.method === 'GET') return { body: String(req.query['hub.challenge'] ?? ''), contentType: 'text/plain' };
      const expected = 'sha256=' + createHmac('sha256', String(ctx.settings.appSecret)).update(req.rawBody).digest('hex');
      if (req.headers['x-hub-signature-256'] !== expected) return { status: 401 };
      const doc = JSON.parse(req.rawBody.toString('utf8'));
      return {
        receipts: (doc.statuses ?? []).map((x: { id: string; status: ReceiptReport['status'] }) => ({ providerMessageId: x.id, status: x.status })),
        inbounds: (doc.messages ?? []).map((x: { from: string; text: string }) => ({ channelId: 'whatsApp', from: { phoneNumber: x.from }, body: x.text })),
      };
    },
  }),
};

async function until<T>(fn: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

eachDatabase('provider callbacks and tracked links', (dialect) => {
  const s = useServer(dialect);
  const receipts: Array<[string, string, ReceiptReport]> = [];
  const inbounds: Array<[string, InboundReport]> = [];

  it('answers handshakes, rejects bad signatures with 401 and queues receipts and inbounds for the sink', async () => {
    const channels = s().container.services.channels;
    channels.registerProvider(testProvider);
    channels.setSink({ receipt: async (a, c, r) => void receipts.push([a, c, r]), inbound: async (a, r) => void inbounds.push([a, r]), readUpTo: async () => {} });
    const space = await s().createSpace();
    const put = await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/whatsApp`, payload: { provider: 'test-hmac', settings: { appSecret: 'app-secret' } } });
    assert.equal(put.statusCode, 201, put.body);
    const url = `/apispaces/${space}/channels/whatsApp/callback`;

    const hs = await s().request({ method: 'GET', url: `${url}?hub.mode=subscribe&hub.challenge=12345`, token: null });
    assert.equal(hs.statusCode, 200);
    assert.equal(hs.body, '12345');

    const payload = JSON.stringify({ statuses: [{ id: 'wamid.1', status: 'delivered' }], messages: [{ from: '447700900001', text: 'hi' }] });
    const bad = await s().request({ method: 'POST', url, token: null, headers: { 'content-type': 'application/json', 'x-hub-signature-256': 'sha256=00' }, payload });
    assert.equal(bad.statusCode, 401);
    assert.equal(bad.json().code, 'Unauthorized');

    // Signed over the exact bytes: extra whitespace in the JSON must not matter to the framework.
    const raw = payload.replace('{', '{ ');
    const sig = 'sha256=' + createHmac('sha256', 'app-secret').update(raw).digest('hex');
    const ok = await s().request({ method: 'POST', url, token: null, headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, payload: raw });
    assert.equal(ok.statusCode, 200, ok.body);
    await until(() => (receipts.length && inbounds.length ? true : undefined));
    assert.deepEqual(receipts[0], [space, 'whatsApp', { providerMessageId: 'wamid.1', status: 'delivered' }]);
    assert.equal(inbounds[0]![1].body, 'hi');
    assert.equal(inbounds[0]![1].channelId, 'whatsApp');

    // An adapter that cannot read a (correctly signed) body answers 400, not 500.
    const junk = 'not json';
    const junkSig = 'sha256=' + createHmac('sha256', 'app-secret').update(junk).digest('hex');
    const unreadable = await s().request({ method: 'POST', url, token: null, headers: { 'content-type': 'application/json', 'x-hub-signature-256': junkSig }, payload: junk });
    assert.equal(unreadable.statusCode, 400);
    assert.equal(unreadable.json().code, 'ValidationFailed');

    // Other content types reach the adapter as bytes too.
    const form = await s().request({ method: 'POST', url, token: null, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-hub-signature-256': 'sha256=00' }, payload: 'a=b' });
    assert.equal(form.statusCode, 401);
    assert.equal((await s().request({ method: 'POST', url: `/apispaces/${space}/channels/nope/callback`, token: null, payload: '{}' })).statusCode, 404);
    const unknownSpace = await s().request({ method: 'POST', url: `/apispaces/00000000-0000-4000-8000-000000000000/channels/whatsApp/callback`, token: null, payload: '{}' });
    assert.equal(unknownSpace.statusCode, 404);
  });

  it('redirects tracked links with 302 and appends interaction.click', async () => {
    const space = await s().createSpace();
    const channels = s().container.services.channels;
    const tracked = await channels.trackLink(space, 'msg-1', 'email', 'https://shop.example.com/p?id=1&x=%20', { orderId: 'SO-1' });
    const m = /^http:\/\/localhost:8080\/t\/([A-Za-z0-9_-]{22})$/.exec(tracked);
    assert.ok(m, tracked);
    const res = await s().request({ method: 'GET', url: `/t/${m[1]}`, token: null, headers: { 'user-agent': 'Mail/1.0' } });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, 'https://shop.example.com/p?id=1&x=%20');
    const post = await s().request({ method: 'POST', url: `/t/${m[1]}`, token: null, headers: { 'content-type': 'text/plain' }, payload: 'x' });
    assert.equal(post.statusCode, 302);
    const events = (await s().container.platform.events.readAfter(0, 1000)).filter((e) => e.name === 'interaction.click' && e.apiSpaceId === space);
    assert.equal(events.length, 2);
    const p = events[0]!.payload as Record<string, unknown>;
    assert.deepEqual({ ...p, clickedOn: undefined }, { id: 'msg-1', channel: 'email', url: 'https://shop.example.com/p?id=1&x=%20', clickedOn: undefined, userAgent: 'Mail/1.0', metadata: { orderId: 'SO-1' } });
    assert.equal((await s().request({ method: 'GET', url: '/t/AAAAAAAAAAAAAAAAAAAAAA', token: null })).statusCode, 404);
    assert.equal(await channels.trackLink(space, 'msg-1', 'email', 'mailto:x@example.com'), 'mailto:x@example.com');

    // A push deep link marks the message read.
    const push = await channels.trackLink(space, 'msg-2', 'nativePush', 'https://app.example.com/deep');
    await s().request({ method: 'GET', url: new URL(push).pathname, token: null });
    const read = await until(() => receipts.find(([a, , r]) => a === space && r.messageId === 'msg-2'));
    assert.equal(read[2].status, 'read');
  });
});
