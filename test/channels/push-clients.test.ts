import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { ApnsClient, type ApnsClientOptions, type ApnsRequest } from '../../src/channels/push/apns.js';
import { FcmClient, type FcmClientOptions } from '../../src/channels/push/fcm.js';

const pkcs8 = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'pem' }) as string;

/** A self-signed certificate (server: for 127.0.0.1) made with the key from node:crypto. */
function selfSigned(commonName: string, role: 'server' | 'client') {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = pkcs8(privateKey);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'extKeyUsage', serverAuth: role === 'server', clientAuth: role === 'client' },
    ...(role === 'server' ? [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }] : []),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert) };
}

interface ApnsSeen { headers: http2.IncomingHttpHeaders; body: string; peerCertCN?: string }
type ApnsAnswer = (stream: http2.ServerHttp2Stream) => void;

/** An HTTP/2 peer speaking the APNs provider API; each test sets its answer. */
function apnsPeer(server: http2.Http2Server | http2.Http2SecureServer) {
  const seen: ApnsSeen[] = [];
  const live = new Set<http2.ServerHttp2Session>();
  const state = { sessions: 0 };
  let answer: ApnsAnswer = (stream) => stream.respond({ ':status': 200, 'apns-id': 'apns-1' }, { endStream: true });
  server.on('session', (s: http2.ServerHttp2Session) => {
    state.sessions++;
    live.add(s);
    s.on('close', () => live.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const socket = stream.session?.socket as TLSSocket | undefined;
      const peerCertCN = typeof socket?.getPeerCertificate === 'function' ? String(socket.getPeerCertificate().subject?.CN) : undefined;
      seen.push({ headers, body: Buffer.concat(chunks).toString('utf8'), peerCertCN });
      answer(stream);
    });
  });
  return {
    seen,
    state,
    live,
    respond(fn: ApnsAnswer) {
      answer = fn;
    },
    get base() {
      return `127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    start: () => new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok)),
    stop: () => new Promise<void>((ok) => {
      for (const s of live) s.destroy();
      server.close(() => ok());
    }),
  };
}

const reject = (status: number, reason: string, headers: Record<string, string> = {}): ApnsAnswer => (stream) => {
  stream.respond({ ':status': status, 'content-type': 'application/json', ...headers });
  stream.end(JSON.stringify({ reason }));
};

const DEVICE = 'a1b2c3d4'.repeat(8);
const notification = (over: Partial<ApnsRequest> = {}): ApnsRequest => ({
  token: DEVICE, topic: 'com.example.app', pushType: 'alert', priority: 10, expiration: 1_900_000_000, collapseId: 'thread-9',
  payload: { aps: { alert: { title: 'Hi', body: 'There' } }, messageId: 'm-1' }, ...over,
});

describe('APNs client, token auth over h2c', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const peer = apnsPeer(http2.createServer());
  const clock = { now: Date.parse('2030-01-01T00:00:00Z') };
  const clients: ApnsClient[] = [];
  const client = (over: Partial<ApnsClientOptions> = {}) => {
    const c = new ApnsClient({
      environment: 'development', auth: { type: 'token', teamId: 'TEAM123456', keyId: 'KEY1234567', keyPem: pkcs8(ec.privateKey) },
      allowPrivateTargets: true, baseUrl: `http://${peer.base}`, now: () => clock.now, ...over,
    });
    clients.push(c);
    return c;
  };
  const bearer = (i = -1) => String(peer.seen.at(i)!.headers.authorization).replace(/^bearer /, '');
  before(peer.start);
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await peer.stop();
  });

  it('posts to /3/device/{token} with the apns-* headers, the JSON payload and a verifiable provider JWT', async () => {
    peer.respond((stream) => stream.respond({ ':status': 200, 'apns-id': 'EC1BF194-B3B2-424A-89A9-5A918A6E8A1A' }, { endStream: true }));
    const out = await client().send(notification());
    assert.deepEqual(out, { ok: true, id: 'EC1BF194-B3B2-424A-89A9-5A918A6E8A1A' });
    const { headers, body } = peer.seen.at(-1)!;
    assert.equal(headers[':method'], 'POST');
    assert.equal(headers[':path'], `/3/device/${DEVICE}`);
    assert.equal(headers['apns-topic'], 'com.example.app');
    assert.equal(headers['apns-push-type'], 'alert');
    assert.equal(headers['apns-priority'], '10');
    assert.equal(headers['apns-expiration'], '1900000000');
    assert.equal(headers['apns-collapse-id'], 'thread-9');
    assert.equal(headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(body), notification().payload);
    assert.match(String(headers.authorization), /^bearer /);
    assert.deepEqual(decodeProtectedHeader(bearer()), { alg: 'ES256', kid: 'KEY1234567' });
    const { payload } = await jwtVerify(bearer(), ec.publicKey, { issuer: 'TEAM123456', currentDate: new Date(clock.now) });
    assert.deepEqual(payload, { iss: 'TEAM123456', iat: Math.floor(clock.now / 1000) });
  });

  it('omits apns-collapse-id when not given and sends background pushes at priority 5', async () => {
    peer.respond((stream) => stream.respond({ ':status': 200, 'apns-id': 'bg-1' }, { endStream: true }));
    const out = await client().send(notification({ collapseId: undefined, pushType: 'background', priority: 5, expiration: 0, payload: { aps: { 'content-available': 1 } } }));
    assert.deepEqual(out, { ok: true, id: 'bg-1' });
    const { headers } = peer.seen.at(-1)!;
    assert.equal(headers['apns-collapse-id'], undefined);
    assert.equal(headers['apns-push-type'], 'background');
    assert.equal(headers['apns-priority'], '5');
    assert.equal(headers['apns-expiration'], '0');
  });

  it('reuses one session and the provider JWT across sends, and mints a new JWT after 51 minutes', async () => {
    peer.respond((stream) => stream.respond({ ':status': 200, 'apns-id': 'x' }, { endStream: true }));
    const c = client();
    const sessionsBefore = peer.state.sessions;
    assert.equal((await c.send(notification())).ok, true);
    const first = bearer();
    const results = await Promise.all([c.send(notification()), c.send(notification()), c.send(notification())]);
    assert.ok(results.every((r) => r.ok));
    assert.ok(peer.seen.slice(-3).every((s) => s.headers.authorization === `bearer ${first}`));
    clock.now += 49 * 60_000;
    await c.send(notification());
    assert.equal(bearer(), first, 'still fresh at 49 minutes');
    clock.now += 2 * 60_000;
    await c.send(notification());
    const second = bearer();
    assert.notEqual(second, first);
    assert.equal(decodeJwt(second).iat, Math.floor(clock.now / 1000));
    await jwtVerify(second, ec.publicKey, { issuer: 'TEAM123456', currentDate: new Date(clock.now) });
    await c.send(notification());
    assert.equal(bearer(), second);
    assert.equal(peer.state.sessions - sessionsBefore, 1, 'one HTTP/2 session for all sends');
  });

  it('maps 410 Unregistered and 400 BadDeviceToken / DeviceTokenNotForTopic to invalid tokens', async () => {
    const c = client();
    peer.respond(reject(410, 'Unregistered'));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: false, invalidToken: true, reason: 'Unregistered', status: 410 });
    peer.respond(reject(400, 'BadDeviceToken'));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: false, invalidToken: true, reason: 'BadDeviceToken', status: 400 });
    peer.respond(reject(400, 'DeviceTokenNotForTopic'));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: false, invalidToken: true, reason: 'DeviceTokenNotForTopic', status: 400 });
  });

  it('retries 429 (honouring retry-after) and 5xx', async () => {
    const c = client();
    peer.respond(reject(429, 'TooManyProviderTokenUpdates', { 'retry-after': '30' }));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: true, invalidToken: false, reason: 'TooManyProviderTokenUpdates', status: 429, retryAfterMs: 30_000 });
    peer.respond(reject(503, 'ServiceUnavailable'));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: true, invalidToken: false, reason: 'ServiceUnavailable', status: 503 });
    peer.respond(reject(500, 'InternalServerError'));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: true, invalidToken: false, reason: 'InternalServerError', status: 500 });
  });

  it('403 ExpiredProviderToken: retried, and the next send carries a newly minted JWT', async () => {
    const c = client();
    peer.respond((stream) => stream.respond({ ':status': 200 }, { endStream: true }));
    assert.deepEqual(await c.send(notification()), { ok: true, id: undefined });
    const old = bearer();
    peer.respond(reject(403, 'ExpiredProviderToken'));
    clock.now += 5_000;
    assert.deepEqual(await c.send(notification()), { ok: false, retry: true, invalidToken: false, reason: 'ExpiredProviderToken', status: 403 });
    assert.equal(bearer(), old);
    peer.respond((stream) => stream.respond({ ':status': 200, 'apns-id': 'after' }, { endStream: true }));
    assert.deepEqual(await c.send(notification()), { ok: true, id: 'after' });
    assert.notEqual(bearer(), old);
    assert.equal(decodeJwt(bearer()).iat, Math.floor(clock.now / 1000));
  });

  it('400 PayloadTooLarge and 403 InvalidProviderToken are neither retried nor invalid tokens', async () => {
    const c = client();
    peer.respond(reject(400, 'PayloadTooLarge'));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: false, invalidToken: false, reason: 'PayloadTooLarge', status: 400 });
    peer.respond(reject(403, 'InvalidProviderToken'));
    assert.deepEqual(await c.send(notification()), { ok: false, retry: false, invalidToken: false, reason: 'InvalidProviderToken', status: 403 });
  });

  it('reconnects after the server closes the session', async () => {
    peer.respond((stream) => stream.respond({ ':status': 200, 'apns-id': 'again' }, { endStream: true }));
    const c = client();
    const sessionsBefore = peer.state.sessions;
    assert.equal((await c.send(notification())).ok, true);
    await Promise.all([...peer.live].map((s) => new Promise<void>((ok) => s.close(() => ok()))));
    assert.deepEqual(await c.send(notification()), { ok: true, id: 'again' });
    for (const s of peer.live) s.destroy();
    await new Promise((ok) => setTimeout(ok, 20));
    assert.deepEqual(await c.send(notification()), { ok: true, id: 'again' });
    assert.equal(peer.state.sessions - sessionsBefore, 3);
  });

  it('a timeout or an abort is retried', async () => {
    const stalled: http2.ServerHttp2Stream[] = [];
    peer.respond((stream) => stalled.push(stream));
    const c = client({ timeoutMs: 150 });
    const timedOut = await c.send(notification());
    assert.equal(timedOut.ok, false);
    assert.equal(!timedOut.ok && timedOut.retry, true);
    assert.match(!timedOut.ok ? timedOut.reason : '', /150 ms/);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    assert.deepEqual(await c.send(notification(), controller.signal), { ok: false, retry: true, invalidToken: false, reason: 'aborted' });
    for (const s of stalled) s.close();
  });

  it('a connection failure is retried; an unusable signing key is not', async () => {
    const closed = http2.createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((ok) => closed.close(() => ok()));
    const down = await client({ baseUrl: `http://127.0.0.1:${port}` }).send(notification());
    assert.equal(!down.ok && down.retry, true);
    assert.match(!down.ok ? down.reason : '', /ECONNREFUSED/);
    const badKey = await client({ auth: { type: 'token', teamId: 'T', keyId: 'K', keyPem: 'not a key' } }).send(notification());
    assert.equal(badKey.ok, false);
    assert.equal(!badKey.ok && badKey.retry, false);
  });
});

