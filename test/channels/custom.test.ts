import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCustomAdapter } from '../../src/channels/custom/http-provider.js';
import { isPublicAddress, guardedRequest, guardedLookup, BlockedTargetError, OutboundError, checkTargetUrl, createGuardedAgents } from '../../src/channels/http-guard.js';
import { renderTemplate } from '../../src/channels/custom/template.js';
import type { SendInput } from '../../src/channels/adapter.js';
import { eachDatabase, useServer } from '../helpers/harness.js';

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

/** A local HTTP receiver whose answer each test sets. */
function receiver() {
  const seen: Seen[] = [];
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_q, res) => res.end();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(req, res);
    });
  });
  return {
    seen,
    server,
    respond(fn: typeof answer) {
      answer = fn;
    },
    get base() {
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
}

const input = (over: Partial<SendInput> = {}): SendInput => ({
  apiSpaceId: 's', messageId: 'm-1', channelId: 'custom_crm', to: { profileId: 'jo', crmId: 'C-42' },
  title: 'Hi "you"', body: 'Line 1\nsays "hello" \\ back & more', metadata: { order: 'SO-1' }, ...over,
});

describe('custom channel adapter against a local receiver', () => {
  const r = receiver();
  before(() => new Promise<void>((ok) => r.server.listen(0, '127.0.0.1', ok)));
  after(() => new Promise<void>((ok) => { r.server.closeAllConnections(); r.server.close(() => ok()); }));

  const adapter = (settings: Record<string, unknown>) => createCustomAdapter({
    allowPrivateTargets: true,
    settings: { url: `${r.base}/notes`, userIdProperty: 'crmId', bodyTemplate: '{"contact": "{{userId}}", "subject": "{{ title }}", "text": "{{body}}", "ref": "{{messageId}}", "order": "{{metadata.order}}", "keep": "{{unknown}}"}', ...settings },
  });

  it('JSON-escapes substituted values, sends bearer auth and headers, reads the provider id', async () => {
    r.respond((_q, res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{"id": "prov-7"}'));
    const out = await adapter({ auth: { type: 'bearer', token: 'tok-1' }, headers: [{ key: 'X-Source', value: 'sb {{messageId}}' }] }).send(input());
    assert.deepEqual({ ...out, acceptedAt: undefined }, { kind: 'accepted', providerMessageId: 'prov-7', acceptedAt: undefined, details: { httpStatus: 201, successful: true } });
    const req = r.seen.at(-1)!;
    assert.equal(req.method, 'POST');
    assert.equal(req.headers.authorization, 'Bearer tok-1');
    assert.equal(req.headers['x-source'], 'sb m-1');
    assert.equal(req.headers['content-type'], 'application/json');
    const doc = JSON.parse(req.body);
    assert.deepEqual(doc, { contact: 'C-42', subject: 'Hi "you"', text: 'Line 1\nsays "hello" \\ back & more', ref: 'm-1', order: 'SO-1', keep: '{{unknown}}' });
  });

  it('percent-encodes form bodies and URLs; basic auth; customBody strings are not escaped', async () => {
    r.respond((_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"result": {"ref": 99}}'));
    const a = adapter({
      url: `${r.base}/u/{{userId}}?t={{title}}`, contentType: 'application/x-www-form-urlencoded', bodyTemplate: 'to={{userId}}&text={{body}}',
      auth: { type: 'basic', username: 'acme', password: 'p@ss:w' }, responseIdPath: 'result.ref',
    });
    const out = await a.send(input({ to: { crmId: 'a/b c' } }));
    assert.equal(out.kind, 'accepted');
    assert.equal(out.kind === 'accepted' && out.providerMessageId, '99');
    const req = r.seen.at(-1)!;
    assert.equal(req.url, '/u/a%2Fb%20c?t=Hi%20%22you%22');
    assert.equal(req.headers.authorization, `Basic ${Buffer.from('acme:p@ss:w').toString('base64')}`);
    assert.equal(new URLSearchParams(req.body).get('text'), 'Line 1\nsays "hello" \\ back & more');
    await a.send(input({ customBody: '{"raw": "{{body}}"}' }));
    assert.equal(r.seen.at(-1)!.body, '{"raw": "Line 1\nsays "hello" \\ back & more"}');
  });

  it('maps 4xx to rejected, 429/5xx to transient with Retry-After, timeouts to transient', async () => {
    r.respond((_q, res) => res.writeHead(400).end('bad contact'));
    const rejected = await adapter({}).send(input());
    assert.equal(rejected.kind, 'rejected');
    assert.match(rejected.kind === 'rejected' ? rejected.reason : '', /HTTP 400: bad contact/);
    r.respond((_q, res) => res.writeHead(429, { 'retry-after': '7' }).end());
    const limited = await adapter({}).send(input());
    assert.deepEqual(limited, { kind: 'transient', code: 'RateLimited', reason: 'HTTP 429', retryAfterMs: 7000 });
    r.respond((_q, res) => res.writeHead(503).end());
    assert.equal((await adapter({}).send(input())).kind, 'transient');
    r.respond(() => {});
    const started = Date.now();
    const slow = await adapter({ timeoutSeconds: 0.2 }).send(input());
    assert.equal(slow.kind, 'transient');
    assert.equal(slow.kind === 'transient' && slow.code, 'Timeout');
    assert.ok(Date.now() - started < 2000);
    const missing = await adapter({}).send(input({ to: { profileId: 'x' } }));
    assert.equal(missing.kind, 'rejected');
  });

  it('refuses private targets unless allowed, after DNS resolution', async () => {
    const blocked = createCustomAdapter({ allowPrivateTargets: false, settings: { url: `${r.base}/notes`, userIdProperty: 'crmId' } });
    const out = await blocked.send(input());
    assert.equal(out.kind, 'rejected');
    assert.equal(out.kind === 'rejected' && out.code, 'ChannelMisconfigured');
    // A name that resolves to loopback is refused at connect time.
    const viaDns = await new Promise<unknown>((ok) => guardedLookup(false)('localhost', {}, (err) => ok(err)));
    assert.ok(viaDns instanceof BlockedTargetError);
    const allowed = await new Promise<unknown>((ok) => guardedLookup(true)('localhost', {}, (err, address) => ok(err ?? address)));
    assert.equal(typeof allowed, 'string');
    await assert.rejects(guardedRequest({ url: `http://127.0.0.1:${new URL(r.base).port}/`, timeoutMs: 2000, allowPrivate: false }), (e: unknown) => e instanceof OutboundError && e.kind === 'blocked');
    for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::7f00:1', '2002:7f00:1::1', '2002:a01:203::', '0.0.0.0', '100.64.0.1']) assert.equal(isPublicAddress(ip), false, ip);
    assert.ok(checkTargetUrl('http://[::127.0.0.1]/', false), 'an IPv4-compatible loopback URL is refused');
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '2002:808:808::1']) assert.equal(isPublicAddress(ip), true, ip);
    assert.ok(checkTargetUrl('http://[::1]/x', false));
    assert.equal(checkTargetUrl('http://[::1]/x', true), undefined);
  });

  it('guardedRequest: checks names at connect time, keeps at most maxResponseBytes, maps failures, manages connections', async () => {
    const port = new URL(r.base).port;
    // A name that resolves to loopback passes the static check and is refused when connecting.
    await assert.rejects(guardedRequest({ url: `http://localhost:${port}/`, timeoutMs: 2000, allowPrivate: false }), (e: unknown) => e instanceof OutboundError && e.kind === 'blocked');
    const sockets = new Set<unknown>();
    r.respond((q, res) => {
      sockets.add(q.socket);
      res.writeHead(201, { 'x-ref': 'abc' }).end('x'.repeat(10_000));
    });
    // Headers the client manages itself (hop-by-hop, a wrong length) do not break the request.
    const one = await guardedRequest({ url: `${r.base}/cap`, method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain', connection: 'keep-alive', 'content-length': '99' }, timeoutMs: 2000, allowPrivate: true, maxResponseBytes: 100 });
    assert.equal(one.status, 201);
    assert.equal(one.headers['x-ref'], 'abc');
    assert.equal(one.body.length, 100);
    const seen = r.seen[r.seen.length - 1]!;
    assert.equal(seen.body, 'hello');
    assert.equal(seen.headers.connection, 'close', 'a one-off request does not keep its connection');
    // Pooled: consecutive requests reuse connections (the pool may open a second one while the
    // first is being released).
    sockets.clear();
    const agents = createGuardedAgents({ maxSockets: 4 });
    try {
      for (let i = 0; i < 6; i++) assert.equal((await guardedRequest({ url: `${r.base}/pool`, timeoutMs: 2000, allowPrivate: true, agents })).body.length, 10_000);
      assert.ok(sockets.size <= 2, `${sockets.size} connections for 6 requests`);
    } finally {
      agents.destroy();
    }
    r.respond(() => {});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(guardedRequest({ url: `${r.base}/slow`, timeoutMs: 5000, allowPrivate: true, signal: ac.signal }), (e: unknown) => e instanceof OutboundError && e.kind === 'aborted');
    await assert.rejects(guardedRequest({ url: `${r.base}/slow`, timeoutMs: 100, allowPrivate: true }), (e: unknown) => e instanceof OutboundError && e.kind === 'timeout');
    // A request still queued for a connection ends at its own deadline.
    const single = createGuardedAgents({ maxSockets: 1 });
    try {
      const first = guardedRequest({ url: `${r.base}/slow`, timeoutMs: 1500, allowPrivate: true, agents: single });
      const started = performance.now();
      await assert.rejects(guardedRequest({ url: `${r.base}/slow`, timeoutMs: 100, allowPrivate: true, agents: single }), (e: unknown) => e instanceof OutboundError && e.kind === 'timeout');
      assert.ok(performance.now() - started < 1000, `the queued request waited ${performance.now() - started} ms`);
      await assert.rejects(first, (e: unknown) => e instanceof OutboundError && e.kind === 'timeout');
    } finally {
      single.destroy();
    }
    const closed = http.createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const dead = (closed.address() as AddressInfo).port;
    await new Promise<void>((ok) => closed.close(() => ok()));
    await assert.rejects(guardedRequest({ url: `http://127.0.0.1:${dead}/`, timeoutMs: 2000, allowPrivate: true }), (e: unknown) => e instanceof OutboundError && e.kind === 'network' && /ECONNREFUSED/.test(e.message));
    await assert.rejects(guardedRequest({ url: 'not a url', timeoutMs: 2000, allowPrivate: true }), (e: unknown) => e instanceof OutboundError && e.kind === 'invalid');
  });

  it('renders templates in a single pass', () => {
    assert.equal(renderTemplate('{{body}}', { body: '{{title}}', title: 'x' }, 'none'), '{{title}}');
    assert.equal(renderTemplate('{{profile.a.b}}|{{profile.n}}|{{profile.o}}', { profile: { a: { b: 'deep' }, n: 3, o: { k: [1] } } }, 'json'), 'deep|3|{\\"k\\":[1]}');
  });
});

eachDatabase('custom channel through the registry', (dialect) => {
  const s = useServer(dialect);
  const r = receiver();
  before(() => new Promise<void>((ok) => r.server.listen(0, '127.0.0.1', ok)));
  after(() => new Promise<void>((ok) => { r.server.closeAllConnections(); r.server.close(() => ok()); }));

  it('builds the adapter from the stored configuration with the decrypted secret, rebuilds on change', async () => {
    const space = await s().createSpace();
    r.respond((_q, res) => res.writeHead(202, { 'content-type': 'application/json' }).end('{"messageId": "x-1"}'));
    const settings = { url: `${r.base}/in`, userIdProperty: 'crmId', auth: { type: 'bearer', token: 'secret-A' }, bodyTemplate: '{"t": "{{body}}"}' };
    await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/crm`, payload: { provider: 'http', settings } });
    const got = await s().container.services.channels.adapter(space, 'crm');
    assert.ok('adapter' in got);
    const again = await s().container.services.channels.adapter(space, 'crm');
    assert.ok('adapter' in again && again.adapter === got.adapter, 'cached by revision');
    const out = await got.adapter.send(input({ channelId: 'crm' }));
    assert.equal(out.kind === 'accepted' && out.providerMessageId, 'x-1');
    assert.equal(r.seen.at(-1)!.headers.authorization, 'Bearer secret-A');
    assert.equal(got.config.settings.auth && (got.config.settings.auth as { token: string }).token, '********');

    await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/crm`, payload: { provider: 'http', enabled: false, settings: { ...settings, auth: { type: 'bearer', token: '********' } } } });
    assert.deepEqual(await s().container.services.channels.adapter(space, 'crm'), { missing: 'disabled' });
    await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/crm`, payload: { provider: 'http', settings: { ...settings, auth: { type: 'bearer', token: '********' } } } });
    const rebuilt = await s().container.services.channels.adapter(space, 'crm');
    assert.ok('adapter' in rebuilt && rebuilt.adapter !== got.adapter);
    await rebuilt.adapter.send(input({ channelId: 'crm' }));
    assert.equal(r.seen.at(-1)!.headers.authorization, 'Bearer secret-A');
    assert.deepEqual(await s().container.services.channels.adapter(space, 'sms'), { missing: 'unconfigured' });
  });
});
