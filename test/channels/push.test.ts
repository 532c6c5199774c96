import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { generateKeyPairSync } from 'node:crypto';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { configureAuth, startSession } from '../appmessaging/helpers.js';
import { settle } from '../messages/helpers.js';

/**
 * The push channel against local peers speaking APNs (HTTP/2) and FCM HTTP v1 (with Google's
 * OAuth token endpoint): One API `nativePush` sends, App Messaging alerts, invalid tokens removed.
 */
interface Seen { path: string; headers: Record<string, unknown>; body: any }

function apnsPeer() {
  const seen: Seen[] = [];
  const busySeen = new Set<string>();
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const path = String(headers[':path']);
      seen.push({ path, headers: { ...headers }, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') });
      const token = path.split('/').pop()!;
      // A "busy" device's first notification finds the service unavailable.
      if (token.startsWith('busy') && !busySeen.has(token)) {
        busySeen.add(token);
        stream.respond({ ':status': 503, 'content-type': 'application/json' });
        return stream.end(JSON.stringify({ reason: 'ServiceUnavailable' }));
      }
      if (token.startsWith('dead')) {
        stream.respond({ ':status': 410, 'content-type': 'application/json' });
        return stream.end(JSON.stringify({ reason: 'Unregistered', timestamp: Date.now() }));
      }
      stream.respond({ ':status': 200, 'apns-id': `apns-${seen.length}` });
      stream.end();
    });
  });
  return {
    seen, server,
    start: () => new Promise<string>((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as { port: number }).port}`))),
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function fcmPeer() {
  const seen: Seen[] = [];
  let tokens = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      if (req.url === '/token') {
        tokens++;
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ access_token: `at-${tokens}`, expires_in: 3600, token_type: 'Bearer' }));
      }
      const body = JSON.parse(text);
      seen.push({ path: req.url!, headers: req.headers, body });
      if (String(body.message?.token).startsWith('dead')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { code: 404, status: 'NOT_FOUND', message: 'Requested entity was not found.', details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }] } }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: `projects/p-push/messages/${seen.length}` }));
    });
  });
  return {
    seen, server, tokens: () => tokens,
    start: () => new Promise<string>((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as { port: number }).port}`))),
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const apns = apnsPeer();
const fcm = fcmPeer();
let fcmUrl = '';
/** The servers' settings: the peers' addresses, known once they listen (before any suite starts its server). */
const env: Record<string, string> = {};
before(async () => {
  [env.APNS_URL, fcmUrl] = await Promise.all([apns.start(), fcm.start()]);
  env.FCM_URL = fcmUrl;
});
after(async () => {
  await Promise.all([apns.stop(), fcm.stop()]);
});

const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

