import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { AdapterContext, CallbackRequest, ChannelAdapter, SendInput } from '../../src/channels/adapter.js';
import { createMessengerAdapter, messengerSendApiProvider, validateMessengerSettings } from '../../src/channels/messenger/send-api.provider.js';
import { scriptedPeer } from './helpers.js';

/**
 * The `fbMessenger` channel's `sendApi` adapter on its own, against a local peer speaking the
 * Messenger Send API (channels.md §7): request bodies, error classification and the page webhook
 * (verification, signature, deliveries, reads, inbound messages, opt-ins). No server, no database.
 */
function sendApiPeer() {
  let n = 0;
  // The default answer: 200 with a fresh message id.
  const peer = scriptedPeer((last, _req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ recipient_id: last.body?.recipient?.id ?? '4400112233', message_id: `m_${++n}` }));
  });
  return {
    ...peer,
    /** Answers the next request with a Graph API error object. */
    fail(status: number, code: number, subcode?: number, headers: Record<string, string> = {}) {
      peer.script.push((res) => res.writeHead(status, { 'content-type': 'application/json', ...headers })
        .end(JSON.stringify({ error: { message: `failure ${code}`, type: 'OAuthException', code, ...(subcode !== undefined ? { error_subcode: subcode } : {}), fbtrace_id: 'AbCdEf' } })));
    },
  };
}

const PAGE_ID = '7788990011';
const APP_SECRET = 'app-secret-4567';
const TOKEN = 'EAAB-page-token';
const SETTINGS = { pageId: PAGE_ID, pageAccessToken: TOKEN, appSecret: APP_SECRET, verifyToken: 'verify-me', apiVersion: 'v21.0' };
const sign = (raw: string, secret = APP_SECRET) => 'sha256=' + createHmac('sha256', secret).update(raw).digest('hex');

function context(settings: Record<string, unknown>): AdapterContext {
  return {
    apiSpaceId: 'space-1', channelId: 'fbMessenger', settings,
    sink: { receipt: async () => {}, inbound: async () => {} },
    allowPrivateTargets: true, publicBaseUrl: 'http://sb.test', log: pino({ level: 'silent' }),
  };
}

const input = (over: Partial<SendInput> = {}): SendInput => ({
  apiSpaceId: 'space-1', messageId: 'msg-1', channelId: 'fbMessenger', to: { fbMessengerId: '5550193847' }, ...over,
});

describe('Messenger settings', () => {
  it('requires the page id and secrets, checks apiVersion and customerMatching', () => {
    assert.deepEqual(validateMessengerSettings(SETTINGS), []);
    assert.deepEqual(validateMessengerSettings({ ...SETTINGS, apiVersion: undefined, customerMatching: true }), []);
    assert.deepEqual(validateMessengerSettings({}).map((f) => f.paramName), ['pageId', 'pageAccessToken', 'appSecret', 'verifyToken']);
    assert.deepEqual(validateMessengerSettings({ ...SETTINGS, pageId: 'my-page', apiVersion: '21', customerMatching: 'yes', verifyToken: '' }), [
      { paramName: 'pageId', message: 'Required: the Facebook page id (digits)' },
      { paramName: 'verifyToken', message: 'Required non-empty string' },
      { paramName: 'apiVersion', message: 'Must look like v21.0' },
      { paramName: 'customerMatching', message: 'Must be a boolean' },
    ]);
    const provider = messengerSendApiProvider({ graphApiUrl: 'https://graph.facebook.com' });
    assert.equal(provider.channel, 'fbMessenger');
    assert.equal(provider.provider, 'sendApi');
    assert.deepEqual(provider.secretSettings, ['pageAccessToken', 'appSecret', 'verifyToken']);
  });
});

