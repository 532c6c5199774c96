import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { eventsFor, settle } from '../messages/helpers.js';
import { channelApi, scriptedPeer } from './helpers.js';

/**
 * The `mms` channel's `http` provider against a local gateway (channels.md §3, sms.md §8.2): the
 * templated request with subject, text and media URLs, `customBody.mms`, the MMS country list and
 * the 1 MB / 5000-character limits (Branch falling back to an `sms` gateway on the same peer),
 * receipts and inbound media through `/channels/mms/callback`.
 */
let n = 0;
/** A photo the gateway serves to its own credentials only (media of inbound messages). */
const PHOTO = Buffer.from([0xff, 0xd8, 0xff, ...Buffer.from('a dented box')]);
const gateway = scriptedPeer((last, req, res) => {
  if (last.method === 'GET' && last.path.startsWith('/m/')) {
    if (req.headers.authorization !== 'Bearer gw-token') return res.writeHead(401).end();
    return last.path === '/m/1.jpg' ? res.writeHead(200, { 'content-type': 'image/jpeg' }).end(PHOTO) : res.writeHead(404).end();
  }
  last.answeredId = `${last.path.slice(1, 4)}-${++n}`;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(last.path.startsWith('/mms') ? { id: last.answeredId } : { messages: [{ id: last.answeredId }] }));
});
let base = '';
before(async () => {
  base = await gateway.start();
});
after(() => gateway.stop());

const SECRET = 'mms-callback-secret';
const settings = () => ({
  sendUrl: `${base}/mms`,
  auth: { type: 'bearer', token: 'gw-token' },
  bodyTemplate: '{"to":"{{to}}","from":"{{from}}","subject":"{{subject}}","text":"{{text}}","media":{{mediaUrls}},"ref":"{{messageId}}"}',
  responseIdPath: '/id',
  defaultFrom: '447700900001',
  countries: ['GBR', 'USA'],
  callbackSecret: SECRET,
  receipt: { idPath: '/id', statusPath: '/status', statusMap: { DELIVERED: 'delivered', UNDELIVERABLE: 'failed' }, errorCodePath: '/error' },
  inbound: { fromPath: '/from', toPath: '/to', textPath: '/text', subjectPath: '/subject', mediaPath: '/media' },
});
const UK = '447400123456';
const DE = '4915112345678';

