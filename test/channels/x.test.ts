import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import { ManualClock } from '../../src/lib/clock.js';
import { oauth1Header, signatureBaseString } from '../../src/channels/x/oauth1.js';
import { dropLocation, eachDatabase, startServer, useServer, type TestServer } from '../helpers/harness.js';
import { channelApi, scriptedPeer } from './helpers.js';
import { settle } from '../messages/helpers.js';

/**
 * The `twitterDm` channel's `xApi` provider against a local peer speaking the X API v2 DM
 * endpoint (channels.md §8): OAuth 1.0a signatures the peer checks, bearer tokens, the
 * classification of X errors, the Account Activity CRC and signed DM events as inbound messages.
 */

/** RFC 3986 encoding as RFC 5849 §3.6 asks, written out here so the test does not trust the code under test. */
const enc = (v: string) => encodeURIComponent(v).replace(/[!*'()]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

/** The HMAC-SHA1 signature of a request per RFC 5849 §3.4: base string of method, URI without query, sorted parameters. */
function expectedSignature(method: string, url: string, oauth: Record<string, string>, consumerSecret: string, tokenSecret: string, form: Array<[string, string]> = []): string {
  const u = new URL(url);
  const pairs: Array<[string, string]> = [...u.searchParams, ...form, ...Object.entries(oauth).filter(([k]) => k !== 'oauth_signature')].map(([k, v]) => [enc(k), enc(v)]);
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  const base = `${method}&${enc(`${u.protocol}//${u.host}${u.pathname}`)}&${enc(pairs.map(([k, v]) => `${k}=${v}`).join('&'))}`;
  return createHmac('sha1', `${enc(consumerSecret)}&${enc(tokenSecret)}`).update(base).digest('base64');
}

/** The parameters of an `Authorization: OAuth …` header, decoded. */
function oauthParams(headerValue: string): Record<string, string> {
  assert.match(headerValue, /^OAuth /);
  const out: Record<string, string> = {};
  for (const m of headerValue.slice(6).matchAll(/([\w]+)="([^"]*)"/g)) out[m[1]!] = decodeURIComponent(m[2]!);
  return out;
}

describe('OAuth 1.0a signing (RFC 5849)', () => {
  it('builds the RFC 5849 §3.4.1 example base string', () => {
    const base = signatureBaseString('POST', 'http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b', {
      oauth_consumer_key: '9djdj82h48djs9d2', oauth_token: 'kkk9d7dh3k39sjv7', oauth_signature_method: 'HMAC-SHA1', oauth_timestamp: '137131201', oauth_nonce: '7d8f3e4a',
    }, [['c2', ''], ['a3', '2 q']]);
    const normalised = 'a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7';
    assert.equal(base, `POST&http%3A%2F%2Fexample.com%2Frequest&${enc(normalised)}`);
  });

  it('signs the X documentation example as RFC 5849 computes it', () => {
    const req = {
      method: 'POST', url: 'https://api.twitter.com/1.1/statuses/update.json?include_entities=true',
      consumerKey: 'xvz1evFS4wEEPTGEFPHBog', consumerSecret: 'kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw',
      token: '370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb', tokenSecret: 'LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE',
      nonce: 'kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg', timestamp: 1318622958,
      params: [['status', 'Hello Ladies + Gentlemen, a signed OAuth request!']] as Array<[string, string]>,
    };
    const params = oauthParams(oauth1Header(req));
    assert.deepEqual(Object.keys(params).sort(), ['oauth_consumer_key', 'oauth_nonce', 'oauth_signature', 'oauth_signature_method', 'oauth_timestamp', 'oauth_token', 'oauth_version']);
    assert.equal(params.oauth_signature, expectedSignature('POST', req.url, params, req.consumerSecret, req.tokenSecret, req.params));
    assert.equal(params.oauth_signature, 'hCtSmYh+iHYCEqBWrE7C7hYmtUk=');
    // Percent-encoded in the header itself.
    assert.match(oauth1Header(req), /oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D"/);
  });
});

const CONSUMER_SECRET = 'x-consumer-secret-0123';
const TOKEN_SECRET = 'x-access-token-secret';
const USER_ID = '1500000000000000001';
const SETTINGS = { userId: USER_ID, consumerKey: 'x-consumer-key', consumerSecret: CONSUMER_SECRET, accessToken: `${USER_ID}-access-token`, accessTokenSecret: TOKEN_SECRET };
const sign = (raw: string, secret = CONSUMER_SECRET) => 'sha256=' + createHmac('sha256', secret).update(raw).digest('base64');

/** A peer answering like the X API DM endpoint; it checks OAuth 1.0a signatures itself. */
function xPeer() {
  let origin = '';
  let n = 0;
  /** Files the peer serves at `/media/{name}` (media URLs of messages). */
  const files = new Map<string, { type: string; bytes: Buffer }>();
  /** What `GET /2/dm_events` lists, newest first. */
  const dmEvents: any[] = [];
  /** Media upload sessions by media id: what INIT said, and the APPEND requests' raw bodies. */
  const uploads = new Map<string, { init: any; segments: Buffer[]; statusChecks: number }>();
  const json = (res: http.ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const peer = scriptedPeer((entry, req, res) => {
    const url = new URL(req.url!, 'http://peer');
    const user = /^\/2\/users\/by\/username\/(\w+)$/.exec(url.pathname);
    if (user) {
      // X answers an unknown name with 200 and an errors array.
      return json(res, 200, user[1] === 'jack' ? { data: { id: '12', name: 'Jack', username: 'jack' } } : { errors: [{ title: 'Not Found Error', detail: `Could not find user with username: [${user[1]}].` }] });
    }
    const file = /^\/media\/([\w.-]+)$/.exec(url.pathname);
    if (file) {
      const f = files.get(file[1]!);
      return f ? res.writeHead(200, { 'content-type': f.type }).end(f.bytes) : res.writeHead(404).end('not found');
    }
    if (url.pathname === '/2/media/upload/initialize') {
      entry.answeredId = `71${++n}000`;
      uploads.set(entry.answeredId, { init: entry.body, segments: [], statusChecks: 0 });
      return json(res, 200, { data: { id: entry.answeredId, media_key: `3_${entry.answeredId}`, expires_after_secs: 86_400 } });
    }
    const step = /^\/2\/media\/upload\/(\d+)\/(append|finalize)$/.exec(url.pathname);
    if (step) {
      const upload = uploads.get(step[1]!)!;
      if (step[2] === 'append') {
        upload.segments.push(entry.raw);
        return res.writeHead(204).end();
      }
      // GIFs and videos are processed asynchronously: the sender has to ask for the status.
      const processing = upload.init.media_category === 'dm_image' ? {} : { processing_info: { state: 'pending', check_after_secs: 0 } };
      return json(res, 200, { data: { id: step[1], media_key: `3_${step[1]}`, size: upload.init.total_bytes, ...processing } });
    }
    if (url.pathname === '/2/dm_events') {
      // Newest first, two to a page (X may return fewer than max_results).
      const start = Number(url.searchParams.get('pagination_token')?.slice(4) ?? 0);
      const page = dmEvents.slice(start, start + 2);
      const next = start + 2 < dmEvents.length ? `next${String(start + 2).padStart(12, '0')}` : undefined;
      const users = [...new Set(page.map((e) => e.sender_id))].map((id) => ({ id, name: 'Someone', username: `user${id}` }));
      return json(res, 200, { ...(page.length ? { data: page, includes: { users } } : {}), meta: { result_count: page.length, ...(next ? { next_token: next } : {}) } });
    }
    if (url.pathname === '/2/media/upload' && url.searchParams.get('command') === 'STATUS') {
      const upload = uploads.get(url.searchParams.get('media_id')!)!;
      const state = ++upload.statusChecks < 2 ? 'in_progress' : 'succeeded';
      return json(res, 200, { data: { id: url.searchParams.get('media_id'), processing_info: { state, check_after_secs: 0, progress_percent: state === 'succeeded' ? 100 : 50 } } });
    }
    entry.answeredId = `17000000000000${++n}`;
    const participant = /\/with\/(\d+)\//.exec(req.url!)?.[1] ?? '0';
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ data: { dm_conversation_id: `${USER_ID}-${participant}`, dm_event_id: entry.answeredId } }));
  }, (_entry, req, res) => {
    const auth = String(req.headers.authorization ?? '');
    if (!auth.startsWith('OAuth ')) return false;
    const p = oauthParams(auth);
    const ok = p.oauth_consumer_key === SETTINGS.consumerKey && p.oauth_token === SETTINGS.accessToken
      && p.oauth_signature === expectedSignature(req.method!, `${origin}${req.url}`, p, CONSUMER_SECRET, TOKEN_SECRET);
    if (ok) return false;
    res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ title: 'Unauthorized', type: 'about:blank', status: 401, detail: 'Unauthorized' }));
    return true;
  });
  return {
    ...peer, files, uploads, dmEvents,
    /** Answers the next request with an X API problem object. */
    fail(status: number, type: string, detail: string, headers: Record<string, string> = {}) {
      peer.script.push((res) => res.writeHead(status, { 'content-type': 'application/problem+json', ...headers }).end(JSON.stringify({ title: 'Error', type, detail, status })));
    },
    start: async () => (origin = await peer.start()),
  };
}

