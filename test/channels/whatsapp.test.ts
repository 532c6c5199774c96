import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { ManualClock } from '../../src/lib/clock.js';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { eventsFor, settle } from '../messages/helpers.js';
import { channelApi, scriptedPeer } from './helpers.js';

/**
 * The `whatsApp` channel's `cloudApi` provider against a local peer speaking the WhatsApp Business
 * Cloud API (channels.md §6): sends, the 24-hour window, Meta's signed callbacks (receipts and
 * inbound messages) and the classification of Graph API errors.
 */
function graphPeer() {
  let n = 0;
  // The default answer: 200 with a fresh wamid. Media ids and their files, as the Cloud API serves
  // inbound media: `GET /{version}/{media-id}` names a URL, which serves the file to the same token.
  const peer = scriptedPeer((last, req, res) => {
    const media = /^\/v21\.0\/(media-[\w-]+)$/.exec(last.path);
    if (last.method === 'GET' && media) {
      if (media[1] === 'media-gone') return res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'Unsupported get request', type: 'GraphMethodException', code: 100 } }));
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ messaging_product: 'whatsapp', url: `http://${req.headers.host}/files/${media[1]}?token=short-lived`, mime_type: 'image/jpeg', file_size: MEDIA.length, id: media[1] }));
    }
    if (last.method === 'GET' && last.path.startsWith('/files/')) {
      if (req.headers.authorization !== `Bearer ${SETTINGS.accessToken}`) return res.writeHead(401).end();
      return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(MEDIA);
    }
    last.answeredId = `wamid.${++n}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ messaging_product: 'whatsapp', contacts: [{ input: last.body?.to, wa_id: last.body?.to }], messages: [{ id: last.answeredId }] }));
  });
  return {
    ...peer,
    /** Answers the next request with a Graph API error object. */
    fail(status: number, code: number, message: string, headers: Record<string, string> = {}) {
      peer.script.push((res) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ error: { message, type: 'OAuthException', code, error_subcode: 2494010, fbtrace_id: 'AbCdEf' } })));
    },
  };
}

/** An inbound image's bytes, as the peer serves them. */
const MEDIA = Buffer.from([0xff, 0xd8, 0xff, 0xe0, ...Buffer.from('a parcel on the doorstep')]);
const peer = graphPeer();
/** The servers' settings: the peer's address, known once it listens (before any suite starts its server). */
const env: Record<string, string> = {};
before(async () => {
  env.GRAPH_API_URL = await peer.start();
});
after(() => peer.stop());

const PNID = '106540352242922';
const APP_SECRET = 'app-secret-0123';
const SETTINGS = {
  phoneNumberId: PNID, wabaId: '102290129340398', displayPhoneNumber: '+44 7700 900000',
  accessToken: 'EAAG-access-token', appSecret: APP_SECRET, verifyToken: 'verify-me', apiVersion: 'v21.0',
};
const sign = (raw: string, secret = APP_SECRET) => 'sha256=' + createHmac('sha256', secret).update(raw).digest('hex');

eachDatabase('whatsApp channel (Cloud API peer)', (dialect) => {
  const clock = new ManualClock(Date.now());
  const s = useServer(dialect, { env, clock });
  let space = '';
  let token = '';
  const api = channelApi(s, () => space, () => token, { channelId: 'whatsApp', header: 'x-hub-signature-256', sign: (raw: string) => sign(raw) });
  const { url, send, get, callback } = api;
  /** A Cloud API webhook event for the configured number. */
  const event = (value: Record<string, unknown>, phoneNumberId = PNID) => JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: SETTINGS.wabaId, changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '447700900000', phone_number_id: phoneNumberId }, ...value } }] }],
  });
  const seconds = () => String(Math.floor(clock.now() / 1000));
  const inboundEvents = async () => (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space);
  const requestsSince = (from: number) => peer.seen.slice(from);

  it('configures the channel: secrets masked and kept by a masked PUT, bad settings refused', async () => {
    space = await s().createSpace('whatsapp');
    token = await s().createToken(space, ['msg:any:s', 'msg:r']);
    const bad = await s().request({ method: 'PUT', url: url('/channels/whatsApp'), payload: { enabled: true, provider: 'cloudApi', settings: { phoneNumberId: 'pn-1', apiVersion: '21', displayPhoneNumber: 'call me' } } });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.deepEqual(bad.json().validationFailures.map((f: { paramName: string }) => f.paramName).sort(),
      ['settings.accessToken', 'settings.apiVersion', 'settings.appSecret', 'settings.displayPhoneNumber', 'settings.phoneNumberId', 'settings.verifyToken']);
    const put = await s().request({ method: 'PUT', url: url('/channels/whatsApp'), payload: { enabled: true, provider: 'cloudApi', settings: SETTINGS } });
    assert.equal(put.statusCode, 201, put.body);
    const masked = { ...SETTINGS, accessToken: '********', appSecret: '********', verifyToken: '********' };
    assert.deepEqual(put.json().settings, masked);
    const again = await s().request({ method: 'PUT', url: url('/channels/whatsApp'), payload: { enabled: true, provider: 'cloudApi', settings: masked } });
    assert.equal(again.statusCode, 200, again.body);
    const read = await s().request({ method: 'GET', url: url('/channels/whatsApp') });
    assert.deepEqual(read.json().settings, masked);
  });

  it('sends a template outside the window; a free-form text there is skipped with OutsideWindow', async () => {
    const from = peer.seen.length;
    const id = await send({
      to: { phoneNumber: '+447700900111' }, rules: ['whatsApp'], body: 'for other channels',
      messageParts: [{ type: 'whatsapp/template', channels: ['whatsApp'], data: { templateName: 'order_shipped', languageCode: 'en_GB', params: ['Sam', 'SO-1'], namespace: 'ignored' } }],
    });
    await settle(s());
    const [req] = requestsSince(from);
    assert.equal(requestsSince(from).length, 1);
    assert.equal(req!.method, 'POST');
    assert.equal(req!.path, `/v21.0/${PNID}/messages`);
    assert.equal(req!.headers.authorization, 'Bearer EAAG-access-token');
    assert.deepEqual(req!.body, {
      messaging_product: 'whatsapp', recipient_type: 'individual', to: '447700900111', type: 'template',
      template: { name: 'order_shipped', language: { code: 'en_GB', policy: 'deterministic' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Sam' }, { type: 'text', text: 'SO-1' }] }] },
    });
    const sent = await get(id);
    assert.equal(sent.status, 'sent');
    assert.equal(sent.statusDetails.attempts[0].providerMessageId, req!.answeredId);

    const text = await send({ to: { phoneNumber: '447700900111' }, rules: ['whatsApp'], body: 'Free-form hello' });
    await settle(s());
    assert.equal(requestsSince(from).length, 1, 'nothing sent outside the window');
    const skipped = await get(text);
    assert.equal(skipped.status, 'failed');
    assert.equal(skipped.statusDetails.errorCode, 'OutsideWindow');
    assert.deepEqual(skipped.statusDetails.attempts.map((a: { channel: string; outcome: string; reason: string }) => [a.channel, a.outcome, a.reason]), [['whatsApp', 'skipped', 'OutsideWindow']]);
  });

  it('takes signed inbound messages, which open the window for free-form text and media', async () => {
    const raw = event({
      contacts: [{ profile: { name: 'Sam Jones' }, wa_id: '447700900222' }],
      messages: [
        { from: '447700900222', id: 'wamid.in-1', timestamp: seconds(), type: 'text', text: { body: 'Where is my order?' } },
        { from: '447700900222', id: 'wamid.in-2', timestamp: seconds(), type: 'image', image: { id: 'media-77', mime_type: 'image/jpeg', sha256: 'x', caption: 'the parcel' } },
        { from: '447700900222', id: 'wamid.in-3', timestamp: seconds(), type: 'reaction', reaction: { message_id: 'wamid.1', emoji: '👍' } },
        { from: '447700900222', id: 'wamid.in-4', timestamp: seconds(), type: 'document', document: { id: 'media-gone', mime_type: 'application/pdf', filename: 'invoice.pdf' } },
      ],
    });
    const before = (await inboundEvents()).length;
    const res = await callback(raw);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.body, '{}');
    // A change for another number of the account is not this channel's.
    assert.equal((await callback(event({ messages: [{ from: '447700900333', id: 'wamid.x', timestamp: seconds(), type: 'text', text: { body: 'other number' } }] }, '999'))).statusCode, 200);
    // Two messages of a sender without a profile: both jobs make it, neither fails.
    await settle(s());
    const events = (await inboundEvents()).slice(before);
    assert.equal(events.length, 3);
    const texts = events.map((e) => e.payload as Record<string, any>).sort((a, b) => String(a.channelData.providerMessageId).localeCompare(b.channelData.providerMessageId));
    assert.equal(texts[0]!.channel, 'whatsApp');
    assert.equal(texts[0]!.from.phoneNumber, '447700900222');
    assert.equal(texts[0]!.body, 'Where is my order?');
    assert.equal(texts[0]!.channelData.body.contact.profile.name, 'Sam Jones');
    // The image was fetched with the channel's token and kept with the Content API.
    assert.equal(texts[1]!.body, 'the parcel');
    const [image] = texts[1]!.messageParts as Array<Record<string, any>>;
    assert.equal(image!.type, 'image/jpeg');
    assert.equal(image!.providerMediaId, 'media-77');
    assert.equal(image!.size, MEDIA.length);
    const path = new URL(image!.url).pathname;
    assert.match(path, new RegExp(`^/apispaces/${space}/content/[\\w-]+$`));
    const file = await s().request({ method: 'GET', url: path });
    assert.equal(file.statusCode, 200);
    assert.deepEqual(file.rawPayload, MEDIA);
    // Media the Cloud API no longer has: the message is stored with the provider's reference.
    assert.deepEqual(texts[2]!.messageParts, [{ type: 'application/pdf', name: 'invoice.pdf', providerMediaId: 'media-gone' }]);
    const stored = await s().request({ method: 'GET', url: url(`/messages/inbounds/${texts[0]!.id}`), token });
    assert.equal(stored.statusCode, 200, stored.body);
    assert.equal(stored.json().channelData.providerMessageId, 'wamid.in-1');
    // Marking it read tells WhatsApp (the sender sees blue ticks), after the status is stored.
    const seenBefore = peer.seen.length;
    const read = await s().request({ method: 'POST', url: url(`/messages/inbounds/${texts[0]!.id}/statuses/read`), token, payload: { timestamp: new Date().toISOString() } });
    assert.ok(read.statusCode < 300, read.body);
    await settle(s());
    assert.deepEqual(requestsSince(seenBefore).map((r) => r.body), [{ messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.in-1' }]);

    const from = peer.seen.length;
    const id = await send({
      to: { phoneNumber: '447700900222' }, rules: ['whatsApp'], body: 'It ships today',
      messageParts: [{ type: 'image/png', url: 'https://cdn.example.com/van.png' }, { type: 'text/html', url: 'https://shop.example.com/track/1' }],
      channelOptions: { whatsApp: { enableUrlPreview: true } },
    });
    await settle(s());
    const reqs = requestsSince(from);
    assert.deepEqual(reqs.map((r) => r.body), [
      { messaging_product: 'whatsapp', recipient_type: 'individual', to: '447700900222', type: 'text', text: { body: 'It ships today\nhttps://shop.example.com/track/1', preview_url: true } },
      { messaging_product: 'whatsapp', recipient_type: 'individual', to: '447700900222', type: 'image', image: { link: 'https://cdn.example.com/van.png' } },
    ]);
    const sent = await get(id);
    assert.equal(sent.status, 'sent');
    assert.equal(sent.statusDetails.attempts[0].providerMessageId, reqs[0]!.answeredId);

    // Inline media: the Cloud API takes media by link, so the file is served from the Content API.
    const inlineFrom = peer.seen.length;
    await send({ to: { phoneNumber: '447700900222' }, rules: ['whatsApp'], messageParts: [{ type: 'application/pdf', name: 'invoice.pdf', data: Buffer.from('%PDF-1.4 invoice').toString('base64') }] });
    await settle(s());
    const doc = requestsSince(inlineFrom)[0]!.body;
    assert.equal(doc.type, 'document');
    assert.equal(doc.document.filename, 'invoice.pdf');
    assert.equal((await s().request({ method: 'GET', url: new URL(doc.document.link).pathname, token: null })).body, '%PDF-1.4 invoice');
  });

  it('applies status callbacks: delivered then read; failed with the Cloud API error code', async () => {
    const id = await send({ to: { phoneNumber: '447700900222' }, rules: ['whatsApp'], body: 'Status test' });
    await settle(s());
    const wamid = (await get(id)).statusDetails.attempts[0].providerMessageId as string;
    const status = (st: string, extra: Record<string, unknown> = {}) => callback(event({ statuses: [{ id: wamid, status: st, timestamp: seconds(), recipient_id: '447700900222', ...extra }] }));
    assert.equal((await status('delivered')).statusCode, 200);
    await settle(s());
    assert.equal((await get(id)).status, 'delivered');
    assert.equal((await status('read')).statusCode, 200);
    await settle(s());
    assert.equal((await get(id)).status, 'read');

    const other = await send({ to: { phoneNumber: '447700900222' }, rules: ['whatsApp'], body: 'Will fail' });
    await settle(s());
    const otherId = (await get(other)).statusDetails.attempts[0].providerMessageId as string;
    const failed = await callback(event({ statuses: [{ id: otherId, status: 'failed', timestamp: seconds(), recipient_id: '447700900222', errors: [{ code: 131026, title: 'Message undeliverable', message: 'Message undeliverable' }] }] }));
    assert.equal(failed.statusCode, 200);
    await settle(s());
    const m = await get(other);
    assert.equal(m.status, 'failed');
    assert.equal(m.statusDetails.errorCode, '131026');
    const failedEvent = (await eventsFor(s(), other)).find((e) => e.name === 'message.failed');
    assert.deepEqual(failedEvent?.payload.details.channelStatus.whatsApp.details, { errorCode: '131026', failureReason: 'Message undeliverable' });
  });

  it('refuses bad signatures and verify tokens; a signed unreadable body is a 4xx or ignored, never a 500', async () => {
    const before = (await inboundEvents()).length;
    const raw = event({ messages: [{ from: '447700900444', id: 'wamid.forged', timestamp: seconds(), type: 'text', text: { body: 'forged' } }] });
    assert.equal((await callback(raw, sign(raw, 'wrong-secret'))).statusCode, 401);
    assert.equal((await callback(raw, null)).statusCode, 401);
    assert.equal((await callback(raw, 'sha256=zz')).statusCode, 401);

    const verify = (q: string) => s().request({ method: 'GET', url: url(`/channels/whatsApp/callback?${q}`), token: null });
    const ok = await verify('hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444');
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.body, '1158201444');
    assert.match(String(ok.headers['content-type']), /^text\/plain/);
    assert.equal((await verify('hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1')).statusCode, 403);
    assert.equal((await verify('hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1')).statusCode, 403);

    const junk = await callback('not json');
    assert.ok(junk.statusCode >= 400 && junk.statusCode < 500, `${junk.statusCode}`);
    for (const shape of ['[]', '{"object":"whatsapp_business_account","entry":"x"}', '{"object":"page","entry":[]}',
      event({ messages: [{ from: 123, type: 'image' }, { from: '447700900444', type: 'image', image: {} }, null], statuses: [{ id: 5 }, { id: 'w', status: 'deleted' }, 'x'], contacts: 'x' })]) {
      const res = await callback(shape);
      assert.equal(res.statusCode, 200, `${shape}: ${res.body}`);
    }
    await settle(s());
    assert.equal((await inboundEvents()).length, before, 'nothing stored');
  });

  it('waits a while for inbound media the Cloud API cannot serve, then stores the message without the file', async () => {
    const image = (id: string, wamid: string) => event({ messages: [{ from: '447700900666', id: wamid, timestamp: seconds(), type: 'image', image: { id, mime_type: 'image/jpeg' } }] });
    const partsOf = async (wamid: string) => {
      const e = (await inboundEvents()).find((x) => (x.payload as any).channelData.providerMessageId === wamid);
      return e && (e.payload as { messageParts: Array<Record<string, unknown>> }).messageParts;
    };
    const busy = (res: import('node:http').ServerResponse) => res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'Service temporarily unavailable', code: 2 } }));
    // Unavailable once: the message waits for the next run of its job, then has its file.
    peer.script.push(busy);
    assert.equal((await callback(image('media-later', 'wamid.m1'))).statusCode, 200);
    await settle(s());
    assert.equal(await partsOf('wamid.m1'), undefined, 'not stored while its media may still come');
    clock.advance(3_600_000);
    await settle(s());
    assert.equal((await partsOf('wamid.m1'))?.[0]?.size, MEDIA.length);
    // Unavailable on every run: after four runs it is stored with the provider's reference.
    for (let i = 0; i < 4; i++) peer.script.push(busy);
    assert.equal((await callback(image('media-never', 'wamid.m2'))).statusCode, 200);
    for (let i = 0; i < 4; i++) {
      await settle(s());
      clock.advance(3_600_000);
    }
    await settle(s());
    assert.deepEqual(await partsOf('wamid.m2'), [{ type: 'image/jpeg', providerMediaId: 'media-never' }]);
  });

  it('classifies Cloud API errors: throttling retries, re-engagement and bad tokens are rejected', async () => {
    const template = { type: 'whatsapp/template', channels: ['whatsApp'], data: JSON.stringify({ templateName: 'hello_world', languageCode: 'en_US' }) };
    const to = { phoneNumber: '447700900555' };
    peer.fail(429, 130429, 'Rate limit hit', { 'retry-after': '1' });
    await api.sendThrottledOnce({ to, rules: ['whatsApp'], messageParts: [template] }, clock);
    assert.deepEqual(peer.seen.at(-1)!.body.template, { name: 'hello_world', language: { code: 'en_US', policy: 'deterministic' } });

    for (const [status, code, expected] of [[400, 131047, 'OutsideWindow'], [401, 190, 'Unauthorized'], [400, 131026, 'Undeliverable'], [400, 100, '100']] as const) {
      peer.fail(status, code, `error ${code}`);
      const id = await send({ to, rules: ['whatsApp'], messageParts: [template] });
      await settle(s());
      const m = await get(id);
      assert.equal(m.status, 'failed', `${code}`);
      assert.equal(m.statusDetails.attempts[0].outcome, 'rejected');
      assert.equal(m.statusDetails.attempts[0].providerCode, expected);
    }

    // Only the configured number sends; a text past 4096 characters is refused before any request.
    const from = peer.seen.length;
    const other = await send({ to, rules: ['whatsApp'], messageParts: [template], channelOptions: { whatsApp: { phoneNumber: '447700900999' } } });
    const same = await send({ to, rules: ['whatsApp'], messageParts: [template], channelOptions: { whatsApp: { phoneNumber: '+447700900000' } } });
    const long = await send({ to: { phoneNumber: '447700900222' }, rules: ['whatsApp'], body: 'x'.repeat(4097) });
    await settle(s());
    assert.equal((await get(other)).statusDetails.attempts[0].providerCode, 'UnknownSender');
    assert.equal((await get(same)).status, 'sent');
    assert.equal((await get(long)).statusDetails.attempts[0].providerCode, 'TextTooLong');
    assert.equal(requestsSince(from).length, 1);
  });
});