describe('APNs client, certificate auth over TLS', () => {
  const serverCert = selfSigned('127.0.0.1', 'server');
  const clientCert = selfSigned('com.example.app push', 'client');
  const peer = apnsPeer(http2.createSecureServer({ key: serverCert.keyPem, cert: serverCert.certPem, requestCert: true, ca: [clientCert.certPem], allowHTTP1: false }));
  let c: ApnsClient;
  before(async () => {
    await peer.start();
    c = new ApnsClient({
      environment: 'production', auth: { type: 'certificate', certificatePem: clientCert.certPem, privateKeyPem: clientCert.keyPem },
      allowPrivateTargets: true, baseUrl: `https://${peer.base}`, ca: serverCert.certPem,
    });
  });
  after(async () => {
    await c.close();
    await peer.stop();
  });

  it('presents the client certificate and sends no authorization header', async () => {
    peer.respond((stream) => stream.respond({ ':status': 200, 'apns-id': 'tls-1' }, { endStream: true }));
    assert.deepEqual(await c.send(notification()), { ok: true, id: 'tls-1' });
    assert.deepEqual(await c.send(notification()), { ok: true, id: 'tls-1' });
    const seen = peer.seen.at(-1)!;
    assert.equal(seen.peerCertCN, 'com.example.app push');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers[':path'], `/3/device/${DEVICE}`);
    assert.equal(peer.state.sessions, 1);
  });

  it('refuses a server whose certificate is not trusted (retried as a network error)', async () => {
    const untrusting = new ApnsClient({
      environment: 'production', auth: { type: 'certificate', certificatePem: clientCert.certPem, privateKeyPem: clientCert.keyPem },
      allowPrivateTargets: true, baseUrl: `https://${peer.base}`, timeoutMs: 2_000,
    });
    const out = await untrusting.send(notification());
    await untrusting.close();
    assert.equal(out.ok, false);
    assert.equal(!out.ok && out.retry, true);
    assert.match(!out.ok ? out.reason : '', /certificate/i);
  });
});

