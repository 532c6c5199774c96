import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { customChannel, receiver, settle } from './helpers.js';

eachDatabase('One API: batch, inbound, history, rule sets', (dialect) => {
  const s = useServer(dialect);
  const r = receiver();
  let space = '';
  let token = '';
  before(async () => {
    await r.start();
    space = await s().createSpace('batch');
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'msg:branch', 'msg:any:i', 'prof:ra', 'prof:wa']);
    await customChannel(s(), space, 'custom_crm', `${r.base}/notes`);
    await customChannel(s(), space, 'custom_b', `${r.base}/b`);
  });
  after(() => r.stop());
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) => s().request({ method: 'POST', url: `/apispaces/${space}${url}`, token, payload: payload as object, headers });

  it('accepts a 1,000-item batch in order and dispatches every item', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ to: { crmId: `B-${i}` }, rules: ['custom_crm'], body: `item ${i}` }));
    const res = await post('/messages/batch', items, { 'idempotency-key': 'batch-1' });
    assert.equal(res.statusCode, 202, res.body);
    const out = res.json() as Array<{ index: number; messageId: string }>;
    assert.equal(out.length, 1000);
    assert.deepEqual(out.slice(0, 3).map((x) => x.index), [0, 1, 2]);
    const again = await post('/messages/batch', items, { 'idempotency-key': 'batch-1' });
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.json(), out);
    await settle(s());
    const ids = new Set(out.map((x) => x.messageId));
    assert.equal(r.seen.filter((x) => ids.has(x.body.ref)).length, 1000);
    const last = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${out[999]!.messageId}`, token })).json();
    assert.equal(last.status, 'sent');
  });

  it('validates a batch all-or-nothing with indexes', async () => {
    const before = r.seen.length;
    const res = await post('/messages/batch', [{ to: { crmId: 'x' }, rules: ['custom_crm'], body: 'ok' }, { to: {}, rules: ['custom_crm'], body: 'x' }, { to: { crmId: 'y' }, rules: ['custom_crm'], customBody: { custom_crm: 's' }, channelOptions: { custom_crm: {} } }]);
    assert.equal(res.statusCode, 400);
    const f = res.json().validationFailures;
    assert.deepEqual(f.map((x: { index: number; paramName: string }) => [x.index, x.paramName]), [[1, 'to'], [2, 'channelOptions.custom_crm']]);
    assert.equal((await post('/messages/batch', [])).statusCode, 400);
    assert.equal((await post('/messages/batch', { not: 'an array' })).statusCode, 400);
    await settle(s());
    assert.equal(r.seen.length, before);
  });

  it('correlates an inbound reply with its outbound message and lists the history newest first', async () => {
    await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, token, payload: { id: 'pat', crmId: 'P-1', phoneNumber: '447700900555' } });
    await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, token, payload: { id: 'kid', crmId: 'K-1' } });
    const rel = await s().request({ method: 'PUT', url: `/apispaces/${space}/profiles/kid/rels/primary/pat`, token });
    assert.ok(rel.statusCode < 300, rel.body);
    const out = (await post('/messages', { to: { profileId: 'pat' }, rules: ['custom_crm'], title: 'T', body: 'Hello {{profile.id}}', metadata: { orderId: 'SO-1' } })).json();
    await settle(s());
    const inbound = await post('/messages/inbounds', { channel: 'custom_crm', from: { phoneNumber: '+44 7700 900555' }, body: 'Thanks!' }, { 'idempotency-key': 'in-1' });
    assert.equal(inbound.statusCode, 201, inbound.body);
    const doc = inbound.json();
    assert.equal(doc.status, 'received');
    assert.equal(doc.from.profileId, 'pat');
    assert.deepEqual(doc.correlation, { messageId: out.messageId, metadata: { orderId: 'SO-1' } });
    const replay = await post('/messages/inbounds', { channel: 'custom_crm', from: { phoneNumber: '+44 7700 900555' }, body: 'Thanks!' }, { 'idempotency-key': 'in-1' });
    assert.equal(replay.json().messageId, doc.messageId);
    const badCorr = await post('/messages/inbounds', { channel: 'sms', from: { phoneNumber: '447700900555' }, body: 'x', correlation: { messageId: 'nope' } });
    assert.equal(badCorr.statusCode, 400);
    const noBody = await post('/messages/inbounds', { channel: 'sms', from: {} });
    assert.equal(noBody.statusCode, 400);
    const ack = await post(`/messages/inbounds/${doc.messageId}/statuses/read`, { timestamp: '2024-05-01T12:00:00+02:00' });
    assert.equal(ack.json().status, 'read');
    assert.equal(ack.json().readOn, '2024-05-01T10:00:00.000Z', 'kept in UTC');
    const back = await post(`/messages/inbounds/${doc.messageId}/statuses/delivered`, { timestamp: '2024-05-01T10:00:00Z' });
    assert.equal(back.json().status, 'read');
    // the unknown sender becomes a profile named after its number
    const stranger = (await post('/messages/inbounds', { channel: 'sms', from: { phoneNumber: '+1 (555) 010-9999' }, body: 'who?' })).json();
    assert.equal(stranger.from.profileId, '15550109999');
    assert.equal(stranger.from.phoneNumber, '15550109999');

    // a child inherits identifiers it lacks from its primary; its messages show in the primary's history
    await customChannel(s(), space, 'custom_phone', `${r.base}/phone`, 'phoneNumber');
    const child = (await post('/messages', { to: { profileId: 'kid' }, rules: ['sms', 'custom_phone'], body: 'to the child' })).json();
    await settle(s());
    const hist = await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/pat/messages?limit=10`, token });
    assert.equal(hist.statusCode, 200, hist.body);
    const entries = hist.json();
    const inb = entries.find((e: { direction: string }) => e.direction === 'inbound');
    const outb = entries.find((e: { messageId: string }) => e.messageId === out.messageId);
    assert.equal(inb.status, 'read');
    assert.equal(outb.message.body, 'Hello pat');
    assert.equal(outb.status, 'sent');
    assert.ok(entries.some((e: { profileId: string }) => e.profileId === 'kid'));
    const childMsg = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${child.messageId}`, token })).json();
    assert.equal(childMsg.statusDetails.attempts[0].reason, 'NotConfigured');
    assert.equal(r.seen.find((x) => x.body.ref === child.messageId)?.body.to, '447700900555');
    const onlyIn = (await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/pat/messages?direction=inbound`, token })).json();
    assert.ok(onlyIn.every((e: { direction: string }) => e.direction === 'inbound'));
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/nobody/messages`, token })).statusCode, 404);
    // on a custom channel the sender may be identified by the channel's own property (crmId here)
    const byCrm = (await post('/messages/inbounds', { channel: 'custom_crm', from: { crmId: 'P-1' }, body: 'By CRM id' })).json();
    assert.equal(byCrm.from.profileId, 'pat');
    assert.equal(byCrm.correlation.messageId, out.messageId);
    const unknownCrm = (await post('/messages/inbounds', { channel: 'custom_crm', from: { crmId: 'NOBODY-9' }, body: 'Who?' })).json();
    assert.equal(unknownCrm.from.profileId, undefined, 'no profile is created from a custom property');
  });

  it('manages rule sets and falls back on a failure receipt with fallbackOnFailure', async () => {
    const created = await post('/rulesets', { name: 'Primary CRM', rules: ['custom_crm', 'custom_b'], fallbackOnFailure: true });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().id, 'PrimaryCRM');
    assert.equal((await post('/rulesets', { name: 'Primary CRM', rules: ['sms'] })).statusCode, 409);
    const list = (await s().request({ method: 'GET', url: `/apispaces/${space}/rulesets`, token })).json();
    assert.equal(list.length, 1);
    const unknown = await post('/messages', { to: { crmId: 'R-1' }, ruleSet: 'nope', body: 'x' });
    assert.equal(unknown.statusCode, 400);
    const m = (await post('/messages', { to: { crmId: 'R-1' }, ruleSet: 'Primary CRM', body: 'fallback me' })).json();
    await settle(s());
    const failed = await post(`/messages/${m.messageId}/statuses/failed`, { channel: 'custom_crm', failureReason: 'bounced' });
    assert.equal(failed.json().applied, true);
    await settle(s());
    const got = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${m.messageId}`, token })).json();
    assert.equal(got.status, 'sent');
    assert.equal(got.statusDetails.channelId, 'custom_b');
    assert.deepEqual(got.statusDetails.attempts.map((a: { channel: string; outcome: string }) => [a.channel, a.outcome]), [['custom_crm', 'failed'], ['custom_b', 'accepted']]);
    const put = await s().request({ method: 'PUT', url: `/apispaces/${space}/rulesets/PrimaryCRM`, token, payload: { name: 'Primary CRM', rules: ['custom_b'] }, headers: { 'if-match': '"0-nope"' } });
    assert.equal(put.statusCode, 412);
    // The ETag a write answers with still matches after the document went through the database
    // (PostgreSQL's jsonb returns keys in another order: shorter first).
    const described = await s().request({ method: 'PUT', url: `/apispaces/${space}/rulesets/PrimaryCRM`, token, payload: { name: 'Primary CRM', description: 'with a description', rules: ['custom_b'] }, headers: { 'if-match': created.headers.etag as string } });
    assert.equal(described.statusCode, 200, described.body);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/rulesets/PrimaryCRM`, token })).headers.etag, described.headers.etag);
    const again = await s().request({ method: 'PUT', url: `/apispaces/${space}/rulesets/PrimaryCRM`, token, payload: { name: 'Primary CRM', rules: ['custom_crm'] }, headers: { 'if-match': described.headers.etag as string } });
    assert.equal(again.statusCode, 200, again.body);
    const sent = await post('/messages', { to: { crmId: 'R-2' }, rules: ['custom_b'], body: 'etag', metadata: { zeta: 1, a: { yy: 1, b: 2 } } });
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${sent.json().messageId}`, token })).headers.etag, sent.headers.etag);
    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${space}/rulesets/PrimaryCRM`, token })).statusCode, 204);
  });
});
