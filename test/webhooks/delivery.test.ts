import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { appendEvent, fastWebhookModules } from './harness.js';
import { sleep, startReceiver, waitFor } from './receiver.js';

const SECRET = 'Kq3v9Zt7Lm2Xw8Rb5Np1Hs6Gd4Fj0Ce';

eachDatabase('webhook delivery', (dialect) => {
  // No idle poll within a test's time: what wakes the fan-out is under test here.
  const s = useServer(dialect, { modules: fastWebhookModules({ idlePollMs: 60_000 }), env: { WEBHOOK_TIMEOUT_SECONDS: '1' } });
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    rx = await startReceiver();
  });
  after(async () => rx.close());

  async function createHook(space: string, body: Record<string, unknown>) {
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'test', url: rx.url, ...body } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().id as string;
  }
  const deliveries = async (space: string, id: string) => (await s().request({ method: 'GET', url: `/apispaces/${space}/webhooks/${id}/deliveries` })).json();
  const bodiesFor = (space: string) => rx.requests.filter((r) => r.body.toString().includes(space));

  it('delivers a signed envelope (X-Comapi-Signature and Standard Webhooks)', async () => {
    rx.setReply(() => 200);
    const space = await s().createSpace();
    await createHook(space, { secret: SECRET, subscriptions: [{ type: 'profile.*' }] });
    await appendEvent(s().container, space, 'profile.update', { id: 'sam@example.com', name: 'Sam' }, { revision: 3, etag: '"3-abc"' });
    await appendEvent(s().container, space, 'message.sent', { id: 'm1', status: 'sent', details: { channel: 'sms' } });
    await waitFor(() => bodiesFor(space).length >= 1, 5000, 'delivery');
    const [req] = bodiesFor(space);
    const body = req!.body;
    assert.equal(req!.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(req!.headers['user-agent'], 'Switchboard-Webhooks/1.0');
    assert.equal(req!.headers['x-switchboard-attempt'], '1');
    assert.equal(req!.headers['x-comapi-signature'], createHmac('sha1', SECRET).update(body).digest('hex'));
    const verifier = new StandardWebhook(Buffer.from(SECRET).toString('base64'));
    const verified = verifier.verify(body.toString('utf8'), {
      'webhook-id': String(req!.headers['webhook-id']), 'webhook-timestamp': String(req!.headers['webhook-timestamp']), 'webhook-signature': String(req!.headers['webhook-signature']),
    }) as Record<string, unknown>;
    assert.equal(verified.name, 'profile.update');
    assert.match(String(verified.eventId), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(verified.apiSpaceId, space);
    assert.equal(verified.accountId, 1);
    assert.equal(verified.revision, 3);
    assert.equal(verified.etag, '"3-abc"');
    assert.deepEqual(verified.payload, { id: 'sam@example.com', name: 'Sam' });
    assert.match(String(verified.timestamp), /Z$/);
    await sleep(150);
    assert.equal(bodiesFor(space).length, 1, 'message.sent is not subscribed');
  });

  it('retries 503 twice then succeeds on the third attempt with the same webhook-id', async () => {
    const space = await s().createSpace();
    let n = 0;
    rx.setReply((r) => (r.body.toString().includes(space) ? (++n <= 2 ? 503 : 200) : 200));
    const id = await createHook(space, { secret: SECRET, subscriptions: [{ type: 'message.failed' }] });
    await appendEvent(s().container, space, 'message.failed', { id: 'm2', status: 'failed', details: { channel: 'sms' } });
    await waitFor(() => bodiesFor(space).length >= 3, 5000, 'three attempts');
    const reqs = bodiesFor(space);
    assert.deepEqual(reqs.map((r) => r.headers['x-switchboard-attempt']), ['1', '2', '3']);
    assert.equal(new Set(reqs.map((r) => r.headers['webhook-id'])).size, 1);
    assert.ok(reqs.every((r) => r.body.equals(reqs[0]!.body)), 'same body on every retry');
    await waitFor(async () => (await deliveries(space, id))[0]?.state === 'succeeded', 3000, 'succeeded state');
    const [d] = await deliveries(space, id);
    assert.equal(d.id, reqs[0]!.headers['webhook-id']);
    assert.equal(d.attempts, 3);
    assert.deepEqual(d.history.map((h: { statusCode: number; outcome: string }) => [h.statusCode, h.outcome]), [[503, 'retry'], [503, 'retry'], [200, 'succeeded']]);
    assert.ok(d.history.every((h: { durationMs: number }) => h.durationMs >= 0));
    await sleep(200);
    assert.equal(bodiesFor(space).length, 3);
  });

  it('drops a delivery answered 400 without retrying, and retries it on request', async () => {
    const space = await s().createSpace();
    rx.setReply((r) => (r.body.toString().includes(space) ? 400 : 200));
    const id = await createHook(space, { subscriptions: [{ type: 'message.*' }] });
    await appendEvent(s().container, space, 'message.read', { id: 'm3', status: 'read', details: { channel: 'sms' } });
    await waitFor(() => bodiesFor(space).length >= 1, 5000, 'first attempt');
    await sleep(300);
    assert.equal(bodiesFor(space).length, 1);
    assert.equal(bodiesFor(space)[0]!.headers['x-comapi-signature'], undefined, 'no secret, no signature');
    const [d] = await deliveries(space, id);
    assert.equal(d.state, 'dropped');
    rx.setReply(() => 200);
    const retry = await s().request({ method: 'POST', url: `/apispaces/${space}/webhooks/${id}/deliveries/${d.id}/retry` });
    assert.equal(retry.statusCode, 202, retry.body);
    await waitFor(() => bodiesFor(space).length >= 2, 5000, 'manual retry');
    assert.equal(bodiesFor(space)[1]!.headers['x-switchboard-attempt'], '2');
    await waitFor(async () => (await deliveries(space, id))[0]?.state === 'succeeded', 3000, 'succeeded');
    const again = await s().request({ method: 'POST', url: `/apispaces/${space}/webhooks/${id}/deliveries/nope/retry` });
    assert.equal(again.statusCode, 404);
  });

  it('stops delivering as soon as the webhook is deleted', async () => {
    const space = await s().createSpace();
    rx.setReply((r) => (r.body.toString().includes(space) ? 503 : 200));
    const id = await createHook(space, { subscriptions: [{ type: 'session.*' }] });
    await appendEvent(s().container, space, 'session.create', { id: 's1', profileId: 'alice' });
    await waitFor(() => bodiesFor(space).length >= 1, 5000, 'first attempt');
    const del = await s().request({ method: 'DELETE', url: `/apispaces/${space}/webhooks/${id}` });
    assert.equal(del.statusCode, 204);
    const seen = bodiesFor(space).length;
    await appendEvent(s().container, space, 'session.delete', { id: 's1', profileId: 'alice', reason: 'ended' });
    await sleep(400);
    assert.ok(bodiesFor(space).length <= seen + 1, 'at most the request already in flight');
    const count = bodiesFor(space).length;
    await sleep(300);
    assert.equal(bodiesFor(space).length, count);
    const list = await s().request({ method: 'GET', url: `/apispaces/${space}/webhooks/${id}/deliveries` });
    assert.ok(list.json().every((d: { state: string }) => d.state !== 'pending'));
  });

  it('applies subscriptions and filters (AND across names, OR within a name), once per webhook', async () => {
    rx.setReply(() => 200);
    const space = await s().createSpace();
    await createHook(space, { subscriptions: [
      { type: 'chatMessage.sent', filters: [{ name: 'direction', value: 'inbound' }, { name: 'teamId', value: 'Support' }, { name: 'teamId', value: 'Sales' }] },
      { type: 'message.*', filters: [{ name: 'channel', value: 'sms' }] },
      { type: 'message.delivered' },
      { type: 'presence.*', filters: [{ name: 'profileId', value: 'kim' }] },
    ] });
    const chat = (n: string, direction: string, teamId: string) => appendEvent(s().container, space, 'chatMessage.sent', { id: n, context: { direction, teamId, chatId: 'c', sentBy: 'x', sentOn: 'y', from: { id: 'z' } }, parts: [] });
    await chat('c1', 'inbound', 'Support');
    await chat('c2', 'outbound', 'Support');
    await chat('c3', 'inbound', 'Sales');
    await chat('c4', 'inbound', 'Billing');
    await appendEvent(s().container, space, 'message.sent', { id: 'm-sms', details: { channel: 'sms' } });
    await appendEvent(s().container, space, 'message.sent', { id: 'm-email', details: { channel: 'email' } });
    await appendEvent(s().container, space, 'message.delivered', { id: 'm-both', details: { channel: 'sms' } });
    await appendEvent(s().container, space, 'message.inbound', { id: 'm-in', messageId: 'm-in', channel: 'sms' });
    await appendEvent(s().container, space, 'presence.away', null, { profileId: 'kim' });
    await appendEvent(s().container, space, 'presence.away', null, { profileId: 'lee' });
    await appendEvent(s().container, space, 'message.processing', { id: 'm-internal', details: { channel: 'sms' } });
    await waitFor(() => bodiesFor(space).length >= 6, 5000, 'six deliveries');
    await sleep(200);
    const got = bodiesFor(space).map((r) => JSON.parse(r.body.toString()));
    assert.deepEqual(got.map((e) => e.payload?.id ?? `presence:${e.profileId}`).sort(), ['c1', 'c3', 'm-both', 'm-in', 'm-sms', 'presence:kim']);
    const presence = got.find((e) => e.name === 'presence.away');
    assert.equal(presence.payload, undefined);
    assert.equal(presence.revision, undefined);
  });

  it('batches: full batches at once, the rest after batchTimeout, always arrays', async () => {
    rx.setReply(() => 200);
    const space = await s().createSpace();
    await createHook(space, { batch: true, maxBatchSize: 3, batchTimeout: 1, secret: SECRET, subscriptions: [{ type: 'conversation.*' }] });
    for (let i = 0; i < 7; i++) await appendEvent(s().container, space, 'conversation.update', { id: `conv-${i}` }, { revision: i });
    await waitFor(() => bodiesFor(space).length >= 2, 5000, 'two full batches');
    const t0 = Date.now();
    await waitFor(() => bodiesFor(space).length >= 3, 5000, 'partial batch');
    assert.ok(Date.now() - t0 < 2500);
    const batches = bodiesFor(space).map((r) => JSON.parse(r.body.toString()));
    assert.ok(batches.every(Array.isArray));
    assert.deepEqual(batches.map((b) => b.length), [3, 3, 1]);
    assert.deepEqual(batches.flat().map((e: { payload: { id: string } }) => e.payload.id), Array.from({ length: 7 }, (_, i) => `conv-${i}`));
    const req = bodiesFor(space)[0]!;
    assert.equal(req.headers['x-comapi-signature'], createHmac('sha1', SECRET).update(req.body).digest('hex'));
  });

  it('signs with the old and the new secret during a rotation', async () => {
    rx.setReply(() => 200);
    const space = await s().createSpace();
    const id = await createHook(space, { secret: SECRET, subscriptions: [{ type: 'facebook.optin' }] });
    const put = await s().request({ method: 'PUT', url: `/apispaces/${space}/webhooks/${id}`, payload: { name: 'test', url: rx.url, secret: 'a-brand-new-secret-value', subscriptions: [{ type: 'facebook.optin' }] } });
    assert.equal(put.statusCode, 200);
    await appendEvent(s().container, space, 'facebook.optin', { fbMessengerId: '1', ref: 'r' });
    await waitFor(() => bodiesFor(space).length >= 1, 5000, 'delivery');
    const req = bodiesFor(space)[0]!;
    const sigs = String(req.headers['webhook-signature']).split(' ');
    assert.equal(sigs.length, 2);
    const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']) };
    for (const key of [SECRET, 'a-brand-new-secret-value']) {
      new StandardWebhook(Buffer.from(key).toString('base64')).verify(req.body.toString(), { ...headers, 'webhook-signature': String(req.headers['webhook-signature']) });
    }
    assert.equal(req.headers['x-comapi-signature'], createHmac('sha1', 'a-brand-new-secret-value').update(req.body).digest('hex'));
  });

  it('keeps at most 4 requests in flight per webhook; a slow receiver does not hold back another', async () => {
    const space = await s().createSpace();
    let inflight = 0;
    let maxInflight = 0;
    rx.setReply(async (r) => {
      if (!r.url.includes('slow')) return 200;
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      await sleep(400);
      inflight--;
      return 200;
    });
    await createHook(space, { url: `${rx.url}?slow`, subscriptions: [{ type: 'chat.update' }] });
    await createHook(space, { url: `${rx.url}?fast`, subscriptions: [{ type: 'chat.update' }] });
    const p = s().container.platform;
    await p.transaction(async (uow) => {
      for (let i = 0; i < 12; i++) await p.events.append(uow, { apiSpaceId: space, accountId: 1, name: 'chat.update', payload: { id: `chat-${i}` }, meta: { revision: i } });
    });
    const mine = (kind: string) => rx.requests.filter((r) => r.url.includes(kind) && r.body.toString().includes(space));
    await waitFor(() => mine('fast').length >= 12, 3000, 'all fast deliveries');
    assert.ok(mine('slow').length <= 4, `slow receiver got ${mine('slow').length} while fast finished`);
    await waitFor(() => mine('slow').length >= 12, 5000, 'all slow deliveries');
    assert.equal(maxInflight, 4);
    // First attempts go out in event order.
    assert.deepEqual(mine('fast').map((r) => JSON.parse(r.body.toString()).payload.id), Array.from({ length: 12 }, (_, i) => `chat-${i}`));
  });

  it('holds no database connection or transaction while requests are in flight', async () => {
    const space = await s().createSpace();
    let inflight = 0;
    rx.setReply(async (r) => {
      if (!r.url.includes('held')) return 200;
      inflight++;
      await sleep(1500);
      inflight--;
      return 200;
    });
    await createHook(space, { url: `${rx.url}?held`, subscriptions: [{ type: 'chat.update' }] });
    const p = s().container.platform;
    await p.transaction(async (uow) => {
      for (let i = 0; i < 8; i++) await p.events.append(uow, { apiSpaceId: space, accountId: 1, name: 'chat.update', payload: { id: `chat-${i}` }, meta: { revision: i } });
    });
    await waitFor(() => inflight === 4, 3000, '4 requests in flight');
    const t0 = Date.now();
    const pool = p.handle.pool;
    if (pool) {
      // Every pooled connection but the job queue's LISTEN client can be taken at once.
      const clients = await Promise.all(Array.from({ length: pool.options.max - 1 }, () => pool.connect()));
      for (const c of clients) c.release();
    } else {
      // SQLite has one connection: a write transaction goes through at once.
      await p.transaction(async (uow) => void (await uow.tx.selectFrom('webhooks').select('id').limit(1).execute()));
    }
    assert.ok(Date.now() - t0 < 500, `database busy for ${Date.now() - t0} ms while requests were in flight`);
    assert.equal(inflight, 4);
  });

  it('retries a request that times out (WEBHOOK_TIMEOUT_SECONDS)', async () => {
    const space = await s().createSpace();
    let n = 0;
    rx.setReply(async (r) => {
      if (!r.body.toString().includes(space)) return 200;
      if (++n === 1) await sleep(1500);
      return 200;
    });
    const id = await createHook(space, { subscriptions: [{ type: 'chat.closed' }] });
    await appendEvent(s().container, space, 'chat.closed', { id: 'chat-x', teamId: 't' }, { revision: 2 });
    await waitFor(async () => (await deliveries(space, id))[0]?.state === 'succeeded', 5000, 'delivered after a timeout');
    const [d] = await deliveries(space, id);
    assert.equal(d.attempts, 2);
    assert.match(d.history[0].error, /timeout/);
    assert.equal(d.history[0].statusCode, null);
  });

  it('moves past events of spaces without webhooks without a transaction, stores that cursor later, and still delivers to a space with one', async () => {
    rx.setReply(() => 200);
    const { container } = s();
    const fanout = container.services.webhooks.fanout;
    const quiet = await s().createSpace();
    await fanout.drain();
    await fanout.stop(); // stores any cursor position still pending
    fanout.start();
    const before = await container.platform.events.cursor('webhooks');
    let last = 0;
    for (let i = 0; i < 5; i++) last = await appendEvent(container, quiet, 'profile.update', { id: `quiet-${i}` }, { revision: 1 });
    await fanout.drain();
    // The full step stores the cursor in its transaction; skipping stores it about a second later.
    assert.equal(await container.platform.events.cursor('webhooks'), before, 'skipped without a write transaction');
    await fanout.stop();
    fanout.start();
    assert.ok((await container.platform.events.cursor('webhooks')) >= last, 'the cursor is stored when the fan-out stops');
    const loud = await s().createSpace();
    await createHook(loud, { subscriptions: [{ type: 'profile.*' }] });
    await appendEvent(container, quiet, 'profile.update', { id: 'quiet-again' }, { revision: 2 });
    await appendEvent(container, loud, 'profile.update', { id: 'loud-1' }, { revision: 1 });
    await waitFor(() => bodiesFor(loud).length >= 1, 5000, 'delivery to the space with a webhook');
    assert.equal(JSON.parse(bodiesFor(loud)[0]!.body.toString()).payload.id, 'loud-1');
    assert.equal(bodiesFor(quiet).length, 0);
  });

  it('reads a burst of appends once, however many events it holds', async () => {
    const { container } = s();
    const p = container.platform;
    const fanout = container.services.webhooks.fanout;
    const quiet = await s().createSpace();
    await fanout.drain();
    const readAfter = p.events.readAfter;
    let reads = 0;
    p.events.readAfter = (...args) => {
      reads++;
      return readAfter.apply(p.events, args);
    };
    try {
      await p.transaction((uow) => p.events.appendMany(uow, Array.from({ length: 20 }, (_, i) => ({ apiSpaceId: quiet, accountId: 1, name: 'profile.update', payload: { id: `burst-${i}` }, meta: {} }))));
      await sleep(200);
      // Each appended event is also published on the bus; none of them may start a step of its own.
      assert.equal(reads, 1);
    } finally {
      p.events.readAfter = readAfter;
    }
  });

  it('matches each event against the subscriptions in force when it was raised', async () => {
    rx.setReply(() => 200);
    const space = await s().createSpace();
    const id = await createHook(space, { subscriptions: [{ type: 'profile.*' }] });
    const fanout = s().container.services.webhooks.fanout;
    await fanout.stop(); // hold the fan-out back so the change lands before these events are read
    try {
      await appendEvent(s().container, space, 'profile.update', { id: 'before-change' }, { revision: 1 });
      await appendEvent(s().container, space, 'message.sent', { id: 'before-change-msg', details: { channel: 'sms' } });
      await sleep(5);
      const put = await s().request({ method: 'PUT', url: `/apispaces/${space}/webhooks/${id}`, payload: { name: 'test', url: rx.url, subscriptions: [{ type: 'message.*' }] } });
      assert.equal(put.statusCode, 200);
      await sleep(5);
      await appendEvent(s().container, space, 'profile.update', { id: 'after-change' }, { revision: 2 });
      await appendEvent(s().container, space, 'message.sent', { id: 'after-change-msg', details: { channel: 'sms' } });
    } finally {
      fanout.start();
    }
    await waitFor(() => bodiesFor(space).length >= 2, 5000, 'two deliveries');
    await sleep(200);
    assert.deepEqual(bodiesFor(space).map((r) => JSON.parse(r.body.toString()).payload.id).sort(), ['after-change-msg', 'before-change']);
  });
});
