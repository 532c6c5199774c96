import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { channelApi } from './helpers.js';
import { settle } from '../messages/helpers.js';

/**
 * The Messenger channel end to end against a local peer speaking the Send API: an opt-in through
 * a `/channels/facebook/state` string stores the Messenger id on the profile, tagged sends go out
 * outside the window, inbound messages open it, deliveries and read watermarks move statuses.
 */
const APP_SECRET = 'messenger-app-secret';
const PAGE_ID = '1122334455';
const SETTINGS = { pageId: PAGE_ID, pageAccessToken: 'EAAB-page-token', appSecret: APP_SECRET, verifyToken: 'verify-fb' };
const sign = (raw: string) => 'sha256=' + createHmac('sha256', APP_SECRET).update(raw).digest('hex');

const seen: Array<{ path: string; headers: http.IncomingHttpHeaders; body: any }> = [];
/** An inbound attachment's file, as Facebook's CDN serves it. */
const PHOTO = Buffer.from('\x89PNG a photo of the damaged box');
const peer = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url!.startsWith('/cdn/')) {
      seen.push({ path: req.url!, headers: req.headers, body: undefined });
      return res.writeHead(200, { 'content-type': 'image/png' }).end(PHOTO);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
    seen.push({ path: req.url!, headers: req.headers, body });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ recipient_id: body.recipient?.id ?? 'matched', message_id: `m_${seen.length}` }));
  });
});
const env: Record<string, string> = {};
before(async () => {
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  env.GRAPH_API_URL = `http://127.0.0.1:${(peer.address() as { port: number }).port}`;
});
after(() => new Promise<void>((r) => peer.close(() => r())));

