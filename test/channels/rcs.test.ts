import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from 'jose';
import { ManualClock } from '../../src/lib/clock.js';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { eventsFor, settle } from '../messages/helpers.js';
import { channelApi, scriptedPeer, type SeenRequest } from './helpers.js';

/**
 * The `rcs` channel's `rbmApi` provider against local peers speaking Google's OAuth token endpoint
 * and the RCS Business Messaging API (channels.md §10): the capability check and SMS fallback,
 * agent messages, signed webhook events (receipts, user messages), the webhook handshake and the
 * classification of RBM errors.
 */
const CLIENT_TOKEN = 'SJENCPGJESMGUFPY';
const AGENT = 'switchboard-test_4f1a2b_agent';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

/** Numbers RBM cannot reach: their capability check (and any send) answers 404. */
const unreachable = new Set<string>();
let issued = 0;

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
const googleError = (status: number, name: string, message: string, headers: Record<string, string> = {}) =>
  (res: http.ServerResponse) => json(res, status, { error: { code: status, message, status: name } }, headers);

/** A user's file, as RBM's storage serves it. */
const USER_FILE = Buffer.from([0xff, 0xd8, 0xff, ...Buffer.from('a parcel')]);
/** Google's side: `/token` (JWT bearer grant), `/v1/phones/…` (RBM) and `/sms` (an SMS gateway to fall back to). */
const peer = scriptedPeer((seen, _req, res) => {
  const url = new URL(seen.path, 'http://peer');
  if (url.pathname === '/token') return json(res, 200, { access_token: `rbm-token-${++issued}`, expires_in: 3599, token_type: 'Bearer' });
  if (url.pathname === '/sms') return json(res, 200, { messages: [{ id: `sms-${seen.body.ref}` }] });
  if (url.pathname.startsWith('/user-files/')) return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(USER_FILE);
  const m = /^\/v1\/phones\/\+(\d+)\/(capabilities|agentMessages|agentEvents)$/.exec(url.pathname);
  if (!m) return res.writeHead(404).end();
  if (unreachable.has(m[1]!)) return googleError(404, 'NOT_FOUND', 'Requested entity was not found.')(res);
  if (m[2] === 'capabilities') return json(res, 200, { features: ['RICHCARD_STANDALONE', 'RICHCARD_CAROUSEL', 'ACTION_DIAL'] });
  if (m[2] === 'agentEvents') return json(res, 200, { name: `phones/+${m[1]}/agentEvents/${url.searchParams.get('eventId')}`, ...seen.body });
  json(res, 200, { name: `phones/+${m[1]}/agentMessages/${url.searchParams.get('messageId')}`, sendTime: new Date().toISOString(), contentMessage: seen.body.contentMessage });
}, (seen, _req, res) => {
  // RBM refuses a request without the latest access token.
  if (!seen.path.startsWith('/v1/') || seen.headers.authorization === `Bearer rbm-token-${issued}`) return false;
  googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.')(res);
  return true;
});

const env: Record<string, string> = {};
let base = '';
before(async () => {
  base = await peer.start();
  env.RCS_API_URL = base;
});
after(() => peer.stop());

const settings = () => ({
  agentId: AGENT, clientToken: CLIENT_TOKEN,
  serviceAccount: { type: 'service_account', project_id: 'rbm-partner-1', private_key_id: 'k1', private_key: PEM, client_email: 'rbm@rbm-partner-1.iam.gserviceaccount.com', token_uri: `${base}/token` },
});
/** X-Goog-Signature: over the decoded `message.data` of an envelope, else over the body. */
const sign = (raw: string, token = CLIENT_TOKEN) => {
  let data: unknown;
  try {
    data = JSON.parse(raw)?.message?.data;
  } catch {}
  return createHmac('sha512', token).update(typeof data === 'string' ? Buffer.from(data, 'base64') : raw).digest('base64');
};
/** An RBM webhook event in its Pub/Sub push envelope. */
const envelope = (event: Record<string, unknown>) => JSON.stringify({
  message: { data: Buffer.from(JSON.stringify({ agentId: AGENT, ...event })).toString('base64'), messageId: '1234567890', publishTime: new Date().toISOString(), attributes: {} },
  subscription: 'projects/rbm-partner-1/subscriptions/rbm-agent',
});
const path = (r: SeenRequest) => new URL(r.path, 'http://peer');

