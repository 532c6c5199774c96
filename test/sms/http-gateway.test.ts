import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpSmsAdapter, validateHttpSmsSettings } from '../../src/channels/sms/http/http.provider.js';
import type { CallbackRequest } from '../../src/channels/adapter.js';
import { recordingContext } from './smsc.js';

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

describe('HTTP SMS gateway provider against a local gateway', () => {
  let server: http.Server;
  let base: string;
  const seen: Seen[] = [];
  let answer: { status: number; body: string; headers?: Record<string, string> } = { status: 200, body: '{"data":{"messageId":"gw-1"}}' };

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
        res.end(answer.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const settings = () => ({
    sendUrl: `${base}/sms?dest={{to}}`,
    auth: { type: 'bearer', token: 'gw-token' },
    headers: [{ key: 'X-Account', value: 'acme' }],
    bodyTemplate: '{"to":"{{to}}","from":"{{from}}","text":"{{text}}","ref":"{{messageId}}","enc":"{{encoding}}","until":"{{validUntil}}"}',
    responseIdPath: '/data/messageId',
    defaultFrom: 'ACME',
    callbackSecret: 'cb-secret-123',
    receipt: { idPath: '/id', statusPath: '/status', statusMap: { DLV: 'delivered', ERR: 'failed' }, errorCodePath: '/error' },
    inbound: { fromPath: '/msisdn', toPath: '/shortcode', textPath: '/message' },
  });

  it('sends the templated request and reads the provider id', async () => {
    const { ctx } = recordingContext(settings());
    const adapter = createHttpSmsAdapter(ctx);
    const out = await adapter.send({ apiSpaceId: ctx.apiSpaceId, messageId: 'm-1', channelId: 'sms', to: { phoneNumber: '447400123456' }, body: 'Say "hi"\nZoë', expiresOn: Date.UTC(2030, 0, 1) });
    assert.equal(out.kind, 'accepted');
    assert.equal(out.kind === 'accepted' && out.providerMessageId, 'gw-1');
    assert.equal(out.kind === 'accepted' && out.details?.segmentCount, 1);
    const req = seen.at(-1)!;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/sms?dest=447400123456');
    assert.equal(req.headers.authorization, 'Bearer gw-token');
    assert.equal(req.headers['x-account'], 'acme');
    assert.deepEqual(JSON.parse(req.body), { to: '447400123456', from: 'ACME', text: 'Say "hi"\nZoe', ref: 'm-1', enc: 'GSM7', until: '2030-01-01T00:00:00.000Z' });
  });

  it('sends the 48-hour default validity without expiresOn or with one under a minute away (one-api.md §4.4)', async () => {
    const { ctx } = recordingContext(settings());
    const adapter = createHttpSmsAdapter(ctx);
    for (const expiresOn of [undefined, Date.now() + 30_000]) {
      await adapter.send({ apiSpaceId: ctx.apiSpaceId, messageId: 'm-v', channelId: 'sms', to: { phoneNumber: '447400123456' }, body: 'v', ...(expiresOn ? { expiresOn } : {}) });
      const until = Date.parse(JSON.parse(seen.at(-1)!.body).until) - Date.now();
      assert.ok(Math.abs(until - 48 * 3600_000) < 60_000, `validity ${until} ms`);
    }
  });

  it('classifies gateway failures', async () => {
    const { ctx } = recordingContext(settings());
    const adapter = createHttpSmsAdapter(ctx);
    const send = () => adapter.send({ apiSpaceId: ctx.apiSpaceId, messageId: 'm-2', channelId: 'sms', to: { phoneNumber: '447400123456' }, body: 'x' });
    answer = { status: 429, body: '{}', headers: { 'retry-after': '7' } };
    const t = await send();
    assert.deepEqual([t.kind, t.kind === 'transient' && t.code, t.kind === 'transient' && t.retryAfterMs], ['transient', 'Throttled', 7000]);
    answer = { status: 503, body: '{}' };
    assert.equal((await send()).kind, 'transient');
    answer = { status: 400, body: '{"error":"bad number"}' };
    assert.equal((await send()).kind, 'rejected');
    answer = { status: 200, body: '{"data":{"messageId":"gw-1"}}' };
  });

  it('takes receipts and inbound messages only with the callback secret', async () => {
    const { ctx } = recordingContext(settings());
    const adapter = createHttpSmsAdapter(ctx);
    const req = (body: unknown, headers: Record<string, string> = {}, query: Record<string, string> = {}): CallbackRequest => ({
      method: 'POST', headers, query, rawBody: Buffer.from(JSON.stringify(body)), contentType: 'application/json',
    });
    assert.equal((await adapter.handleCallback!(req({ id: 'gw-1', status: 'DLV' }))).status, 401);
    assert.equal((await adapter.handleCallback!(req({ id: 'gw-1', status: 'DLV' }, { authorization: 'Bearer wrong-secret' }))).status, 401);
    const ok = await adapter.handleCallback!(req([{ id: 'gw-1', status: 'DLV' }, { id: 'gw-2', status: 'ERR', error: 'E42' }], { authorization: 'Bearer cb-secret-123' }));
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.receipts!.map((r) => [r.providerMessageId, r.status, r.details?.errorCode, r.details?.carrierErrorCode]), [['gw-1', 'delivered', undefined, undefined], ['gw-2', 'failed', 'Undeliverable', 'E42']]);
    const mo = await adapter.handleCallback!(req({ msisdn: '+447400999888', shortcode: '88000', message: 'STOP' }, {}, { secret: 'cb-secret-123' }));
    assert.deepEqual(mo.inbounds!.map((i) => [i.from, i.to, i.body]), [[{ phoneNumber: '447400999888' }, { phoneNumber: '88000' }, 'STOP']]);
  });

  it('validates settings', () => {
    assert.deepEqual(validateHttpSmsSettings(settings()), []);
    const bad = validateHttpSmsSettings({ method: 'DELETE', receipt: { statusMap: { X: 'gone' } } }).map((f) => f.paramName).sort();
    assert.deepEqual(bad, ['callbackSecret', 'method', 'receipt.statusMap.X', 'sendUrl']);
  });
});