eachDatabase('fbMessenger channel (Send API peer)', (dialect) => {
  const s = useServer(dialect, { env });
  let space = '';
  let token = '';
  const psid = `PSID-${dialect}`;
  const api = channelApi(s, () => space, () => token, { channelId: 'fbMessenger', header: 'x-hub-signature-256', sign });
  const { url, send, get } = api;
  const callback = (messaging: unknown[]) => api.callback(JSON.stringify({ object: 'page', entry: [{ id: PAGE_ID, time: Date.now(), messaging }] }));
  const base = () => ({ sender: { id: psid }, recipient: { id: PAGE_ID }, timestamp: Date.now() });
  let tagged = '';

  it('configures the channel and stores the Messenger id of a user who opts in with a state string', async () => {
    space = await s().createSpace('messenger');
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'fb:state:wa', 'prof:ra']);
    const put = await s().request({ method: 'PUT', url: url('/channels/fbMessenger'), payload: { enabled: true, provider: 'sendApi', settings: SETTINGS } });
    assert.equal(put.statusCode, 201, put.body);
    assert.equal(put.json().settings.pageAccessToken, '********');
    const state = (await s().request({ method: 'POST', url: url('/channels/facebook/state'), token, payload: { profileId: 'dana', data: '{"tier":"gold"}' } })).json();
    const res = await callback([{ ...base(), optin: { ref: state } }]);
    assert.equal(res.statusCode, 200, res.body);
    await settle(s());
    const profile = (await s().request({ method: 'GET', url: url('/profiles/dana'), token })).json();
    assert.equal(profile.fbMessengerId, psid);
    assert.equal(profile.tier, 'gold');
    const events = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'facebook.optin' && e.apiSpaceId === space);
    assert.equal(events.length, 1);
    await s().container.platform.events.loadPayloads(events);
    assert.deepEqual({ ...(events[0]!.payload as Record<string, unknown>), rawData: undefined }, { fbMessengerId: psid, profileId: 'dana', stateData: '{"tier":"gold"}', ref: state, rawData: undefined, pageId: PAGE_ID });
    // A string made for another space, or tampered with, changes nothing.
    await callback([{ ...base(), sender: { id: 'PSID-other' }, optin: { ref: `${state.slice(0, 30)}${state[30] === 'A' ? 'B' : 'A'}${state.slice(31)}` } }]);
    await settle(s());
    assert.equal((await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'facebook.optin' && e.apiSpaceId === space).length, 1);
  });

  it('sends with a message tag outside the window, and skips a free-form send there', async () => {
    const from = seen.length;
    tagged = await send({ to: { profileId: 'dana' }, rules: ['fbMessenger'], body: 'Your order shipped', channelOptions: { fbMessenger: { messageTag: 'POST_PURCHASE_UPDATE' } } });
    await settle(s());
    assert.equal(seen.length - from, 1);
    const req = seen[from]!;
    assert.equal(req.path, '/v21.0/me/messages');
    assert.equal(req.headers.authorization, 'Bearer EAAB-page-token');
    assert.deepEqual(req.body, { recipient: { id: psid }, messaging_type: 'MESSAGE_TAG', tag: 'POST_PURCHASE_UPDATE', message: { text: 'Your order shipped' } });
    assert.equal((await get(tagged)).status, 'sent');
    const free = await send({ to: { profileId: 'dana' }, rules: ['fbMessenger'], body: 'Hello' });
    await settle(s());
    assert.equal(seen.length - from, 1, 'nothing sent outside the window without a tag');
    assert.equal((await get(free)).statusDetails.attempts[0].reason, 'OutsideWindow');
  });

  it('takes an inbound message, which opens the window; deliveries and read watermarks move statuses', async () => {
    const res = await callback([{ ...base(), message: { mid: 'm_in_1', text: 'Where is it?' } }, { ...base(), message: { mid: 'm_echo', text: 'echo', is_echo: true } }]);
    assert.equal(res.statusCode, 200, res.body);
    await settle(s());
    const inbound = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space);
    assert.equal(inbound.length, 1, 'the echo is not an inbound message');
    // Marking it read shows the page has seen the conversation.
    const seenFrom = seen.length;
    const read = await s().request({ method: 'POST', url: url(`/messages/inbounds/${(inbound[0]!.payload as { id: string }).id}/statuses/read`), token, payload: { timestamp: new Date().toISOString() } });
    assert.ok(read.statusCode < 300, read.body);
    await settle(s());
    assert.deepEqual(seen.slice(seenFrom).map((r) => r.body), [{ recipient: { id: psid }, sender_action: 'mark_seen' }]);
    const from = seen.length;
    const reply = await send({ to: { profileId: 'dana' }, rules: ['fbMessenger'], body: 'On its way', messageParts: [{ type: 'image/png', url: 'https://cdn.example.com/parcel.png' }] });
    await settle(s());
    assert.deepEqual(seen.slice(from).map((r) => r.body), [
      { recipient: { id: psid }, messaging_type: 'RESPONSE', message: { text: 'On its way' } },
      { recipient: { id: psid }, messaging_type: 'RESPONSE', message: { attachment: { type: 'image', payload: { url: 'https://cdn.example.com/parcel.png', is_reusable: true } } } },
    ]);
    const replied = await get(reply);
    assert.equal(replied.status, 'sent');
    const mid = replied.statusDetails.attempts.at(-1).providerMessageId;
    await callback([{ ...base(), delivery: { mids: [mid], watermark: Date.now() } }]);
    await settle(s());
    assert.equal((await get(reply)).status, 'delivered');
    await callback([{ ...base(), read: { watermark: Date.now() + 1000 } }]);
    await settle(s());
    assert.equal((await get(reply)).status, 'read');
    assert.equal((await get(tagged)).status, 'read', 'everything sent before the watermark');
  });

  it('keeps an inbound attachment with the Content API before its URL expires; a shared page stays a link', async () => {
    const cdn = `${env.GRAPH_API_URL}/cdn/photo.png?oh=expiring`;
    const from = seen.length;
    const res = await callback([{ ...base(), message: { mid: 'm_in_2', attachments: [{ type: 'image', payload: { url: cdn } }, { type: 'fallback', payload: { url: 'https://shop.example.com/p/1', title: 'Box' } }] } }]);
    assert.equal(res.statusCode, 200, res.body);
    await settle(s());
    const inbound = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space);
    const parts = (inbound.at(-1)!.payload as { messageParts: Array<Record<string, any>> }).messageParts;
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.type, 'image/png', 'the type the CDN served, not the attachment type\'s guess');
    assert.equal(parts[0]!.size, PHOTO.length);
    const file = await s().request({ method: 'GET', url: new URL(parts[0]!.url).pathname });
    assert.deepEqual(file.rawPayload, PHOTO);
    assert.deepEqual(parts[1], { type: 'text/uri-list', url: 'https://shop.example.com/p/1' });
    assert.deepEqual(seen.slice(from).map((r) => r.path), ['/cdn/photo.png?oh=expiring'], 'the page is not fetched');
  });
});