eachDatabase('push channel (APNs and FCM peers)', (dialect) => {
  const s = useServer(dialect, { env });
  let space = '';
  let token = '';
  const url = (p: string) => `/apispaces/${space}${p}`;

  /** A session for `profileId` on `deviceId` with push details registered. */
  async function device(profileId: string, deviceId: string, push: Record<string, unknown>) {
    const started = await startSession(s(), space, profileId, deviceId);
    const put = await s().request({ method: 'PUT', url: url(`/sessions/${started.session.id}/push`), token: started.token, payload: push });
    assert.equal(put.statusCode, 204, put.body);
    return started;
  }
  const devicesOf = async (profileId: string) => s().container.services.profiles!.devices(space, profileId);

  it('configures the space', async () => {
    space = await s().createSpace('push');
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'conv:ra', 'conv:wa'], 'shop');
    await configureAuth(s(), space);
    const key = await s().request({ method: 'PUT', url: url('/push/apnstoken'), payload: { teamId: 'TEAM123456', keyId: 'KEY1234567', key: ecKey } });
    assert.ok(key.statusCode < 300, key.body);
    const sa = { type: 'service_account', project_id: 'p-push', client_email: 'sender@p-push.iam.gserviceaccount.com', private_key: rsaKey, token_uri: `${fcmUrl}/token` };
    const f = await s().request({ method: 'PUT', url: url('/push/fcm/com.example.app'), payload: { serviceAccount: sa } });
    assert.ok(f.statusCode < 300, f.body);
    const ch = await s().request({ method: 'PUT', url: url('/channels/nativePush'), payload: { enabled: true, settings: {} } });
    assert.ok(ch.statusCode < 300, ch.body);
  });

  it('sends a nativePush message to every device of the profile, with data and tracked deep links', async () => {
    await device('pat', 'pat-phone', { apns: { bundleId: 'com.example.app', environment: 'production', token: 'aa11' } });
    await device('pat', 'pat-tablet', { fcm: { package: 'com.example.app', registrationId: 'fcm-pat' } });
    const [a0, f0] = [apns.seen.length, fcm.seen.length];
    const res = await s().request({
      method: 'POST', url: url('/messages'), token,
      payload: {
        to: { profileId: 'pat' }, rules: ['nativePush'], title: 'Order', body: 'Your order shipped',
        metadata: { order: 'SO-1' },
        channelOptions: { nativePush: { data: { apns: { orderId: 'SO-1' }, fcm: { orderId: 'SO-1', n: 2 } }, deepLink: { apns: { url: 'shop://orders/1' }, fcm: { url: 'shop://orders/1' } } } },
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    await settle(s());
    const msg = (await s().request({ method: 'GET', url: url(`/messages/${res.json().messageId}`), token })).json();
    assert.equal(msg.status, 'sent', JSON.stringify(msg.statusDetails));

    const a = apns.seen.slice(a0);
    assert.equal(a.length, 1);
    assert.equal(a[0]!.path, '/3/device/aa11');
    assert.equal(a[0]!.headers['apns-topic'], 'com.example.app');
    assert.equal(a[0]!.headers['apns-push-type'], 'alert');
    assert.equal(a[0]!.headers['apns-priority'], '10');
    assert.match(String(a[0]!.headers.authorization), /^bearer ey/);
    assert.deepEqual(a[0]!.body.aps, { alert: { title: 'Order', body: 'Your order shipped' }, sound: 'default' });
    assert.equal(a[0]!.body.orderId, 'SO-1');
    assert.equal(a[0]!.body.deepLink, 'shop://orders/1');
    assert.match(a[0]!.body.trackingLink, /^http:\/\/localhost:8080\/t\//);

    const f = fcm.seen.slice(f0);
    assert.equal(f.length, 1);
    assert.equal(f[0]!.path, '/v1/projects/p-push/messages:send');
    assert.match(String(f[0]!.headers.authorization), /^Bearer at-/);
    const m = f[0]!.body.message;
    assert.equal(m.token, 'fcm-pat');
    assert.deepEqual(m.notification, { title: 'Order', body: 'Your order shipped' });
    assert.equal(m.data.orderId, 'SO-1');
    assert.equal(m.data.n, '2', 'FCM data values are strings');
    assert.equal(m.data.deepLink, 'shop://orders/1');
    assert.match(m.data.trackingLink, /\/t\//);
    assert.equal(m.android.priority, 'high');

    // Opening the tracked link marks the message read.
    const click = await s().request({ method: 'GET', url: new URL(a[0]!.body.trackingLink).pathname });
    assert.equal(click.statusCode, 302);
    await settle(s());
    assert.equal((await s().request({ method: 'GET', url: url(`/messages/${res.json().messageId}`), token })).json().status, 'read');
  });

  it('sends silent notifications and uses customBody verbatim per platform', async () => {
    const [a0, f0] = [apns.seen.length, fcm.seen.length];
    const silent = await s().request({ method: 'POST', url: url('/messages'), token, payload: { to: { profileId: 'pat' }, rules: ['nativePush'], title: 't', body: 'b', channelOptions: { nativePush: { data: { isSilent: true } } } } });
    assert.equal(silent.statusCode, 201, silent.body);
    await settle(s());
    const a = apns.seen[a0]!;
    assert.equal(a.headers['apns-push-type'], 'background');
    assert.equal(a.headers['apns-priority'], '5');
    assert.deepEqual(a.body.aps, { 'content-available': 1 });
    assert.equal(fcm.seen[f0]!.body.message.notification, undefined);

    const custom = await s().request({ method: 'POST', url: url('/messages'), token, payload: { to: { profileId: 'pat' }, rules: ['nativePush'], customBody: { nativePush: { apns: { aps: { alert: 'raw' } }, fcm: { data: { raw: '1' } } } } } });
    assert.equal(custom.statusCode, 201, custom.body);
    await settle(s());
    assert.deepEqual(apns.seen[a0 + 1]!.body, { aps: { alert: 'raw' } });
    assert.deepEqual(fcm.seen[f0 + 1]!.body.message, { data: { raw: '1' }, token: 'fcm-pat' });
  });

  it('removes device tokens the providers call invalid, and fails a send no device took', async () => {
    const dead = await device('sam', 'sam-phone', { apns: { bundleId: 'com.example.app', environment: 'production', token: 'dead01' } });
    await device('sam', 'sam-tablet', { fcm: { package: 'com.example.app', registrationId: 'dead-fcm' } });
    const res = await s().request({ method: 'POST', url: url('/messages'), token, payload: { to: { profileId: 'sam' }, rules: ['nativePush'], title: 't', body: 'b' } });
    await settle(s());
    const msg = (await s().request({ method: 'GET', url: url(`/messages/${res.json().messageId}`), token })).json();
    assert.equal(msg.status, 'failed');
    assert.equal(msg.statusDetails.attempts.at(-1).providerCode, 'InvalidDeviceTokens');
    assert.deepEqual((await devicesOf('sam')).map((d) => d.push), [undefined, undefined]);
    const session = await s().request({ method: 'GET', url: url(`/sessions/${dead.session.id}`), token: dead.token });
    assert.equal(session.json().push, undefined);
    // With no device left, the next send is skipped as NoDevices.
    const next = await s().request({ method: 'POST', url: url('/messages'), token, payload: { to: { profileId: 'sam' }, rules: ['nativePush'], title: 't', body: 'b' } });
    await settle(s());
    const skipped = (await s().request({ method: 'GET', url: url(`/messages/${next.json().messageId}`), token })).json();
    assert.equal(skipped.status, 'failed');
    assert.equal(skipped.statusDetails.attempts[0].reason, 'NoDevices');
  });

  it('skips devices whose app has no credentials', async () => {
    await device('kim', 'kim-phone', { apns: { bundleId: 'com.other.app', environment: 'development', token: 'bb22' } });
    const noToken = await s().request({ method: 'PUT', url: url('/push/apnstoken'), payload: { teamId: 'TEAM123456', keyId: 'KEY1234567', key: ecKey, bundleIds: ['com.example.app'] } });
    assert.ok(noToken.statusCode < 300, noToken.body);
    const a0 = apns.seen.length;
    const res = await s().request({ method: 'POST', url: url('/messages'), token, payload: { to: { profileId: 'kim' }, rules: ['nativePush'], title: 't', body: 'b' } });
    await settle(s());
    const msg = (await s().request({ method: 'GET', url: url(`/messages/${res.json().messageId}`), token })).json();
    assert.equal(msg.status, 'failed');
    assert.equal(msg.statusDetails.attempts.at(-1).providerCode, 'NoCredentials');
    assert.equal(apns.seen.length, a0);
  });

  it('uses credentials replaced since the last send', async () => {
    const put = await s().request({ method: 'PUT', url: url('/push/apnstoken'), payload: { teamId: 'TEAM123456', keyId: 'KEY7654321', key: ecKey } });
    assert.ok(put.statusCode < 300, put.body);
    const a0 = apns.seen.length;
    await s().request({ method: 'POST', url: url('/messages'), token, payload: { to: { profileId: 'pat' }, rules: ['nativePush'], title: 't', body: 'b' } });
    await settle(s());
    const jwt = String(apns.seen[a0]!.headers.authorization).split(' ')[1]!;
    assert.equal(JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid, 'KEY7654321');
  });

  it("pushes a conversation message's alert to the other participants' devices", async () => {
    const alice = await device('alice', 'alice-phone', { apns: { bundleId: 'com.example.app', environment: 'production', token: 'cc33' } });
    const conv = await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'c-push', participants: [{ id: 'pat' }] } });
    assert.ok(conv.statusCode < 300, conv.body);
    const [a0, f0] = [apns.seen.length, fcm.seen.length];
    const sent = await s().request({
      method: 'POST', url: url('/conversations/c-push/messages'), token: alice.token,
      payload: { parts: [{ data: 'Is it shipped?', type: 'text/plain' }], alert: { title: 'Alice', body: 'Is it shipped?', platforms: { apns: { badge: 3 }, fcm: { collapse_key: 'c-push', data: { n: 1 }, notification: { title: 'Alice', body: 'Is it shipped?', icon: 'chat' } } } } },
    });
    assert.ok(sent.statusCode < 300, sent.body);
    await settle(s());
    const a = apns.seen.slice(a0);
    assert.deepEqual(a.map((x) => x.path), ['/3/device/aa11'], 'the sender is not notified');
    assert.deepEqual(a[0]!.body.aps, { alert: { title: 'Alice', body: 'Is it shipped?' }, badge: 3, sound: 'default' });
    assert.equal(a[0]!.body.conversationId, 'c-push');
    assert.equal(a[0]!.body.messageId, sent.json().id);
    const m = fcm.seen.slice(f0)[0]!.body.message;
    assert.equal(m.token, 'fcm-pat');
    assert.deepEqual(m.notification, { title: 'Alice', body: 'Is it shipped?' });
    assert.deepEqual(m.android, { collapse_key: 'c-push', notification: { icon: 'chat' } });
    assert.deepEqual(m.data, { n: '1', conversationId: 'c-push', messageId: sent.json().id });
  });

  it('tries a device the provider could not take again later, and only that device', async () => {
    await device('bo', 'bo-phone', { apns: { bundleId: 'com.example.app', environment: 'production', token: `busy-${dialect}` } });
    await device('bo', 'bo-tablet', { fcm: { package: 'com.example.app', registrationId: 'fcm-bo' } });
    const alice = await startSession(s(), space, 'alice', 'alice-phone');
    const conv = await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'c-busy', participants: [{ id: 'bo' }] } });
    assert.ok(conv.statusCode < 300, conv.body);
    const [a0, f0] = [apns.seen.length, fcm.seen.length];
    const sent = await s().request({ method: 'POST', url: url('/conversations/c-busy/messages'), token: alice.token, payload: { parts: [{ data: 'hi', type: 'text/plain' }], alert: { text: 'hi' } } });
    assert.ok(sent.statusCode < 300, sent.body);
    const toBo = () => apns.seen.slice(a0).filter((x) => x.path === `/3/device/busy-${dialect}`);
    for (let i = 0; i < 100 && toBo().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(toBo().length, 2, 'refused once (503), then taken on the follow-up');
    assert.deepEqual(toBo()[1]!.body.aps.alert, { body: 'hi' });
    await settle(s());
    assert.equal(fcm.seen.slice(f0).filter((x) => x.body.message.token === 'fcm-bo').length, 1, 'the tablet took it the first time');
  });
});