eachDatabase('mms channel (HTTP MMS gateway peer)', (dialect) => {
  const s = useServer(dialect);
  let space = '';
  let token = '';
  const { url, send, get, callback } = channelApi(s, () => space, () => token, { channelId: 'mms', header: 'authorization', sign: () => `Bearer ${SECRET}` });
  const requestsSince = (from: number) => gateway.seen.slice(from);
  const attempts = (m: any) => m.statusDetails.attempts.map((a: any) => [a.channel, a.outcome, a.providerCode ?? a.reason]);
  const upload = async (name: string, type: string, bytes: number) => {
    const res = await s().request({ method: 'POST', url: url('/content'), payload: { name, type, data: Buffer.alloc(bytes, 7).toString('base64') } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().url as string;
  };

  it('configures the channel: bad settings refused with the validation body, secrets masked', async () => {
    space = await s().createSpace('mms');
    token = await s().createToken(space, ['msg:any:s', 'msg:r']);
    const bad = await s().request({ method: 'PUT', url: url('/channels/mms'), payload: { enabled: true, provider: 'http', settings: {
      sendUrl: 'ftp://gateway', bodyTemplate: '{"media":"{{mediaUrls}}"}', countries: ['GB', 'USA'], defaultFrom: '!',
      receipt: { idPath: 'id', statusMap: { R: 'read' } }, inbound: { mediaPath: 'media' },
    } } });
    assert.equal(bad.statusCode, 400, bad.body);
    const body = bad.json();
    assert.equal(body.code, 'ValidationFailed');
    assert.equal(body.status, 400);
    assert.equal(typeof body.requestId, 'string');
    assert.deepEqual(body.validationFailures.map((f: { paramName: string }) => f.paramName).sort(), [
      'settings.bodyTemplate', 'settings.callbackSecret', 'settings.countries[0]', 'settings.defaultFrom', 'settings.inbound.mediaPath',
      'settings.receipt.idPath', 'settings.receipt.statusMap.R', 'settings.sendUrl',
    ]);
    assert.equal((await s().request({ method: 'PUT', url: url('/channels/mms'), payload: { provider: 'http', settings: { ...settings(), countries: [] } } })).statusCode, 400);

    const put = await s().request({ method: 'PUT', url: url('/channels/mms'), payload: { enabled: true, provider: 'http', settings: settings() } });
    assert.equal(put.statusCode, 201, put.body);
    const masked = { ...settings(), callbackSecret: '********', auth: { type: 'bearer', token: '********' } };
    assert.deepEqual(put.json().settings, masked);
    assert.equal((await s().request({ method: 'PUT', url: url('/channels/mms'), payload: { enabled: true, provider: 'http', settings: masked } })).statusCode, 200);
    const sms = await s().request({ method: 'PUT', url: url('/channels/sms'), payload: { enabled: true, provider: 'http', settings: {
      sendUrl: `${base}/sms`, bodyTemplate: '{"to":"{{to}}","text":"{{text}}"}', responseIdPath: '/messages/0/id', defaultFrom: 'ACME',
    } } });
    assert.equal(sms.statusCode, 201, sms.body);
  });

  it('sends the subject, the text and the media by URL; parts MMS cannot attach become links', async () => {
    const from = gateway.seen.length;
    const photo = await upload('photo.jpg', 'image/jpeg', 2048);
    const id = await send({
      to: { phoneNumber: `+${UK}` }, rules: ['mms', 'sms'], title: 'Your order', body: 'Here is "it"',
      messageParts: [
        { type: 'image/jpeg', url: photo },
        { type: 'video/mp4', url: 'https://cdn.example.com/clip.mp4', size: 500_000 },
        { type: 'text/vcard', url: 'https://cdn.example.com/shop.vcf' },
        { type: 'application/pdf', url: 'https://cdn.example.com/invoice.pdf' },
      ],
    });
    await settle(s());
    const [req, ...others] = requestsSince(from);
    assert.equal(others.length, 0);
    assert.equal(req!.path, '/mms');
    assert.equal(req!.headers.authorization, 'Bearer gw-token');
    assert.deepEqual(req!.body, {
      to: UK, from: '447700900001', subject: 'Your order', text: 'Here is "it"\nhttps://cdn.example.com/invoice.pdf',
      media: [photo, 'https://cdn.example.com/clip.mp4', 'https://cdn.example.com/shop.vcf'], ref: id,
    });
    const sent = await get(id);
    assert.equal(sent.status, 'sent');
    assert.deepEqual(attempts(sent), [['mms', 'accepted', undefined]]);
    assert.equal(sent.statusDetails.attempts[0].providerMessageId, req!.answeredId);
    const [event] = await eventsFor(s(), id);
    assert.deepEqual(event!.payload.channelData, { mms: { phoneNumberCountryCode: 'GB', from: '447700900001', subject: 'Your order', mediaCount: 3 } });
    assert.deepEqual(event!.payload.details.additionalInfo, { to: UK, successful: true, providerMessageId: req!.answeredId });
  });

  it('sends customBody.mms as given, and refuses a malformed one at request time', async () => {
    const from = gateway.seen.length;
    const id = await send({
      to: { phoneNumber: UK }, rules: ['mms'], body: 'not this',
      customBody: { mms: { from: 'ACME', subject: 'Hi {{profile.phoneNumber}}', body: 'Custom text', mediaUrls: ['https://cdn.example.com/a.png'] } },
    });
    await settle(s());
    assert.deepEqual(requestsSince(from)[0]!.body, { to: UK, from: 'ACME', subject: `Hi ${UK}`, text: 'Custom text', media: ['https://cdn.example.com/a.png'], ref: id });
    const bad = await s().request({ method: 'POST', url: url('/messages'), token, payload: { to: { phoneNumber: UK }, rules: ['mms'], customBody: { mms: { body: 'x', mediaUrls: ['ftp://x'], from: 'a' } } } });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(bad.json().validationFailures.map((f: { paramName: string }) => f.paramName).sort(), ['customBody.mms.from', 'customBody.mms.mediaUrls']);
  });

  it('a country without MMS, or media over 1 MB, is refused with a code and Branch falls back to sms', async () => {
    const from = gateway.seen.length;
    const abroad = await send({ to: { phoneNumber: DE }, rules: ['mms', 'sms'], body: 'Look', messageParts: [{ type: 'image/png', url: 'https://cdn.example.com/a.png' }] });
    const big = await upload('big.png', 'image/png', 1_000_001);
    const heavy = await send({ to: { phoneNumber: UK }, rules: ['mms', 'sms'], body: 'Heavy', messageParts: [{ type: 'image/png', url: big }] });
    const declared = await send({ to: { phoneNumber: UK }, rules: ['mms', 'sms'], body: 'Said so', messageParts: [{ type: 'video/mp4', url: 'https://cdn.example.com/v.mp4', size: 1_200_000 }] });
    await settle(s());
    const seen = requestsSince(from);
    assert.deepEqual(seen.map((r) => r.path), ['/sms', '/sms', '/sms'], 'nothing reached the MMS gateway');
    assert.deepEqual(seen.map((r) => r.body.text).sort(), [`Heavy\n${big}`, 'Look\nhttps://cdn.example.com/a.png', 'Said so\nhttps://cdn.example.com/v.mp4']);
    const [a, h, d] = [await get(abroad), await get(heavy), await get(declared)];
    assert.deepEqual(attempts(a), [['mms', 'rejected', 'ContentNotSupported'], ['sms', 'accepted', undefined]]);
    assert.deepEqual(attempts(h), [['mms', 'rejected', 'ContentTooLong'], ['sms', 'accepted', undefined]]);
    assert.deepEqual(attempts(d), [['mms', 'rejected', 'ContentTooLong'], ['sms', 'accepted', undefined]]);
    assert.equal(a.statusDetails.channelId, 'sms');
  });

  it('refuses text over 5000 characters; sends inline media by a Content API URL', async () => {
    const long = await send({ to: { phoneNumber: UK }, rules: ['mms'], body: 'é'.repeat(5001) });
    const from = gateway.seen.length;
    const inline = await send({ to: { phoneNumber: UK }, rules: ['mms'], body: 'Photo', messageParts: [{ type: 'image/png', name: 'box.png', data: Buffer.from('png bytes').toString('base64') }] });
    const fits = await send({ to: { phoneNumber: UK }, rules: ['mms'], body: '😀'.repeat(5000) });
    await settle(s());
    assert.deepEqual(attempts(await get(long)), [['mms', 'rejected', 'ContentTooLong']]);
    assert.equal((await get(long)).status, 'failed');
    assert.equal((await get(inline)).status, 'sent');
    const [media] = gateway.seen.slice(from).find((r) => r.body?.text === 'Photo')!.body.media as string[];
    assert.match(media!, new RegExp(`/apispaces/${space}/content/[\\w-]+$`));
    const file = await s().request({ method: 'GET', url: new URL(media!).pathname, token: null });
    assert.equal(file.statusCode, 200, 'the download URL needs no credentials');
    assert.equal(file.body, 'png bytes');
    assert.equal((await get(fits)).status, 'sent');
  });

  it('applies delivered and failed receipts from the callback, only with the secret', async () => {
    const from = gateway.seen.length;
    const ok = await send({ to: { phoneNumber: UK }, rules: ['mms'], body: 'one' });
    const ko = await send({ to: { phoneNumber: UK }, rules: ['mms'], body: 'two' });
    const gone = await send({ to: { phoneNumber: UK }, rules: ['mms'], body: 'three' });
    await settle(s());
    // The three sends may reach the gateway in any order: each receipt names the one it is for.
    const idOf = (text: string) => requestsSince(from).find((r) => r.body?.text === text)!.answeredId;
    const [r1, r2, r3] = [idOf('one'), idOf('two'), idOf('three')];
    const receipt = JSON.stringify([{ id: r1, status: 'DELIVERED' }, { id: r2, status: 'UNDELIVERABLE', error: 'E30' }, { id: r3, status: 'EXPIRED' }]);
    assert.equal((await callback(receipt, null)).statusCode, 401);
    assert.equal((await callback(receipt, 'Bearer not-the-secret')).statusCode, 401);
    assert.equal((await callback(receipt)).statusCode, 200);
    await settle(s());
    assert.equal((await get(ok)).status, 'delivered');
    const failed = await get(ko);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.statusDetails.errorCode, 'Undeliverable');
    const failedEvent = (await eventsFor(s(), ko)).find((e) => e.name === 'message.failed');
    assert.deepEqual(failedEvent?.payload.details.channelStatus.mms.details, { errorCode: 'Undeliverable', carrierErrorCode: 'E30', providerStatus: 'UNDELIVERABLE' });
    // MMS reports delivered or failed only (channels.md §3): an expiry is a failure.
    const expired = await get(gone);
    assert.equal(expired.status, 'failed');
    assert.equal(expired.statusDetails.errorCode, 'Expired');
  });

  it('takes an inbound MMS with its media as parts', async () => {
    const raw = JSON.stringify({
      from: '+447400999000', to: '447700900001', subject: 'Damaged', text: 'See the photos',
      media: [{ url: `${base}/m/1.jpg`, type: 'image/jpeg' }, `${base}/m/2.vcf`, { url: 'javascript:alert(1)' }, { url: `${base}/m/3`, type: 'not a type' }],
    });
    assert.equal((await callback(raw, null)).statusCode, 401);
    assert.equal((await callback(raw)).statusCode, 200);
    await settle(s());
    const events = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space);
    assert.equal(events.length, 1);
    const inbound = events[0]!.payload as any;
    assert.equal(inbound.channel, 'mms');
    assert.deepEqual([inbound.from.phoneNumber, inbound.to, inbound.title, inbound.body], ['447400999000', { phoneNumber: '447700900001' }, 'Damaged', 'See the photos']);
    // The photo was fetched with the gateway's credentials and kept with the Content API; media the
    // gateway no longer has keep its URL.
    const [photo, ...gone] = inbound.messageParts as Array<Record<string, any>>;
    assert.equal(photo!.type, 'image/jpeg');
    assert.equal(photo!.size, PHOTO.length);
    assert.deepEqual((await s().request({ method: 'GET', url: new URL(photo!.url).pathname })).rawPayload, PHOTO);
    assert.deepEqual(gone, [
      { type: 'application/octet-stream', url: `${base}/m/2.vcf` },
      { type: 'application/octet-stream', url: `${base}/m/3` },
    ]);
    // The gateway's credentials go to its own origin only: the same file under another host name is not fetched with them.
    const elsewhere = base.replace('127.0.0.1', 'localhost');
    assert.equal((await callback(JSON.stringify({ from: '+447400999000', to: '447700900001', media: [{ url: `${elsewhere}/m/1.jpg`, type: 'image/jpeg' }] }))).statusCode, 200);
    await settle(s());
    const last = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space).at(-1)!.payload as any;
    assert.deepEqual(last.messageParts, [{ type: 'image/jpeg', url: `${elsewhere}/m/1.jpg` }]);
  });
});