describe('APNs client, private targets', () => {
  const peer = apnsPeer(http2.createServer());
  before(peer.start);
  after(peer.stop);

  it('refuses a loopback target unless allowPrivateTargets', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const auth = { type: 'token', teamId: 'T', keyId: 'K', keyPem: pkcs8(ec.privateKey) } as const;
    for (const baseUrl of [`http://${peer.base}`, `http://localhost:${peer.base.split(':')[1]}`]) {
      const c = new ApnsClient({ environment: 'production', auth, allowPrivateTargets: false, baseUrl });
      const out = await c.send(notification());
      await c.close();
      assert.equal(out.ok, false);
      assert.equal(!out.ok && out.retry, false);
      assert.equal(!out.ok && out.invalidToken, false);
      assert.match(!out.ok ? out.reason : '', /private|localhost/);
    }
    assert.equal(peer.state.sessions, 0);
  });
});

describe('FCM client against local OAuth and FCM peers', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clock = { now: Date.parse('2030-01-01T00:00:00Z') };
  const problems: string[] = [];
  const tokenRequests: { iat: number }[] = [];
  const sends: { authorization?: string; body: { message: Record<string, unknown> } }[] = [];
  const stalled: http.ServerResponse[] = [];
  let tokenAnswer: ((res: http.ServerResponse) => void) | undefined;
  let sendAnswer: (res: http.ServerResponse) => void = () => {};
  const json = (res: http.ServerResponse, status: number, doc: unknown, headers: Record<string, string> = {}) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(doc));
  const fcmError = (res: http.ServerResponse, code: number, status: string, errorCode?: string, headers: Record<string, string> = {}) =>
    json(res, code, { error: { code, message: `Failure ${status}`, status, details: errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : [] } }, headers);

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'POST' && req.url === '/token') {
        void (async () => {
          if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') problems.push(`token content-type ${req.headers['content-type']}`);
          const form = new URLSearchParams(body);
          if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') problems.push(`grant_type ${form.get('grant_type')}`);
          if (!body.startsWith('grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=')) problems.push(`form ${body.slice(0, 80)}`);
          try {
            const { payload, protectedHeader } = await jwtVerify(form.get('assertion') ?? '', rsa.publicKey, {
              issuer: 'fcm@p1.iam.gserviceaccount.com', audience: `${base()}/token`, currentDate: new Date(clock.now), algorithms: ['RS256'],
            });
            if (protectedHeader.kid !== 'key-1') problems.push(`kid ${protectedHeader.kid}`);
            if (payload.scope !== 'https://www.googleapis.com/auth/firebase.messaging') problems.push(`scope ${payload.scope}`);
            if (payload.exp !== payload.iat! + 3600) problems.push('exp is not iat + 3600');
            tokenRequests.push({ iat: payload.iat! });
          } catch (err) {
            problems.push(`assertion: ${(err as Error).message}`);
            return json(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
          }
          if (tokenAnswer) return tokenAnswer(res);
          json(res, 200, { access_token: `at-${tokenRequests.length}`, expires_in: 3599, token_type: 'Bearer' });
        })();
        return;
      }
      if (req.method === 'POST' && req.url === '/v1/projects/p1/messages:send') {
        sends.push({ authorization: req.headers.authorization, body: JSON.parse(body) });
        return sendAnswer(res);
      }
      res.writeHead(404).end();
    });
  });
  const base = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: FcmClient[] = [];
  const client = (over: Partial<FcmClientOptions> = {}) => {
    const c = new FcmClient({
      serviceAccount: {
        type: 'service_account', project_id: 'p1', private_key_id: 'key-1', private_key: pkcs8(rsa.privateKey),
        client_email: 'fcm@p1.iam.gserviceaccount.com', token_uri: `${base()}/token`,
      },
      allowPrivateTargets: true, baseUrl: base(), now: () => clock.now, ...over,
    });
    clients.push(c);
    return c;
  };
  let sent = 0;
  const accept = (res: http.ServerResponse) => json(res, 200, { name: `projects/p1/messages/${++sent}` });
  const message = { notification: { title: 'Hi', body: 'There' }, data: { messageId: 'm-1' }, android: { priority: 'high' } };

  before(() => new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok)));
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    for (const res of stalled) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
    assert.deepEqual(problems, []);
  });

  it('fetches one access token for several sends and posts the message with the device token', async () => {
    sendAnswer = accept;
    const c = client();
    const before = tokenRequests.length;
    const first = await c.send('device-1', message);
    assert.deepEqual(first, { ok: true, id: `projects/p1/messages/${sent}` });
    assert.equal((await c.send('device-2', message)).ok, true);
    assert.equal((await c.send('device-3', message)).ok, true);
    assert.equal(tokenRequests.length - before, 1);
    assert.deepEqual(problems, []);
    const last = sends.at(-1)!;
    assert.equal(last.authorization, `Bearer at-${tokenRequests.length}`);
    assert.deepEqual(last.body, { message: { ...message, token: 'device-3' } });
    assert.equal(tokenRequests.at(-1)!.iat, Math.floor(clock.now / 1000));
  });

  it('concurrent sends share one token request', async () => {
    sendAnswer = accept;
    const c = client();
    const before = tokenRequests.length;
    const results = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((t) => c.send(t, message)));
    assert.ok(results.every((r) => r.ok));
    assert.equal(tokenRequests.length - before, 1);
    assert.deepEqual(sends.slice(-5).map((s) => s.body.message.token).sort(), ['a', 'b', 'c', 'd', 'e']);
  });

  it('fetches a new token once the cached one is within a minute of expiry', async () => {
    sendAnswer = accept;
    const c = client();
    const before = tokenRequests.length;
    await c.send('t', message);
    clock.now += 3599_000 - 61_000;
    await c.send('t', message);
    assert.equal(tokenRequests.length - before, 1, 'still valid 61 s before expiry');
    clock.now += 2_000;
    await c.send('t', message);
    assert.equal(tokenRequests.length - before, 2);
    assert.equal(tokenRequests.at(-1)!.iat, Math.floor(clock.now / 1000));
    assert.equal(sends.at(-1)!.authorization, `Bearer at-${tokenRequests.length}`);
  });

  it('404 UNREGISTERED and 403 SENDER_ID_MISMATCH are invalid tokens', async () => {
    const c = client();
    sendAnswer = (res) => fcmError(res, 404, 'NOT_FOUND', 'UNREGISTERED');
    assert.deepEqual(await c.send('gone', message), { ok: false, retry: false, invalidToken: true, reason: 'UNREGISTERED', status: 404 });
    sendAnswer = (res) => fcmError(res, 403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH');
    assert.deepEqual(await c.send('other', message), { ok: false, retry: false, invalidToken: true, reason: 'SENDER_ID_MISMATCH', status: 403 });
  });

  it('401 drops the access token; the next send fetches a new one', async () => {
    const c = client();
    sendAnswer = accept;
    await c.send('t', message);
    const before = tokenRequests.length;
    sendAnswer = (res) => fcmError(res, 401, 'UNAUTHENTICATED');
    assert.deepEqual(await c.send('t', message), { ok: false, retry: true, invalidToken: false, reason: 'UNAUTHENTICATED', status: 401 });
    assert.equal(tokenRequests.length, before);
    sendAnswer = accept;
    assert.equal((await c.send('t', message)).ok, true);
    assert.equal(tokenRequests.length, before + 1);
    assert.equal(sends.at(-1)!.authorization, `Bearer at-${before + 1}`);
  });

  it('503 and 429 are retried, honouring retry-after; 400 INVALID_ARGUMENT is not', async () => {
    const c = client();
    sendAnswer = (res) => fcmError(res, 503, 'UNAVAILABLE', 'UNAVAILABLE', { 'retry-after': '12' });
    assert.deepEqual(await c.send('t', message), { ok: false, retry: true, invalidToken: false, reason: 'UNAVAILABLE', status: 503, retryAfterMs: 12_000 });
    sendAnswer = (res) => fcmError(res, 429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED');
    assert.deepEqual(await c.send('t', message), { ok: false, retry: true, invalidToken: false, reason: 'QUOTA_EXCEEDED', status: 429 });
    sendAnswer = (res) => fcmError(res, 400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    assert.deepEqual(await c.send('t', message), { ok: false, retry: false, invalidToken: false, reason: 'INVALID_ARGUMENT', status: 400 });
  });

  it('a token endpoint 400 is not retried and says the access token failed; a 500 is retried', async () => {
    const c = client();
    const sendsBefore = sends.length;
    tokenAnswer = (res) => json(res, 400, { error: 'invalid_grant', error_description: 'Invalid grant: account not found' });
    try {
      const out = await c.send('t', message);
      assert.equal(out.ok, false);
      assert.equal(!out.ok && out.retry, false);
      assert.equal(!out.ok && out.invalidToken, false);
      assert.match(!out.ok ? out.reason : '', /access token.*400.*invalid_grant/i);
      tokenAnswer = (res) => json(res, 500, { error: 'internal_failure' });
      const down = await c.send('t', message);
      assert.equal(!down.ok && down.retry, true);
    } finally {
      tokenAnswer = undefined;
    }
    assert.equal(sends.length, sendsBefore);
  });

  it('a send that gets no answer within timeoutMs is retried', async () => {
    const c = client({ timeoutMs: 200 });
    sendAnswer = accept;
    await c.send('t', message);
    sendAnswer = (res) => stalled.push(res);
    const started = Date.now();
    const out = await c.send('t', message);
    assert.ok(Date.now() - started < 1_500);
    assert.equal(out.ok, false);
    assert.equal(!out.ok && out.retry, true);
    assert.match(!out.ok ? out.reason : '', /200 ms/);
  });

  it('refuses a loopback target unless allowPrivateTargets', async () => {
    const before = tokenRequests.length;
    const out = await client({ allowPrivateTargets: false }).send('t', message);
    assert.equal(out.ok, false);
    assert.equal(!out.ok && out.retry, false);
    assert.match(!out.ok ? out.reason : '', /private/);
    assert.equal(tokenRequests.length, before);
  });
});
