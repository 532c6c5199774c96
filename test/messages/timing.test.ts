import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, iso } from '../../src/lib/clock.js';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { customChannel, eventsFor, receiver, settle } from './helpers.js';

eachDatabase('One API: retries, timed fallback and expiry on a manual clock', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const s = useServer(dialect, { clock });
  const r = receiver();
  let space = '';
  let token = '';
  let failing = new Set<string>();
  before(async () => {
    await r.start();
    r.respond((req, res, body) => {
      if (failing.has(req.url!) || failing.has(String(body.to))) res.writeHead(503, { 'retry-after': '1' }).end('busy');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `p-${body.ref}` }));
    });
    space = await s().createSpace('timing');
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'msg:w', 'msg:any:i']);
    await customChannel(s(), space, 'custom_a', `${r.base}/a`);
    await customChannel(s(), space, 'custom_b', `${r.base}/b`);
    await customChannel(s(), space, 'custom_c', `${r.base}/c`);
  });
  after(() => r.stop());
  const post = (url: string, payload: unknown) => s().request({ method: 'POST', url: `/apispaces/${space}${url}`, token, payload: payload as object });
  const get = async (id: string) => (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token })).json();

  it('retries a transient failure on the §4.3 schedule, then sends', async () => {
    failing = new Set(['F-1']);
    const m = (await post('/messages', { to: { crmId: 'F-1' }, rules: ['custom_a'], body: 'x' })).json();
    await settle(s());
    const retrying = await get(m.messageId);
    assert.equal(retrying.status, 'retrying');
    const next = Date.parse(retrying.statusDetails.nextAttemptOn) - clock.now();
    assert.ok(next >= 24_000 && next <= 36_000, `next attempt in ${next} ms`);
    failing = new Set();
    clock.advance(40_000);
    await settle(s());
    const sent = await get(m.messageId);
    assert.equal(sent.status, 'sent');
    assert.deepEqual(sent.statusDetails.attempts.map((a: { outcome: string }) => a.outcome), ['retrying', 'accepted']);
    assert.equal(sent.statusDetails.nextAttemptOn, undefined);
  });

  it('moves to the next channel when the first does not deliver within fallbackAfter', async () => {
    failing = new Set();
    const m = (await post('/messages', { to: { crmId: 'T-1' }, rules: ['custom_a', 'custom_b'], body: 'x', fallbackAfter: 30, successStatus: 'delivered' })).json();
    await settle(s());
    assert.equal((await get(m.messageId)).statusDetails.channelId, 'custom_a');
    clock.advance(31_000);
    await settle(s());
    const moved = await get(m.messageId);
    assert.equal(moved.status, 'sent');
    assert.equal(moved.statusDetails.channelId, 'custom_b');
    assert.deepEqual(moved.statusDetails.attempts.map((a: { channel: string; outcome: string }) => [a.channel, a.outcome]), [['custom_a', 'TimedOut'], ['custom_b', 'accepted']]);
    // a late receipt for the timed-out attempt is recorded but does not move the message
    const late = await post(`/messages/${m.messageId}/statuses/delivered`, { channel: 'custom_a' });
    assert.equal(late.json().applied, false);
    assert.equal((await get(m.messageId)).statusDetails.attempts[0].status, 'delivered');
    // …also when an adapter reports it by the provider's id only
    await s().container.services.messages.applyReceipt(space, 'custom_a', { providerMessageId: `p-${m.messageId}`, status: 'read' });
    const noted = await get(m.messageId);
    assert.equal(noted.statusDetails.attempts[0].status, 'read');
    assert.equal(noted.status, 'sent');
    assert.equal((await post(`/messages/${m.messageId}/statuses/delivered`, { channel: 'custom_b' })).json().applied, true);
    clock.advance(31_000);
    await settle(s());
    const done = await get(m.messageId);
    assert.equal(done.status, 'delivered');
    assert.equal(done.statusDetails.channelId, 'custom_b');
    // once a channel reached successStatus no other channel is tried
    const ok = (await post('/messages', { to: { crmId: 'T-2' }, rules: ['custom_a', 'custom_b'], body: 'y', fallbackAfter: 30 })).json();
    await settle(s());
    await post(`/messages/${ok.messageId}/statuses/delivered`, { channel: 'custom_a' });
    clock.advance(31_000);
    await settle(s());
    assert.equal((await get(ok.messageId)).statusDetails.channelId, 'custom_a');
    assert.equal(r.seen.filter((x) => x.body.ref === ok.messageId).length, 1);
  });

  it('tries no further channel once a timed-out attempt reports successStatus late', async () => {
    failing = new Set();
    const sentTo = (id: string, path: string) => r.seen.filter((x) => x.body.ref === id && x.url === path).length;
    // a times out, b accepts, then a delivers: b's time-out must not move on to c.
    const m = (await post('/messages', { to: { crmId: 'L-1' }, rules: ['custom_a', 'custom_b', 'custom_c'], body: 'x', fallbackAfter: 30 })).json();
    await settle(s());
    clock.advance(31_000);
    await settle(s());
    assert.equal((await get(m.messageId)).statusDetails.channelId, 'custom_b');
    assert.equal((await post(`/messages/${m.messageId}/statuses/delivered`, { channel: 'custom_a' })).json().applied, false);
    clock.advance(31_000);
    await settle(s());
    const kept = await get(m.messageId);
    assert.equal(sentTo(m.messageId, '/c'), 0, 'c was not tried');
    assert.equal(kept.status, 'sent');
    assert.equal(kept.statusDetails.channelId, 'custom_b');
    assert.deepEqual(kept.statusDetails.attempts.map((a: { channel: string; outcome: string; status?: string }) => [a.channel, a.outcome, a.status]), [['custom_a', 'TimedOut', 'delivered'], ['custom_b', 'accepted', undefined]]);

    // a times out, b is retrying, then a delivers: the message takes a's status and b is not sent.
    failing = new Set(['/b']);
    const w = (await post('/messages', { to: { crmId: 'L-2' }, rules: ['custom_a', 'custom_b', 'custom_c'], body: 'y', fallbackAfter: 30 })).json();
    await settle(s());
    clock.advance(31_000);
    await settle(s());
    assert.equal((await get(w.messageId)).status, 'retrying');
    assert.equal((await post(`/messages/${w.messageId}/statuses/delivered`, { channel: 'custom_a' })).json().applied, true);
    failing = new Set();
    clock.advance(4_000_000);
    await settle(s());
    const done = await get(w.messageId);
    assert.equal(done.status, 'delivered');
    assert.equal(done.statusDetails.channelId, 'custom_a');
    assert.equal(sentTo(w.messageId, '/b'), 1, 'b only had its failed try');
    assert.equal(sentTo(w.messageId, '/c'), 0);
    assert.deepEqual((await eventsFor(s(), w.messageId)).map((e) => [e.name, e.payload.details?.channel]), [['message.sent', 'custom_a'], ['message.delivered', 'custom_a']]);
  });

  it('holds customBody.sms.deliverAfter in the queue; DELETE cancels the scheduled send', async () => {
    failing = new Set();
    const later = iso(clock.now() + 600_000);
    const held = (await post('/messages', { to: { crmId: 'D-1' }, rules: ['sms', 'custom_a'], body: 'x', customBody: { sms: { deliverAfter: later } } })).json();
    const cancel = (await post('/messages', { to: { crmId: 'D-2' }, rules: ['sms', 'custom_a'], body: 'x', customBody: { sms: { deliverAfter: later } } })).json();
    await settle(s());
    assert.equal((await get(held.messageId)).status, 'processing');
    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${space}/messages/${cancel.messageId}`, token })).statusCode, 204);
    clock.advance(601_000);
    await settle(s());
    assert.equal((await get(held.messageId)).status, 'sent');
    assert.equal(r.seen.filter((x) => x.body.ref === cancel.messageId).length, 0);
    assert.deepEqual(await eventsFor(s(), cancel.messageId), []);
  });

  it('takes adapter receipts by provider id and adapter inbounds through services.messages', async () => {
    failing = new Set();
    const m = (await post('/messages', { to: { crmId: 'S-1' }, rules: ['custom_a'], body: 'x', metadata: { k: 'v' } })).json();
    await settle(s());
    const api = s().container.services.messages;
    await api.applyReceipt(space, 'custom_a', { providerMessageId: `p-${m.messageId}`, status: 'delivered', details: { code: 'DELIVRD' } });
    await api.applyReceipt(space, 'custom_a', { providerMessageId: 'unknown', status: 'delivered' });
    const got = await get(m.messageId);
    assert.equal(got.status, 'delivered');
    assert.equal(got.statusDetails.attempts[0].providerMessageId, `p-${m.messageId}`);
    const { inboundMessageId } = await api.ingestInbound(space, { channelId: 'custom_a', from: { crmId: 'S-1' }, body: 'reply', inReplyToMessageId: m.messageId });
    const inbound = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/inbounds/${inboundMessageId}`, token })).json();
    assert.deepEqual(inbound.correlation, { messageId: m.messageId, metadata: { k: 'v' } });
    const events = await s().container.platform.events.readAfter(0, 100_000);
    assert.ok(events.some((e) => e.name === 'message.inbound' && (e.payload as { id: string }).id === inboundMessageId));
  });

  it('expires a message whose retries run past expiresOn', async () => {
    failing = new Set(['E-1']);
    const m = (await post('/messages', { to: { crmId: 'E-1' }, rules: ['custom_a'], body: 'x', expiresOn: iso(clock.now() + 20_000) })).json();
    await settle(s());
    const retrying = await get(m.messageId);
    assert.equal(retrying.status, 'retrying');
    assert.ok(Date.parse(retrying.statusDetails.nextAttemptOn) <= clock.now() + 20_000);
    clock.advance(21_000);
    await settle(s());
    const expired = await get(m.messageId);
    assert.equal(expired.status, 'expired');
    assert.equal(expired.statusDetails.errorCode, 'Expired');
    assert.deepEqual((await eventsFor(s(), m.messageId)).map((e) => e.name), ['message.expired']);
    failing = new Set();
  });
});