const peer = xPeer();
/** The servers' settings: the peer's address, known once it listens (before any suite starts its server). */
const env: Record<string, string> = {};
before(async () => {
  env.X_API_URL = await peer.start();
});
after(() => peer.stop());

eachDatabase('twitterDm channel (X API peer)', (dialect) => {
  const clock = new ManualClock(Date.now());
  const s = useServer(dialect, { env, clock });
  let space = '';
  let token = '';
  const api = channelApi(s, () => space, () => token, { channelId: 'twitterDm', header: 'x-twitter-webhooks-signature', sign: (raw: string) => sign(raw) });
  const { url, send, get, callback } = api;
  const inboundEvents = async () => {
    const events = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space);
    await s().container.platform.events.loadPayloads(events);
    return events.map((e) => e.payload as any);
  };
  const dm = (id: string, sender: string, text: string) => ({
    type: 'message_create', id, created_timestamp: '1700000000123',
    message_create: { target: { recipient_id: sender === USER_ID ? '2244994945' : USER_ID }, sender_id: sender, message_data: { text, entities: {} } },
  });
  const to = { twitterId: '2244994945' };

  it('configures the channel: secrets masked and kept by a masked PUT, bad settings refused', async () => {
    space = await s().createSpace('x');
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'prof:ra']);
    const bad = await s().request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: true, provider: 'xApi', settings: { userId: '@acme', consumerKey: '' } } });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.deepEqual(bad.json().validationFailures.map((f: { paramName: string }) => f.paramName).sort(),
      ['settings.accessToken', 'settings.accessTokenSecret', 'settings.consumerKey', 'settings.consumerSecret', 'settings.userId']);
    const bearerOnly = await s().request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: true, provider: 'xApi', settings: { userId: USER_ID, bearerToken: 'b' } } });
    assert.equal(bearerOnly.statusCode, 400, 'consumerSecret is needed for webhooks');
    assert.deepEqual(bearerOnly.json().validationFailures.map((f: { paramName: string }) => f.paramName), ['settings.consumerSecret']);
    const put = await s().request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: true, provider: 'xApi', settings: SETTINGS } });
    assert.equal(put.statusCode, 201, put.body);
    const masked = { ...SETTINGS, consumerSecret: '********', accessToken: '********', accessTokenSecret: '********' };
    assert.deepEqual(put.json().settings, masked);
    const again = await s().request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: true, provider: 'xApi', settings: masked } });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual((await s().request({ method: 'GET', url: url('/channels/twitterDm') })).json().settings, masked);
  });

  it('sends a text DM signed with OAuth 1.0a; the DM event id becomes the provider message id', async () => {
    const from = peer.seen.length;
    const id = await send({ to, rules: ['twitterDm'], body: 'Your order shipped' });
    await settle(s());
    const reqs = peer.seen.slice(from);
    assert.equal(reqs.length, 1);
    const req = reqs[0]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/2/dm_conversations/with/2244994945/messages');
    assert.deepEqual(req.body, { text: 'Your order shipped' });
    assert.match(String(req.headers.authorization), /^OAuth /);
    assert.equal(req.headers['content-type'], 'application/json');
    const m = await get(id);
    assert.equal(m.status, 'sent', JSON.stringify(m.statusDetails));
    assert.equal(m.statusDetails.attempts[0].providerMessageId, req.answeredId);

    // Too long a text is refused before any request.
    const long = await send({ to, rules: ['twitterDm'], body: 'x'.repeat(10_001) });
    await settle(s());
    assert.equal(peer.seen.length - from, 1);
    const failed = await get(long);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.statusDetails.attempts[0].providerCode, 'TextTooLong');
  });

  it('uploads the first image, GIF or video through X\'s media upload and attaches it to the DM', async () => {
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(5000)]);
    peer.files.set('parcel.png', { type: 'image/png', bytes: png });
    let from = peer.seen.length;
    const withImage = await send({ to, rules: ['twitterDm'], body: 'See the parcel', messageParts: [
      { type: 'image/png', url: `${env.X_API_URL}/media/parcel.png` }, { type: 'text/html', url: 'https://example.com/track' }, { type: 'image/jpeg', url: 'https://cdn.example.com/second.jpg' },
    ] });
    await settle(s());
    let reqs = peer.seen.slice(from);
    const imageId = reqs[1]?.answeredId;
    assert.deepEqual(reqs.map((r) => `${r.method} ${r.path}`), [
      'GET /media/parcel.png', 'POST /2/media/upload/initialize', `POST /2/media/upload/${imageId}/append`, `POST /2/media/upload/${imageId}/finalize`, 'POST /2/dm_conversations/with/2244994945/messages',
    ]);
    assert.deepEqual(reqs[1]!.body, { media_type: 'image/png', total_bytes: png.length, media_category: 'dm_image' });
    // The peer checked each step's OAuth signature; the segment is multipart with its index.
    assert.match(String(reqs[2]!.headers['content-type']), /^multipart\/form-data; boundary=/);
    assert.match(reqs[2]!.raw.toString('latin1'), /name="segment_index"\r\n\r\n0\r\n/);
    assert.ok(reqs[2]!.raw.includes(png));
    // One attachment: the second image travels as a link, like the HTML part.
    assert.deepEqual(reqs[4]!.body, { text: 'See the parcel\nhttps://example.com/track\nhttps://cdn.example.com/second.jpg', attachments: [{ media_id: imageId }] });
    const sent = await get(withImage);
    assert.equal(sent.status, 'sent', JSON.stringify(sent.statusDetails));

    // A file of this server's content store is read from the store, not over HTTP (PUBLIC_BASE_URL
    // does not even reach the test server). A GIF is processed by X: the send waits for it.
    const gif = Buffer.concat([Buffer.from('GIF89a'), randomBytes(3000)]);
    const upload = await s().request({ method: 'POST', url: url('/content'), payload: { name: 'wave.gif', type: 'image/gif', data: gif.toString('base64') } });
    assert.equal(upload.statusCode, 200, upload.body);
    from = peer.seen.length;
    const mediaOnly = await send({ to, rules: ['twitterDm'], messageParts: [{ type: 'image/gif', url: upload.json().url }] });
    await settle(s());
    reqs = peer.seen.slice(from);
    const gifId = reqs[0]?.answeredId;
    assert.deepEqual(reqs.map((r) => `${r.method} ${r.path}`), [
      'POST /2/media/upload/initialize', `POST /2/media/upload/${gifId}/append`, `POST /2/media/upload/${gifId}/finalize`,
      `GET /2/media/upload?command=STATUS&media_id=${gifId}`, `GET /2/media/upload?command=STATUS&media_id=${gifId}`, 'POST /2/dm_conversations/with/2244994945/messages',
    ]);
    assert.equal(reqs[0]!.body.media_category, 'dm_gif');
    assert.ok(reqs[1]!.raw.includes(gif));
    assert.deepEqual(reqs.at(-1)!.body, { attachments: [{ media_id: gifId }] }, 'no text: the attachment alone');
    assert.equal((await get(mediaOnly)).status, 'sent');
  });

  it('sends customBody {text, mediaUrl}: a video in 4 MiB segments; media it cannot send fails the message', async () => {
    const mp4 = randomBytes(9 * 1024 * 1024);
    peer.files.set('clip.mp4', { type: 'video/mp4', bytes: mp4 });
    peer.files.set('terms.pdf', { type: 'application/pdf', bytes: Buffer.from('%PDF-1.4') });
    let from = peer.seen.length;
    const id = await send({ to, rules: ['twitterDm'], body: 'not this', customBody: { twitterDm: { text: 'Your unboxing video', mediaUrl: `${env.X_API_URL}/media/clip.mp4` } } });
    await settle(s());
    const reqs = peer.seen.slice(from);
    const mediaId = reqs[1]?.answeredId;
    assert.deepEqual(reqs[1]!.body, { media_type: 'video/mp4', total_bytes: mp4.length, media_category: 'dm_video' });
    const segments = reqs.filter((r) => r.path === `/2/media/upload/${mediaId}/append`);
    assert.equal(segments.length, 3);
    segments.forEach((r, i) => {
      assert.match(r.raw.toString('latin1'), new RegExp(`name="segment_index"\r\n\r\n${i}\r\n`));
      assert.ok(r.raw.includes(mp4.subarray(i * 4 * 1024 * 1024, Math.min((i + 1) * 4 * 1024 * 1024, mp4.length))), `segment ${i}`);
    });
    assert.deepEqual(reqs.at(-1)!.body, { text: 'Your unboxing video', attachments: [{ media_id: mediaId }] });
    assert.equal((await get(id)).status, 'sent');

    // A missing file and a type X takes no attachment of are the message's fault; so is media X refuses.
    from = peer.seen.length;
    const missing = await send({ to, rules: ['twitterDm'], body: 'Photo', messageParts: [{ type: 'image/png', url: `${env.X_API_URL}/media/nope.png` }] });
    const pdf = await send({ to, rules: ['twitterDm'], customBody: { twitterDm: { text: 'Terms', mediaUrl: `${env.X_API_URL}/media/terms.pdf` } } });
    await settle(s());
    peer.fail(400, 'https://api.twitter.com/2/problems/invalid-request', 'One or more parameters to your request was invalid.');
    const refused = await send({ to, rules: ['twitterDm'], messageParts: [{ type: 'image/png', data: Buffer.from('not really a png').toString('base64') }] });
    await settle(s());
    for (const [msg, code] of [[missing, 'MediaUnavailable'], [pdf, 'MediaNotSupported'], [refused, 'MediaRejected']] as const) {
      const failed = await get(msg);
      assert.equal(failed.status, 'failed', code);
      assert.equal(failed.statusDetails.attempts[0].providerCode, code);
    }
    assert.ok(!peer.seen.slice(from).some((r) => r.path.includes('/dm_conversations/')), 'no DM went out');
  });

  it('resolves a screen name to its user id once, and fails a send to an unknown one', async () => {
    const from = peer.seen.length;
    const first = await send({ to: { twitterScreenName: '@jack' }, rules: ['twitterDm'], body: 'Hello Jack' });
    await settle(s());
    const second = await send({ to: { twitterScreenName: 'jack' }, rules: ['twitterDm'], body: 'Again' });
    await settle(s());
    assert.deepEqual(peer.seen.slice(from).map((r) => `${r.method} ${r.path}`), [
      'GET /2/users/by/username/jack', 'POST /2/dm_conversations/with/12/messages', 'POST /2/dm_conversations/with/12/messages',
    ]);
    for (const id of [first, second]) assert.equal((await get(id)).status, 'sent');
    const unknown = await send({ to: { twitterScreenName: 'nobody_here' }, rules: ['twitterDm'], body: 'Hi' });
    await settle(s());
    const failed = await get(unknown);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.statusDetails.attempts[0].providerCode, 'NoAddress');
  });

  it('stores a screen name\'s user id on the profile the message was addressed through; later sends use it without a look-up', async () => {
    // A masked PUT makes a new configuration revision, and with it a new adapter knowing no names.
    const reconfigure = async () => {
      const res = await s().request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: true, provider: 'xApi', settings: { ...SETTINGS, consumerSecret: '********', accessToken: '********', accessTokenSecret: '********' } } });
      assert.equal(res.statusCode, 200, res.body);
    };
    await reconfigure();
    const profileId = `jack-${dialect}`;
    let from = peer.seen.length;
    const first = await send({ to: { profileId, twitterScreenName: '@jack' }, rules: ['twitterDm'], body: 'Hello Jack' });
    await settle(s());
    assert.deepEqual(peer.seen.slice(from).map((r) => `${r.method} ${r.path}`), ['GET /2/users/by/username/jack', 'POST /2/dm_conversations/with/12/messages']);
    assert.equal((await get(first)).status, 'sent');
    const profile = await s().request({ method: 'GET', url: url(`/profiles/${profileId}`), token });
    assert.equal(profile.statusCode, 200, profile.body);
    assert.equal(profile.json().twitterId, '12');
    const events = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'profile.update' && e.apiSpaceId === space);
    await s().container.platform.events.loadPayloads(events);
    assert.ok(events.some((e) => JSON.stringify(e.payload).includes('"twitterId":"12"')), 'the write emits profile.update');

    await reconfigure();
    from = peer.seen.length;
    const second = await send({ to: { profileId }, rules: ['twitterDm'], body: 'Again' });
    await settle(s());
    assert.deepEqual(peer.seen.slice(from).map((r) => `${r.method} ${r.path}`), ['POST /2/dm_conversations/with/12/messages']);
    assert.equal((await get(second)).status, 'sent');
  });

  it('classifies X errors: rate limits retry, refusals and bad credentials are rejected', async () => {
    peer.fail(429, 'about:blank', 'Too Many Requests', { 'x-rate-limit-reset': String(Math.floor(Date.now() / 1000) + 1) });
    await api.sendThrottledOnce({ to, rules: ['twitterDm'], body: 'Later' }, clock);

    for (const [status, expected] of [[403, 'ProviderRejected'], [401, 'Unauthorized'], [400, 'HTTP400']] as const) {
      peer.fail(status, 'https://api.twitter.com/2/problems/client-forbidden', `refused ${status}`);
      const id = await send({ to, rules: ['twitterDm'], body: 'Hello' });
      await settle(s());
      const m = await get(id);
      assert.equal(m.status, 'failed', `${status}`);
      assert.equal(m.statusDetails.attempts[0].outcome, 'rejected');
      assert.equal(m.statusDetails.attempts[0].providerCode, expected);
    }
    // A 5xx is worth retrying.
    peer.script.push((res) => res.writeHead(503).end('unavailable'));
    const down = await send({ to, rules: ['twitterDm'], body: 'Down' });
    await settle(s());
    assert.equal((await get(down)).status, 'retrying');
    clock.advance(40_000);
    await settle(s());
    assert.equal((await get(down)).status, 'sent');
  });

  it('answers the CRC challenge with the HMAC of the token under the consumer secret', async () => {
    const res = await s().request({ method: 'GET', url: url('/channels/twitterDm/callback?crc_token=challenge-123'), token: null });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { response_token: 'sha256=' + createHmac('sha256', CONSUMER_SECRET).update('challenge-123').digest('base64') });
    const missing = await s().request({ method: 'GET', url: url('/channels/twitterDm/callback'), token: null });
    assert.equal(missing.statusCode, 400);
  });

  it('takes signed DM events as inbound messages and stores the sender\'s twitterId on a profile', async () => {
    const sender = `88${dialect === 'sqlite' ? '1' : '2'}00000077`;
    const before = (await inboundEvents()).length;
    const raw = JSON.stringify({
      for_user_id: USER_ID,
      direct_message_events: [dm('1900000000000000001', sender, 'Where is my parcel?'), dm('1900000000000000002', USER_ID, 'our own reply'), { type: 'something_else', id: '3' }],
      users: { [sender]: { id: sender, screen_name: 'dana_x', name: 'Dana' } },
    });
    assert.equal((await callback(raw, sign(raw, 'wrong-secret'))).statusCode, 401);
    assert.equal((await callback(raw, null)).statusCode, 401);
    const res = await callback(raw);
    assert.equal(res.statusCode, 200, res.body);
    await settle(s());
    const events = (await inboundEvents()).slice(before);
    assert.equal(events.length, 1, 'the account\'s own message is not inbound');
    const text = JSON.stringify(events[0]);
    assert.match(text, new RegExp(`"twitterId":"${sender}"`));
    assert.match(text, /Where is my parcel\?/);
    const profile = await s().request({ method: 'GET', url: url(`/profiles/${sender}`), token });
    assert.equal(profile.statusCode, 200, profile.body);
    assert.equal(profile.json().twitterId, sender);

    // Another subscribed account's events are acknowledged and ignored.
    const other = JSON.stringify({ for_user_id: '42', direct_message_events: [dm('1900000000000000003', sender, 'not ours')] });
    assert.equal((await callback(other)).statusCode, 200);
    await settle(s());
    assert.equal((await inboundEvents()).length - before, 1);
  });

  it('keeps a DM\'s photo with the Content API, read with the account\'s signature', async () => {
    const sender = `88${dialect === 'sqlite' ? '1' : '2'}00000078`;
    const photo = Buffer.from([0xff, 0xd8, 0xff, ...Buffer.from(`a photo for ${dialect}`)]);
    peer.files.set(`dm-photo-${dialect}.jpg`, { type: 'image/jpeg', bytes: photo });
    const event = dm(`19000000000000001${dialect === 'sqlite' ? '1' : '2'}`, sender, 'This arrived broken');
    const media = { id: 9, media_url_https: `${env.X_API_URL}/media/dm-photo-${dialect}.jpg`, type: 'photo' };
    const raw = JSON.stringify({ for_user_id: USER_ID, direct_message_events: [{ ...event, message_create: { ...event.message_create, message_data: { text: 'This arrived broken', attachment: { type: 'media', media } } } }] });
    const from = peer.seen.length;
    assert.equal((await callback(raw)).statusCode, 200);
    await settle(s());
    const last = (await inboundEvents()).at(-1) as { body: string; messageParts: Array<Record<string, any>> };
    assert.equal(last.body, 'This arrived broken');
    assert.equal(last.messageParts[0]!.size, photo.length);
    assert.deepEqual((await s().request({ method: 'GET', url: new URL(last.messageParts[0]!.url).pathname })).rawPayload, photo);
    const fetched = peer.seen.slice(from).filter((r) => r.path.startsWith('/media/'));
    assert.equal(fetched.length, 1);
    assert.match(String(fetched[0]!.headers.authorization), /^OAuth /, 'signed (the peer checks the signature)');
  });

  it('sends with an OAuth 2.0 user token when configured with bearerToken', async () => {
    const put = await s().request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: true, provider: 'xApi', settings: { userId: USER_ID, consumerSecret: CONSUMER_SECRET, bearerToken: 'user-token-dm-write' } } });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json().settings.bearerToken, '********');
    const from = peer.seen.length;
    const id = await send({ to, rules: ['twitterDm'], body: 'Hello again' });
    await settle(s());
    assert.equal(peer.seen.length - from, 1);
    assert.equal(peer.seen.at(-1)!.headers.authorization, 'Bearer user-token-dm-write');
    assert.equal((await get(id)).status, 'sent');
  });
});

