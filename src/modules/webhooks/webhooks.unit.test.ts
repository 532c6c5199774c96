import { it } from 'node:test';
import { createHmac } from 'node:crypto';
import assert from 'node:assert/strict';
import { RETRY_DELAYS_MS, deliveryHeaders, outcomeOf, retryDelayMs } from './delivery-policy.js';
import { matches, normaliseSubscriptions } from './subscriptions.js';
import { guardedLookup, isPublicAddress } from '../../channels/http-guard.js';
import { webhookUrlProblem } from './sender.js';
import { toWebhookEnvelope } from '../../events/catalogue.js';
import type { ValidationFailure } from '../../http/errors.js';

it('follows the 17-step retry schedule with ±10 % jitter, then dead-letters', () => {
  assert.equal(RETRY_DELAYS_MS.length, 17);
  assert.equal(RETRY_DELAYS_MS.reduce((a, b) => a + b, 0), 5e3 * 2 + 30e3 * 2 + 60e3 + 120e3 + 300e3 + 600e3 + 900e3 + 1800e3 + 3600e3 + 7200e3 + 14400e3 * 5);
  assert.equal(retryDelayMs(1, RETRY_DELAYS_MS, () => 0), 4500);
  assert.equal(retryDelayMs(1, RETRY_DELAYS_MS, () => 1), 5500);
  assert.equal(retryDelayMs(17, RETRY_DELAYS_MS, () => 0.5), 14400e3);
  assert.equal(retryDelayMs(18), undefined);
  for (let i = 0; i < 100; i++) {
    const d = retryDelayMs(3)!;
    assert.ok(d >= 27e3 && d <= 33e3);
  }
});

it('classifies receiver answers', () => {
  assert.equal(outcomeOf(200), 'succeeded');
  assert.equal(outcomeOf(204), 'succeeded');
  assert.equal(outcomeOf(400), 'dropped');
  for (const s of [301, 401, 404, 429, 500, 503, undefined]) assert.equal(outcomeOf(s), 'retry');
});

it('signs the exact body bytes', () => {
  const body = Buffer.from('{"a":"é"}');
  const h = deliveryHeaders({ deliveryId: 'd1', attempt: 2, timestampSec: 1700000000, body, secrets: ['k'] });
  assert.equal(h['x-comapi-signature'], createHmac('sha1', 'k').update(body).digest('hex'));
  assert.match(h['x-comapi-signature']!, /^[0-9a-f]{40}$/);
  assert.match(h['webhook-signature']!, /^v1,[A-Za-z0-9+/]+=*$/);
  assert.equal(h['x-switchboard-attempt'], '2');
  const none = deliveryHeaders({ deliveryId: 'd1', attempt: 1, timestampSec: 1, body, secrets: [] });
  assert.equal(none['x-comapi-signature'], undefined);
  assert.equal(none['webhook-signature'], undefined);
});

it('validates and matches subscriptions', () => {
  const failures: ValidationFailure[] = [];
  const subs = normaliseSubscriptions([{ type: 'message.*', filters: [{ name: 'channel', value: 'sms' }, { name: 'channel', value: 'email' }] }, { type: 'chat.closed', filters: [{ name: 'teamId', value: 1 }] }], failures);
  assert.equal(failures.length, 0);
  const env = (name: string, payload: unknown) => toWebhookEnvelope({ id: 1, apiSpaceId: 's', accountId: 1, name, payload, meta: {}, createdOn: '2024-01-01T00:00:00.000Z' });
  assert.ok(matches(subs, env('message.sent', { details: { channel: 'email' } })));
  assert.ok(!matches(subs, env('message.sent', { details: { channel: 'rcs' } })));
  assert.ok(matches(subs, env('chat.closed', { teamId: 1 })));
  assert.ok(!matches(subs, env('chat.create', { teamId: 1 })));
  assert.ok(!matches([], env('message.sent', {})));
  normaliseSubscriptions([{ type: 'chat', filters: [] }, { type: 'session.create', filters: [{ name: 'x', value: 'y' }] }], failures);
  assert.deepEqual(failures.map((f) => f.paramName), ['subscriptions[0].type', 'subscriptions[1].filters[0].name']);
});

it('refuses private targets at configuration and at connect time', async () => {
  for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.5', '192.168.1.1', '169.254.169.254', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0.0.0.0', '100.64.0.1']) assert.equal(isPublicAddress(a), false, a);
  for (const a of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '8.8.8.8']) assert.equal(isPublicAddress(a), true, a);
  const strict = { allowHttp: false, allowPrivate: false };
  assert.equal(webhookUrlProblem('https://hooks.example.com/x', strict), undefined);
  assert.match(webhookUrlProblem('http://hooks.example.com/x', strict)!, /https/);
  assert.match(webhookUrlProblem('https://[::1]/x', strict)!, /loopback/);
  assert.match(webhookUrlProblem('https://u:p@hooks.example.com/x', strict)!, /credentials/);
  assert.equal(webhookUrlProblem('http://127.0.0.1/x', { allowHttp: true, allowPrivate: true }), undefined);
  const lookup = guardedLookup(false);
  const err = await new Promise<Error | null>((resolve) => lookup('localhost', {}, (e) => resolve(e)));
  assert.match(String(err?.message), /not a public address/);
  const ok = await new Promise<Error | null>((resolve) => guardedLookup(true)('localhost', {}, (e) => resolve(e)));
  assert.equal(ok, null);
});