eachDatabase('rcs channel (RBM peer)', (dialect) => {
  const clock = new ManualClock(Date.now());
  const s = useServer(dialect, { env, clock });
  let space = '';
  let token = '';
  const { url, send, get, callback, sendThrottledOnce } = channelApi(s, () => space, () => token, { channelId: 'rcs', header: 'x-goog-signature', sign: (raw: string) => sign(raw) });
  const since = (from: number) => peer.seen.slice(from);
  const rbmSince = (from: number) => since(from).filter((r) => r.path.startsWith('/v1/'));
  const inboundEvents = async () => (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space);

  it('configures the channel: settings checked, the service account and clientToken masked and kept', async () => {
    space = await s().createSpace('rcs');
    token = await s().createToken(space, ['msg:any:s', 'msg:r']);
    const bad = await s().request({ method: 'PUT', url: url('/channels/rcs'), payload: { enabled: true, provider: 'rbmApi', settings: { agentId: 'has spaces', serviceAccount: { client_email: 'nope', private_key: 'not a key' } } } });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal(bad.json().code, 'ValidationFailed');
    assert.deepEqual(bad.json().validationFailures.map((f: { paramName: string }) => f.paramName).sort(),
      ['settings.agentId', 'settings.clientToken', 'settings.serviceAccount.client_email', 'settings.serviceAccount.private_key']);
    const notJson = await s().request({ method: 'PUT', url: url('/channels/rcs'), payload: { enabled: true, provider: 'rbmApi', settings: { ...settings(), serviceAccount: '{not json' } } });
    assert.equal(notJson.statusCode, 400, notJson.body);
    assert.deepEqual(notJson.json().validationFailures, [{ paramName: 'settings.serviceAccount', message: 'Must be the service account JSON object' }]);

    const put = await s().request({ method: 'PUT', url: url('/channels/rcs'), payload: { enabled: true, provider: 'rbmApi', settings: settings() } });
    assert.equal(put.statusCode, 201, put.body);
    const masked = { agentId: AGENT, clientToken: '********', serviceAccount: '********' };
    assert.deepEqual(put.json().settings, masked);
    const again = await s().request({ method: 'PUT', url: url('/channels/rcs'), payload: { enabled: true, provider: 'rbmApi', settings: masked } });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual((await s().request({ method: 'GET', url: url('/channels/rcs') })).json().settings, masked);

    const sms = await s().request({ method: 'PUT', url: url('/channels/sms'), payload: { enabled: true, provider: 'http', settings: {
      sendUrl: `${base}/sms`, bodyTemplate: '{"to":"{{to}}","text":"{{text}}","ref":"{{messageId}}"}', responseIdPath: '/messages/0/id', defaultFrom: 'ACME',
    } } });
    assert.ok(sms.statusCode < 300, sms.body);
  });

  it('checks capability, then sends text as an agent message with the message id; channelData.rcs on the events', async () => {
    const from = peer.seen.length;
    const id = await send({ to: { phoneNumber: '+44 7400 123456' }, rules: ['rcs'], body: 'Your parcel is on its way' });
    await settle(s());
    const [tokenReq, capability, message] = since(from);
    assert.equal(since(from).length, 3);
    assert.equal(tokenReq!.body.grant_type, 'urn:ietf:params:oauth:grant-type:jwt-bearer');
    const claims = decodeJwt(tokenReq!.body.assertion);
    assert.equal(claims.scope, 'https://www.googleapis.com/auth/rcsbusinessmessaging');
    assert.equal(claims.iss, 'rbm@rbm-partner-1.iam.gserviceaccount.com');
    assert.equal(claims.aud, `${base}/token`);

    assert.equal(capability!.method, 'GET');
    assert.equal(path(capability!).pathname, '/v1/phones/+447400123456/capabilities');
    assert.equal(path(capability!).searchParams.get('agentId'), AGENT);
    assert.match(path(capability!).searchParams.get('requestId') ?? '', UUID);
    assert.equal(message!.method, 'POST');
    assert.equal(path(message!).pathname, '/v1/phones/+447400123456/agentMessages');
    assert.equal(path(message!).searchParams.get('messageId'), id);
    assert.equal(path(message!).searchParams.get('agentId'), AGENT);
    assert.equal(message!.headers.authorization, `Bearer rbm-token-${issued}`);
    assert.deepEqual(message!.body, { contentMessage: { text: 'Your parcel is on its way' } });

    const m = await get(id);
    assert.equal(m.status, 'sent');
    assert.equal(m.statusDetails.attempts[0].providerMessageId, id);
    const sent = (await eventsFor(s(), id)).find((e) => e.name === 'message.sent');
    assert.deepEqual(sent?.payload.channelData.rcs, { phoneNumber: '+447400123456', phoneNumberCountryCode: 'GB', agentId: AGENT });
  });

  it('sends files as contentInfo after the text and customBody verbatim with the capability cached; another agent is checked on its own', async () => {
    const from = peer.seen.length;
    const expiresOn = new Date(clock.now() + 3600_000).toISOString();
    const id = await send({
      to: { phoneNumber: '447400123456' }, rules: ['rcs'], body: 'Your receipt', expiresOn,
      messageParts: [{ type: 'image/png', url: 'https://cdn.example.com/van.png' }, { type: 'text/html', url: 'https://shop.example.com/track/1' }, { type: 'application/pdf', url: 'https://cdn.example.com/receipt.pdf', name: 'receipt.pdf' }],
    });
    await settle(s());
    const reqs = rbmSince(from);
    assert.deepEqual(reqs.map((r) => [r.method, path(r).pathname]), [1, 2, 3].map(() => ['POST', '/v1/phones/+447400123456/agentMessages']), 'no second capability check');
    assert.deepEqual(reqs.map((r) => r.body), [
      { contentMessage: { text: 'Your receipt\nhttps://shop.example.com/track/1' }, expireTime: expiresOn },
      { contentMessage: { contentInfo: { fileUrl: 'https://cdn.example.com/van.png' } }, expireTime: expiresOn },
      { contentMessage: { contentInfo: { fileUrl: 'https://cdn.example.com/receipt.pdf' } }, expireTime: expiresOn },
    ]);
    const ids = reqs.map((r) => path(r).searchParams.get('messageId')!);
    assert.equal(ids[0], id);
    assert.ok(ids.every((i) => UUID.test(i)) && new Set(ids).size === 3, ids.join());
    assert.equal((await get(id)).status, 'sent');

    const card = { richCard: { standaloneCard: { cardOrientation: 'VERTICAL', cardContent: { title: 'Hi {{profile.name}}', media: { height: 'MEDIUM', contentInfo: { fileUrl: 'https://cdn.example.com/c.png' } } } } }, suggestions: [{ reply: { text: 'Yes', postbackData: 'yes' } }] };
    const before = peer.seen.length;
    const custom = await send({ to: { phoneNumber: '447400123456' }, rules: ['rcs'], body: 'for other channels', customBody: { rcs: card } });
    await settle(s());
    const [message] = rbmSince(before);
    assert.equal(rbmSince(before).length, 1);
    assert.equal(path(message!).searchParams.get('messageId'), custom);
    assert.deepEqual(message!.body, { contentMessage: { ...card, richCard: { standaloneCard: { ...card.richCard.standaloneCard, cardContent: { ...card.richCard.standaloneCard.cardContent, title: 'Hi ' } } } } });

    const other = 'other-brand_9c8d7e_agent';
    const fromOther = peer.seen.length;
    const viaOther = await send({ to: { phoneNumber: '447400123456' }, rules: ['rcs'], body: 'From the other brand', channelOptions: { rcs: { agentId: other } } });
    await settle(s());
    const [capability, otherMessage] = rbmSince(fromOther);
    assert.equal(path(capability!).pathname, '/v1/phones/+447400123456/capabilities', 'another agent is checked on its own');
    assert.equal(path(capability!).searchParams.get('agentId'), other);
    assert.equal(path(otherMessage!).searchParams.get('agentId'), other);
    const sent = (await eventsFor(s(), viaOther)).find((e) => e.name === 'message.sent');
    assert.equal(sent?.payload.channelData.rcs.agentId, other);
  });

  it('a number RBM cannot reach is skipped with NoAddress: Branch falls back to SMS; the answer is cached', async () => {
    unreachable.add('447700900222');
    const from = peer.seen.length;
    const id = await send({ to: { phoneNumber: '447700900222' }, rules: ['rcs', 'sms'], body: 'Fallback please' });
    await settle(s());
    assert.deepEqual(since(from).map((r) => path(r).pathname), ['/v1/phones/+447700900222/capabilities', '/sms']);
    const m = await get(id);
    assert.equal(m.status, 'sent');
    assert.equal(m.statusDetails.channelId, 'sms');
    assert.deepEqual(m.statusDetails.attempts.map((a: { channel: string; outcome: string; reason?: string }) => [a.channel, a.outcome, a.reason]),
      [['rcs', 'skipped', 'NoAddress'], ['sms', 'accepted', undefined]]);
    assert.equal(since(from)[1]!.body.text, 'Fallback please');

    const before = peer.seen.length;
    const only = await send({ to: { phoneNumber: '447700900222' }, rules: ['rcs'], body: 'RCS only' });
    await settle(s());
    assert.equal(since(before).length, 0, 'the capability answer is cached');
    const failed = await get(only);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.statusDetails.errorCode, 'NoAddress');
  });

  it('applies DELIVERED and READ events; a revoked expired message becomes expired; typing is ignored', async () => {
    const id = await send({ to: { phoneNumber: '447400123456' }, rules: ['rcs'], body: 'Status test' });
    await settle(s());
    const event = (eventType: string, messageId = id) => envelope({ senderPhoneNumber: '+447400123456', eventType, eventId: `ev-${eventType}`, messageId, sendTime: new Date(clock.now()).toISOString() });
    assert.equal((await callback(event('IS_TYPING'))).statusCode, 200);
    const delivered = await callback(event('DELIVERED'));
    assert.equal(delivered.statusCode, 200, delivered.body);
    await settle(s());
    assert.equal((await get(id)).status, 'delivered');
    const deliveredEvent = (await eventsFor(s(), id)).find((e) => e.name === 'message.delivered');
    assert.deepEqual(deliveredEvent?.payload.channelData.rcs, { phoneNumber: '+447400123456', phoneNumberCountryCode: 'GB', agentId: AGENT });
    assert.equal((await callback(event('READ'))).statusCode, 200);
    await settle(s());
    assert.equal((await get(id)).status, 'read');

    const stale = await send({ to: { phoneNumber: '447400123456' }, rules: ['rcs'], body: 'Will expire' });
    await settle(s());
    const revoked = envelope({ phoneNumber: '+447400123456', eventType: 'TTL_EXPIRATION_REVOKED', eventId: 'srv-1', messageId: stale, sendTime: new Date(clock.now()).toISOString() });
    assert.equal((await callback(revoked)).statusCode, 200);
    await settle(s());
    assert.equal((await get(stale)).status, 'expired');
  });

  it('takes user messages as inbound messages: text, a file, a location and a suggestion reply', async () => {
    const before = (await inboundEvents()).length;
    const user = (n: number, content: Record<string, unknown>) => envelope({ senderPhoneNumber: '+447700900333', messageId: `MxUser${n}`, sendTime: new Date(clock.now()).toISOString(), ...content });
    for (const raw of [
      user(1, { text: 'Where is my order?' }),
      user(2, { userFile: { payload: { mimeType: 'image/jpeg', fileSizeBytes: USER_FILE.length, fileName: 'parcel.jpg', fileUri: `${base}/user-files/parcel.jpg` } } }),
      user(3, { location: { latitude: 51.5072, longitude: -0.1276 } }),
      user(4, { suggestionResponse: { postbackData: 'track_order', text: 'Track my order', type: 'REPLY' } }),
    ]) {
      const res = await callback(raw);
      assert.equal(res.statusCode, 200, res.body);
    }
    await settle(s());
    const events = (await inboundEvents()).slice(before).map((e) => e.payload as Record<string, any>)
      .sort((a, b) => String(a.channelData.providerMessageId).localeCompare(b.channelData.providerMessageId));
    assert.deepEqual(events.map((e) => [e.channel, e.from.phoneNumber, e.body]), [
      ['rcs', '447700900333', 'Where is my order?'], ['rcs', '447700900333', undefined], ['rcs', '447700900333', '51.5072,-0.1276'], ['rcs', '447700900333', 'Track my order'],
    ]);
    // The file is kept with the Content API before its URL expires.
    const [file] = events[1]!.messageParts as Array<Record<string, any>>;
    assert.deepEqual({ ...file, url: undefined }, { type: 'image/jpeg', url: undefined, name: 'parcel.jpg', size: USER_FILE.length });
    assert.deepEqual((await s().request({ method: 'GET', url: new URL(file!.url).pathname })).rawPayload, USER_FILE);
    assert.equal(events[3]!.channelData.body.suggestionResponse.postbackData, 'track_order');

    // Marking the text read sends the user a read receipt (an agent READ event), with an event id a retry would repeat.
    const from = peer.seen.length;
    const read = await s().request({ method: 'POST', url: url(`/messages/inbounds/${events[0]!.id}/statuses/read`), token, payload: { timestamp: new Date(clock.now()).toISOString() } });
    assert.ok(read.statusCode < 300, read.body);
    await settle(s());
    const receipt = peer.seen.slice(from).find((r) => r.path.includes('/agentEvents'))!;
    const q = new URL(receipt.path, 'http://peer');
    assert.equal(q.pathname, '/v1/phones/+447700900333/agentEvents');
    assert.equal(q.searchParams.get('agentId'), AGENT);
    assert.match(q.searchParams.get('eventId')!, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(receipt.body, { eventType: 'READ', messageId: 'MxUser1' });
  });

  it('answers the webhook handshake; refuses bad signatures; a signed unreadable body is a 4xx, never a 500', async () => {
    const handshake = (clientToken: string) => s().request({ method: 'POST', url: url('/channels/rcs/callback'), token: null, payload: JSON.stringify({ clientToken, secret: '1234567890' }), headers: { 'content-type': 'application/json' } });
    const ok = await handshake(CLIENT_TOKEN);
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.body, '1234567890');
    assert.match(String(ok.headers['content-type']), /^text\/plain/);
    assert.equal((await handshake('WRONGTOKEN')).statusCode, 403);

    const before = (await inboundEvents()).length;
    const forged = envelope({ senderPhoneNumber: '+447700900444', messageId: 'forged', text: 'forged' });
    assert.equal((await callback(forged, sign(forged, 'other-token'))).statusCode, 401);
    assert.equal((await callback(forged, null)).statusCode, 401);
    assert.equal((await callback(forged, 'AAAA')).statusCode, 401);
    const junk = await callback('not json');
    assert.ok(junk.statusCode >= 400 && junk.statusCode < 500, `${junk.statusCode}`);
    const garbled = JSON.stringify({ message: { data: Buffer.from('{broken').toString('base64') } });
    assert.equal((await callback(garbled)).statusCode, 400);
    assert.equal((await s().request({ method: 'GET', url: url('/channels/rcs/callback'), token: null })).statusCode, 405);
    for (const shape of [envelope({ senderPhoneNumber: 'x', text: 'no number' }), envelope({ senderPhoneNumber: '+447700900444', userFile: {} }), envelope({ eventType: 'DELIVERED' }), JSON.stringify({ message: { data: Buffer.from('[1]').toString('base64') } })]) {
      const res = await callback(shape);
      assert.equal(res.statusCode, 200, `${shape}: ${res.body}`);
    }
    await settle(s());
    assert.equal((await inboundEvents()).length, before, 'nothing stored');
  });

  it('classifies RBM errors: quota retries, a stale capability falls back, a used id counts as sent, bad requests are rejected', async () => {
    const to = { phoneNumber: '447400123456' };
    peer.script.push(googleError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded', { 'retry-after': '2' }));
    await sendThrottledOnce({ to, rules: ['rcs'], body: 'Throttled' }, clock);

    peer.script.push(googleError(409, 'ALREADY_EXISTS', 'Message with this id already exists'));
    const dup = await send({ to, rules: ['rcs'], body: 'Sent before' });
    await settle(s());
    assert.equal((await get(dup)).status, 'sent');

    peer.script.push(googleError(400, 'INVALID_ARGUMENT', 'Invalid content'));
    const invalid = await send({ to, rules: ['rcs'], body: 'Bad' });
    await settle(s());
    const rejected = await get(invalid);
    assert.equal(rejected.status, 'failed');
    assert.equal(rejected.statusDetails.attempts[0].providerCode, 'INVALID_ARGUMENT');

    // The access token is refused: it is dropped and the retry fetches a new one.
    const tokensBefore = issued;
    peer.script.push(googleError(401, 'UNAUTHENTICATED', 'Token expired'));
    const reauth = await send({ to, rules: ['rcs'], body: 'New token' });
    await settle(s());
    clock.advance(40_000);
    await settle(s());
    assert.equal((await get(reauth)).status, 'sent');
    assert.equal(issued, tokensBefore + 1);

    // Reachable yesterday, not today: nothing was sent, so SMS takes it.
    peer.script.push(googleError(404, 'NOT_FOUND', 'Requested entity was not found.'));
    const stale = await send({ to, rules: ['rcs', 'sms'], body: 'Stale capability' });
    await settle(s());
    assert.deepEqual((await get(stale)).statusDetails.attempts.map((a: { channel: string; outcome: string; reason?: string }) => [a.channel, a.outcome, a.reason]),
      [['rcs', 'skipped', 'NoAddress'], ['sms', 'accepted', undefined]]);

    const from = peer.seen.length;
    const long = await send({ to: { phoneNumber: '447700900555' }, rules: ['rcs'], body: 'x'.repeat(3073) });
    await settle(s());
    assert.equal((await get(long)).statusDetails.attempts[0].providerCode, 'TextTooLong');
    assert.equal(since(from).length, 0, 'refused before any request');
  });
});