describe('Messenger adapter against a Send API peer', () => {
  const peer = sendApiPeer();
  let base = '';
  const adapters: ChannelAdapter[] = [];
  const adapter = (settings: Record<string, unknown> = {}) => {
    const a = createMessengerAdapter(context({ ...SETTINGS, ...settings }), { graphApiUrl: `${base}/` });
    adapters.push(a);
    return a;
  };
  before(async () => {
    base = await peer.start();
  });
  after(async () => {
    for (const a of adapters) await a.close?.();
    await peer.stop();
  });
  /** Sends and returns the outcome with the requests the peer saw for it. */
  const sent = async (a: ChannelAdapter, i: SendInput) => {
    const from = peer.seen.length;
    const outcome = await a.send(i);
    return { outcome, requests: peer.seen.slice(from) };
  };

  it('sends text (with link parts), then one request per attachment, and keeps the first message id', async () => {
    const { outcome, requests } = await sent(adapter(), input({
      body: 'Your order has shipped',
      messageParts: [
        { type: 'image/png', url: 'https://cdn.example.com/parcel.png' },
        { type: 'text/html', url: 'https://shop.example.com/track/42' },
        { type: 'application/pdf', name: 'invoice.pdf', url: 'https://cdn.example.com/invoice.pdf' },
        { type: 'text/plain', data: 'ignored: the body wins' },
      ],
    }));
    assert.equal(outcome.kind, 'accepted');
    assert.ok(outcome.kind === 'accepted');
    assert.equal(outcome.providerMessageId, 'm_1');
    assert.deepEqual(outcome.details, { to: '5550193847', recipientId: '5550193847', requests: 3 });
    assert.deepEqual(requests.map((r) => [r.method, r.path, r.headers.authorization, r.headers['content-type']]), Array(3).fill(['POST', '/v21.0/me/messages', `Bearer ${TOKEN}`, 'application/json']));
    assert.deepEqual(requests.map((r) => r.body), [
      { recipient: { id: '5550193847' }, messaging_type: 'RESPONSE', message: { text: 'Your order has shipped\nhttps://shop.example.com/track/42' } },
      { recipient: { id: '5550193847' }, messaging_type: 'RESPONSE', message: { attachment: { type: 'image', payload: { url: 'https://cdn.example.com/parcel.png', is_reusable: true } } } },
      { recipient: { id: '5550193847' }, messaging_type: 'RESPONSE', message: { attachment: { type: 'file', payload: { url: 'https://cdn.example.com/invoice.pdf', is_reusable: true } } } },
    ]);
  });

  it('sends audio and video attachments alone, with the API version configured', async () => {
    const { outcome, requests } = await sent(adapter({ apiVersion: 'v19.0' }), input({
      messageParts: [{ type: 'audio/mpeg', url: 'https://cdn.example.com/a.mp3' }, { type: 'video/mp4', url: 'https://cdn.example.com/v.mp4' }],
    }));
    assert.equal(outcome.kind, 'accepted');
    assert.deepEqual(requests.map((r) => [r.path, r.body.message.attachment.type]), [['/v19.0/me/messages', 'audio'], ['/v19.0/me/messages', 'video']]);
  });

  it('a message tag sets tag and MESSAGE_TAG; messagingType is used otherwise', async () => {
    let r = await sent(adapter(), input({ body: 'Your booking is confirmed', options: { messageTag: 'CONFIRMED_EVENT_UPDATE', messagingType: 'UPDATE' } }));
    assert.deepEqual(r.requests[0]!.body, { recipient: { id: '5550193847' }, messaging_type: 'MESSAGE_TAG', tag: 'CONFIRMED_EVENT_UPDATE', message: { text: 'Your booking is confirmed' } });
    r = await sent(adapter(), input({ body: 'News', options: { messagingType: 'UPDATE' } }));
    assert.deepEqual(r.requests[0]!.body, { recipient: { id: '5550193847' }, messaging_type: 'UPDATE', message: { text: 'News' } });
  });

  it('sends customBody verbatim as the message, in one request', async () => {
    const custom = { attachment: { type: 'template', payload: { template_type: 'button', text: 'Pick one', buttons: [{ type: 'postback', title: 'Yes', payload: 'YES' }] } } };
    const { outcome, requests } = await sent(adapter(), input({ body: 'not sent', messageParts: [{ type: 'image/png', url: 'https://cdn.example.com/x.png' }], customBody: custom }));
    assert.equal(outcome.kind, 'accepted');
    assert.deepEqual(requests.map((r) => r.body), [{ recipient: { id: '5550193847' }, messaging_type: 'RESPONSE', message: custom }]);
    const bad = await sent(adapter(), input({ customBody: ['not', 'an', 'object'] }));
    assert.deepEqual([bad.outcome.kind, (bad.outcome as { code?: string }).code, bad.requests.length], ['rejected', 'InvalidCustomBody', 0]);
  });

  it('customer matching by phone number only when the setting is on', async () => {
    const to = { phoneNumber: '447700900123', firstName: 'Jane' };
    const off = await sent(adapter(), input({ to, body: 'Hi' }));
    assert.deepEqual([off.outcome.kind, (off.outcome as { code?: string }).code, off.requests.length], ['rejected', 'NoAddress', 0]);
    const on = await sent(adapter({ customerMatching: true }), input({ to, profile: { id: 'jane', firstName: 'Janet', lastName: 'Doe' }, body: 'Hi' }));
    assert.equal(on.outcome.kind, 'accepted');
    assert.deepEqual(on.requests[0]!.body, { recipient: { phone_number: '+447700900123', name: { first_name: 'Jane', last_name: 'Doe' } }, messaging_type: 'RESPONSE', message: { text: 'Hi' } });
    const none = await sent(adapter({ customerMatching: true }), input({ to: { profileId: 'x' }, body: 'Hi' }));
    assert.deepEqual([none.outcome.kind, (none.outcome as { code?: string }).code], ['rejected', 'NoAddress']);
  });

  it('rejects text over 2000 characters and a send with nothing to send, without a request', async () => {
    const long = await sent(adapter(), input({ body: 'x'.repeat(1990), messageParts: [{ type: 'text/html', url: 'https://example.com/page' }] }));
    assert.deepEqual([long.outcome.kind, (long.outcome as { code?: string }).code, long.requests.length], ['rejected', 'TextTooLong', 0]);
    const exact = await sent(adapter(), input({ body: '€'.repeat(2000) }));
    assert.equal(exact.outcome.kind, 'accepted');
    const empty = await sent(adapter(), input({ messageParts: [{ type: 'text/plain', data: 'inline only' }] }));
    assert.deepEqual([empty.outcome.kind, (empty.outcome as { code?: string }).code, empty.requests.length], ['rejected', 'NoContent', 0]);
  });

  it('classifies Send API errors', async () => {
    const a = adapter();
    const expect = async (arrange: () => void, kind: string, code: string, extra: Record<string, unknown> = {}) => {
      arrange();
      const out = await a.send(input({ body: 'Hi' })) as Record<string, unknown>;
      assert.deepEqual({ kind: out.kind, code: out.code, ...Object.fromEntries(Object.keys(extra).map((k) => [k, out[k]])) }, { kind, code, ...extra }, JSON.stringify(out));
      assert.equal(typeof out.reason, 'string');
    };
    await expect(() => peer.fail(429, 613, undefined, { 'retry-after': '7' }), 'transient', 'RateLimited', { retryAfterMs: 7000 });
    await expect(() => peer.fail(400, 4), 'transient', 'RateLimited');
    await expect(() => peer.fail(400, 190, 463), 'rejected', 'Unauthorized');
    await expect(() => peer.fail(401, 102), 'rejected', 'Unauthorized');
    await expect(() => peer.fail(400, 10, 2018278), 'rejected', 'OutsideWindow');
    await expect(() => peer.fail(400, 2018278), 'rejected', 'OutsideWindow');
    await expect(() => peer.fail(400, 551, 1545041), 'rejected', 'Undeliverable');
    await expect(() => peer.fail(400, 100, 2018001), 'rejected', 'NoMatchingUser');
    await expect(() => peer.fail(400, 100, 2018109), 'rejected', '100');
    await expect(() => peer.fail(500, 2), 'transient', 'ProviderUnavailable');
    await expect(() => peer.script.push((res) => res.writeHead(403).end('no')), 'rejected', 'HTTP403');
  });

  it('a later request failing leaves the message accepted with the failure noted', async () => {
    peer.script.push((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"recipient_id":"5550193847","message_id":"m_first"}'));
    peer.fail(400, 100, 2018047);
    const { outcome } = await sent(adapter(), input({ body: 'Look', messageParts: [{ type: 'image/gif', url: 'https://cdn.example.com/x.gif' }] }));
    assert.ok(outcome.kind === 'accepted');
    assert.equal(outcome.providerMessageId, 'm_first');
    const failures = outcome.details!.failures as Array<Record<string, unknown>>;
    assert.deepEqual(failures.map((f) => [f.index, f.type, f.code]), [[1, 'image', '100']]);
  });

  it('network failures are transient; a private target without permission is a misconfiguration', async () => {
    const closed = http.createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((ok) => closed.close(() => ok()));
    const down = createMessengerAdapter(context(SETTINGS), { graphApiUrl: `http://127.0.0.1:${port}` });
    adapters.push(down);
    const out = await down.send(input({ body: 'Hi' }));
    assert.deepEqual([out.kind, (out as { code?: string }).code], ['transient', 'NetworkError']);
    const strict = createMessengerAdapter({ ...context(SETTINGS), allowPrivateTargets: false }, { graphApiUrl: base });
    adapters.push(strict);
    const blocked = await strict.send(input({ body: 'Hi' }));
    assert.deepEqual([blocked.kind, (blocked as { code?: string }).code], ['rejected', 'ChannelMisconfigured']);
  });
});

describe('Messenger webhook', () => {
  const a = createMessengerAdapter(context(SETTINGS), { graphApiUrl: 'http://127.0.0.1:9' });
  after(() => a.close?.());
  const get = (query: Record<string, string>) => a.handleCallback!({ method: 'GET', headers: {}, query, rawBody: Buffer.alloc(0) });
  const post = (raw: string, signature: string | null = sign(raw)): Promise<Awaited<ReturnType<NonNullable<ChannelAdapter['handleCallback']>>>> => {
    const req: CallbackRequest = { method: 'POST', headers: signature ? { 'x-hub-signature-256': signature } : {}, query: {}, rawBody: Buffer.from(raw), contentType: 'application/json' };
    return a.handleCallback!(req);
  };

  it('answers the verification handshake only for the configured token', async () => {
    assert.deepEqual(await get({ 'hub.mode': 'subscribe', 'hub.verify_token': 'verify-me', 'hub.challenge': '1158201444' }), { status: 200, body: '1158201444', contentType: 'text/plain; charset=utf-8' });
    const bad = await get({ 'hub.mode': 'subscribe', 'hub.verify_token': 'guess', 'hub.challenge': '1' });
    assert.equal(bad.status, 403);
    assert.equal(bad.contentType, 'application/json');
    assert.deepEqual(JSON.parse(String(bad.body)), { message: 'The verify token does not match', code: 'Forbidden', status: 403 });
    assert.equal((await get({ 'hub.mode': 'unsubscribe', 'hub.verify_token': 'verify-me', 'hub.challenge': '1' })).status, 403);
  });

  it('refuses a missing or wrong signature, and a signed body that is not JSON', async () => {
    const raw = JSON.stringify({ object: 'page', entry: [] });
    assert.deepEqual(await post(raw, null), { status: 401 });
    assert.deepEqual(await post(raw, sign(raw, 'other-secret')), { status: 401 });
    assert.deepEqual(await post(raw + ' ', sign(raw)), { status: 401 });
    const invalid = await post('{not json');
    assert.equal(invalid.status, 400);
    assert.equal(JSON.parse(String(invalid.body)).code, 'InvalidJson');
    assert.deepEqual(await post(raw, sign(raw).toUpperCase().replace('SHA256=', 'sha256=')), { status: 200, body: '{}', contentType: 'application/json', receipts: [], inbounds: [], reads: [], optins: [] });
  });

  it('turns a batch of page events into receipts, inbound messages, reads and opt-ins', async () => {
    const user = '5550193847';
    const ev = (extra: Record<string, unknown>, ts = 1714557600000) => ({ sender: { id: user }, recipient: { id: PAGE_ID }, timestamp: ts, ...extra });
    const text = ev({ message: { mid: 'm_in1', text: 'Where is my parcel?' } });
    const attachment = ev({ message: { mid: 'm_in2', attachments: [{ type: 'image', payload: { url: 'https://scontent.example.com/p.jpg' } }, { type: 'file', payload: { url: 'https://cdn.example.com/f.bin' } }, { type: 'location', payload: { coordinates: { lat: 1, long: 2 } } }] } }, 1714557601000);
    const echo = { sender: { id: PAGE_ID }, recipient: { id: user }, timestamp: 1714557602000, message: { is_echo: true, app_id: 1, mid: 'm_out', text: 'We sent this' } };
    const delivery = ev({ delivery: { mids: ['m_1', 'm_2'], watermark: 1714557603000 } });
    const watermarkOnly = ev({ delivery: { watermark: 1714557603500 } });
    const read = ev({ read: { watermark: 1714557604000 } });
    const optin = ev({ optin: { ref: 'state-string-1' } });
    const referral = ev({ referral: { ref: 'state-string-2', source: 'SHORTLINK', type: 'OPEN_THREAD' } });
    const postback = ev({ postback: { mid: 'm_pb', title: 'Get Started', payload: 'GET_STARTED', referral: { ref: 'state-string-3', source: 'SHORTLINK', type: 'OPEN_THREAD' } } });
    const checkbox = { recipient: { id: PAGE_ID }, timestamp: 1714557605000, optin: { ref: 'state-string-4', user_ref: 'ur-1' } };
    const empty = ev({ message: { mid: 'm_empty' } });
    const raw = JSON.stringify({
      object: 'page',
      entry: [
        { id: PAGE_ID, time: 1714557606000, messaging: [text, attachment, echo, delivery, watermarkOnly, read, optin, referral, postback, checkbox, empty] },
        { id: '1234567890', time: 1714557606000, messaging: [ev({ message: { mid: 'm_other', text: 'other page' } }), ev({ read: { watermark: 1 } })] },
      ],
    });
    const res = await post(raw);
    assert.equal(res.status, 200);
    assert.equal(res.body, '{}');
    assert.equal(res.contentType, 'application/json');
    assert.deepEqual(res.receipts, [
      { providerMessageId: 'm_1', status: 'delivered', at: 1714557603000 },
      { providerMessageId: 'm_2', status: 'delivered', at: 1714557603000 },
    ]);
    assert.deepEqual(res.inbounds, [
      { channelId: 'fbMessenger', from: { fbMessengerId: user }, body: 'Where is my parcel?', providerMessageId: 'm_in1', sentOn: 1714557600000, raw: text },
      {
        channelId: 'fbMessenger', from: { fbMessengerId: user },
        messageParts: [{ type: 'image/jpeg', url: 'https://scontent.example.com/p.jpg' }, { type: 'application/octet-stream', url: 'https://cdn.example.com/f.bin' }],
        providerMessageId: 'm_in2', sentOn: 1714557601000, raw: attachment,
      },
      { channelId: 'fbMessenger', from: { fbMessengerId: user }, body: 'Get Started', providerMessageId: 'm_pb', sentOn: 1714557600000, raw: postback },
    ]);
    assert.deepEqual(res.reads, [{ address: { fbMessengerId: user }, before: 1714557604000 }]);
    assert.deepEqual(res.optins, [
      { fbMessengerId: user, ref: 'state-string-1', pageId: PAGE_ID, raw: optin },
      { fbMessengerId: user, ref: 'state-string-2', pageId: PAGE_ID, raw: referral },
      { fbMessengerId: user, ref: 'state-string-3', pageId: PAGE_ID, raw: postback },
    ]);
  });

  it('acknowledges and ignores other objects', async () => {
    const raw = JSON.stringify({ object: 'instagram', entry: [{ id: PAGE_ID, messaging: [{ sender: { id: '1' }, read: { watermark: 5 } }] }] });
    assert.deepEqual(await post(raw), { status: 200, body: '{}', contentType: 'application/json', receipts: [], inbounds: [], reads: [], optins: [] });
  });
});