/** The bodies of the space's inbound messages, sorted (report jobs run in parallel). */
async function inboundBodies(server: TestServer, space: string): Promise<string[]> {
  const events = (await server.container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.inbound' && e.apiSpaceId === space);
  await server.container.platform.events.loadPayloads(events);
  return events.map((e) => (e.payload as { body: string }).body).sort();
}

eachDatabase('twitterDm polling GET /2/dm_events (X API peer)', (dialect) => {
  const sender = `77${dialect === 'sqlite' ? '1' : '2'}00000099`;
  const dmEvent = (id: string, from: string, text: string, at: number) => ({
    id, event_type: 'MessageCreate', text, sender_id: from, dm_conversation_id: `${USER_ID}-${sender}`, created_at: new Date(at).toISOString(),
  });

  it('polls every interval: DMs from others become inbound once, across re-polls and a restart; 429 waits for the reset', async () => {
    const clock = new ManualClock(Date.now());
    const pollEnv = { ...env, X_POLL_INTERVAL_SECONDS: '30' };
    let server = await startServer(dialect, { env: pollEnv, clock });
    const location = server.location;
    try {
      const space = await server.createSpace('x polling');
      const token = await server.createToken(space, ['prof:ra']);
      const url = (p: string) => `/apispaces/${space}${p}`;
      peer.dmEvents.length = 0;
      // Sent before polling was switched on: not taken.
      peer.dmEvents.push(dmEvent('1800000000000000001', sender, 'before polling', clock.now() - 60_000));
      const from = peer.seen.length;
      const polls = () => peer.seen.slice(from).filter((r) => r.path.startsWith('/2/dm_events?'));
      const put = await server.request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: true, provider: 'xApi', settings: { ...SETTINGS, inbound: 'poll' } } });
      assert.equal(put.statusCode, 201, put.body);
      await settle(server);
      assert.equal(polls().length, 1, 'the first poll runs when polling is switched on');
      const query = new URL(polls()[0]!.path, 'http://peer').searchParams;
      assert.equal(query.get('event_types'), 'MessageCreate');
      assert.equal(query.get('max_results'), '100');
      assert.match(query.get('dm_event.fields')!, /(^|,)sender_id(,|$)/);
      assert.match(query.get('expansions')!, /(^|,)sender_id(,|$)/);
      assert.deepEqual(await inboundBodies(server, space), []);

      // While the channel polls, Account Activity events are acknowledged and ignored: polling reads the same DMs.
      const raw = JSON.stringify({ for_user_id: USER_ID, direct_message_events: [{ type: 'message_create', id: '1900000000000000009', created_timestamp: String(clock.now()), message_create: { sender_id: sender, message_data: { text: 'via webhook' } } }] });
      const hook = await server.request({ method: 'POST', url: url('/channels/twitterDm/callback'), token: null, payload: raw, headers: { 'content-type': 'application/json', 'x-twitter-webhooks-signature': sign(raw) } });
      assert.equal(hook.statusCode, 200, hook.body);

      // Four new events over two pages (the old one on a third), one of them the account's own reply.
      const now = clock.now();
      peer.dmEvents.unshift(
        dmEvent('1800000000000000005', sender, 'third', now + 3000), dmEvent('1800000000000000004', USER_ID, 'our reply', now + 2000),
        dmEvent('1800000000000000003', sender, 'second', now + 1000), dmEvent('1800000000000000002', sender, 'first', now + 500),
      );
      clock.advance(29_000);
      await settle(server);
      assert.equal(polls().length, 1, 'not before the interval');
      clock.advance(1_000);
      await settle(server);
      assert.ok(polls().at(-1)!.path.includes('pagination_token='), 'pages are followed');
      assert.deepEqual(await inboundBodies(server, space), ['first', 'second', 'third']);
      const profile = await server.request({ method: 'GET', url: url(`/profiles/${sender}`), token });
      assert.equal(profile.statusCode, 200, profile.body);
      assert.equal(profile.json().twitterId, sender);

      // A re-poll finds nothing new; neither does a restart, which carries on from the stored cursor.
      clock.advance(30_000);
      await settle(server);
      assert.equal((await inboundBodies(server, space)).length, 3);
      await server.close();
      peer.dmEvents.unshift(dmEvent('1800000000000000006', sender, 'while down', clock.now() + 1000));
      server = await startServer(dialect, { env: pollEnv, clock, location });
      clock.advance(30_000);
      await settle(server);
      assert.deepEqual(await inboundBodies(server, space), ['first', 'second', 'third', 'while down']);
      assert.equal((await server.container.platform.queue.list({ kind: 'channels.poll' })).length, 1, 'one chain per channel');

      // Rate limited: the next poll waits for x-rate-limit-reset (5 minutes here), not the interval.
      const reset = Math.floor(Date.now() / 1000) + 300;
      peer.fail(429, 'about:blank', 'Too Many Requests', { 'x-rate-limit-reset': String(reset) });
      const before = polls().length;
      clock.advance(30_000);
      await settle(server);
      clock.advance(60_000);
      await settle(server);
      assert.equal(polls().length, before + 1, 'no poll before the reset');
      clock.advance(300_000);
      await settle(server);
      assert.equal(polls().length, before + 2);

      // Disabled, the chain ends at its next run.
      const off = await server.request({ method: 'PUT', url: url('/channels/twitterDm'), payload: { enabled: false, provider: 'xApi', settings: { ...SETTINGS, inbound: 'poll' } } });
      assert.equal(off.statusCode, 200, off.body);
      clock.advance(30_000);
      await settle(server);
      assert.deepEqual(await server.container.platform.queue.list({ kind: 'channels.poll' }), []);
      assert.equal(polls().length, before + 2);
    } finally {
      await server.close();
      await dropLocation(location);
    }
  });

  it('a backlog longer than one poll reads (10 pages) is read on by the next polls, none twice; a page token X refuses ends it', async () => {
    const clock = new ManualClock(Date.now());
    const server = await startServer(dialect, { env: { ...env, X_POLL_INTERVAL_SECONDS: '30' }, clock });
    try {
      const space = await server.createSpace('x backlog');
      peer.dmEvents.length = 0;
      const from = peer.seen.length;
      const polls = () => peer.seen.slice(from).filter((r) => r.path.startsWith('/2/dm_events?'));
      const put = await server.request({ method: 'PUT', url: `/apispaces/${space}/channels/twitterDm`, payload: { enabled: true, provider: 'xApi', settings: { ...SETTINGS, inbound: 'poll' } } });
      assert.equal(put.statusCode, 201, put.body);
      await settle(server);
      const t0 = clock.now();
      const add = (first: number, last: number) => {
        for (let i = first; i <= last; i++) peer.dmEvents.unshift(dmEvent(`18000000000000${String(100 + i)}`, sender, `b${String(i).padStart(2, '0')}`, t0 + 1000 * i));
      };
      const bodies = (first: number, last: number) => Array.from({ length: last - first + 1 }, (_, k) => `b${String(first + k).padStart(2, '0')}`);
      const poll = async () => {
        clock.advance(30_000);
        await settle(server);
      };

      // 25 new events, two to a page: the first poll reads 10 pages (the newest 20), the next the rest.
      add(1, 25);
      await poll();
      assert.equal(polls().length, 1 + 10);
      assert.deepEqual(await inboundBodies(server, space), bodies(6, 25));
      await poll();
      assert.ok(polls()[11]!.path.includes('pagination_token=next000000000020'), 'the next poll goes on from the page where the last stopped');
      assert.deepEqual(await inboundBodies(server, space), bodies(1, 25));
      add(26, 26);
      await poll();
      assert.deepEqual(await inboundBodies(server, space), bodies(1, 26), 'then the newest again, down to the last event seen');

      // A backlog whose page token X refuses (400): the rest of it is given up, polling goes on.
      add(27, 48);
      await poll();
      assert.deepEqual(await inboundBodies(server, space), bodies(1, 26).concat(bodies(29, 48)));
      peer.fail(400, 'https://api.twitter.com/2/problems/invalid-request', 'One or more parameters to your request was invalid.');
      await poll();
      add(49, 49);
      await poll();
      assert.deepEqual(await inboundBodies(server, space), bodies(1, 26).concat(bodies(29, 49)));
    } finally {
      await server.close();
      await dropLocation(server.location);
    }
  });
});
