import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { customChannel, eventsFor, receiver, settle } from './helpers.js';

eachDatabase('One API: sending', (dialect) => {
  const s = useServer(dialect);
  const r = receiver();
  let space = '';
  let token = '';
  before(async () => {
    await r.start();
    space = await s().createSpace('messages');
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'msg:w', 'msg:branch', 'msg:any:i', 'prof:ra', 'prof:wa'], 'Brightline-Support');
    await customChannel(s(), space, 'custom_crm', `${r.base}/notes`);
  });
  after(() => r.stop());
  const send = (payload: unknown, headers: Record<string, string> = {}) => s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: payload as object, headers });

  it('rejects invalid combinations with every failure listed', async () => {
    const res = await send({
      to: { phoneNumber: '12' }, rules: ['sms'], ruleSet: 'x', templateId: 't', body: 'b', expiresOn: '2001-01-01T00:00:00Z',
      customBody: { sms: { from: 'OK' }, custom_crm: { not: 'a string' } }, channelOptions: { sms: { from: 'BRIGHT' } },
      messageParts: [{ type: 'whatsapp/template', data: {} }, { type: 'bad', url: 'https://x', data: 'y' }],
    });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.equal(body.code, 'ValidationFailed');
    const names = body.validationFailures.map((f: { paramName: string }) => f.paramName);
    for (const p of ['to.phoneNumber', 'rules', 'templateId', 'expiresOn', 'customBody.custom_crm', 'channelOptions.sms', 'messageParts[0].channels', 'messageParts[1].type', 'messageParts[1]']) {
      assert.ok(names.includes(p), `${p} in ${names.join(', ')}`);
    }
    const empty = await send({ to: {}, rules: [] });
    assert.deepEqual(empty.json().validationFailures.map((f: { paramName: string }) => f.paramName).sort(), ['body', 'rules', 'to'].sort().filter((p) => p !== 'body'));
    assert.equal((await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: 'nope', headers: { 'content-type': 'application/json' } })).statusCode, 400);
    // An empty messageParts is no content.
    const noParts = await send({ to: { crmId: 'C-1' }, rules: ['custom_crm'], messageParts: [] });
    assert.equal(noParts.statusCode, 400);
    assert.deepEqual(noParts.json().validationFailures.map((f: { paramName: string }) => f.paramName), ['body']);
  });

  it('checks send permissions per channel and msg:branch for ruleSet', async () => {
    const smsOnly = await s().createToken(space, ['msg:sms:s']);
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token: smsOnly, payload: { to: { email: 'a@b.c' }, rules: ['email'], body: 'x' } });
    assert.equal(res.statusCode, 403);
    const rs = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token: smsOnly, payload: { to: { phoneNumber: '447700900123' }, ruleSet: 'nope', body: 'x' } });
    assert.equal(rs.statusCode, 403);
    const ok = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token: smsOnly, payload: { to: { phoneNumber: '+44 7700 900123' }, rules: ['sms'], body: 'x' } });
    assert.equal(ok.statusCode, 201);
    assert.equal(ok.json().to.phoneNumber, '447700900123');
    // sms is not configured in this space: decided synchronously (§3.1)
    assert.equal(ok.json().status, 'failed');
    // …and the profile it names exists all the same (§2.2 rule 1), with the message in its history.
    const ghost = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to: { profileId: 'ghost', email: 'ghost@example.com' }, rules: ['sms'], body: 'x' } });
    assert.equal(ghost.json().status, 'failed');
    let profile = await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/ghost`, token });
    for (let i = 0; i < 50 && profile.statusCode === 404; i++) {
      await new Promise((r) => setTimeout(r, 20));
      profile = await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/ghost`, token });
    }
    assert.equal(profile.json().email, 'ghost@example.com');
    // A profile the directory refuses does not fail the send, nor a batch it is part of.
    for (const to of [{ profileId: 'optin' }, { profileId: 'bulk' }, { profileId: 'ghost2', 'crm.id': 'x' }]) {
      const one = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to, rules: ['sms'], body: 'x' } });
      assert.equal(one.statusCode, 201, one.body);
      assert.equal(one.json().status, 'failed');
      const batch = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/batch`, token, payload: [{ to: { crmId: 'C-99' }, rules: ['custom_crm'], body: 'good' }, { to, rules: ['sms'], body: 'x' }] });
      assert.equal(batch.statusCode, 202, batch.body);
      const [good, bad] = batch.json() as Array<{ messageId: string }>;
      await settle(s());
      assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${good!.messageId}`, token })).json().status, 'sent');
      assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${bad!.messageId}`, token })).json().status, 'failed');
    }
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/ghost/messages`, token })).json()[0].messageId, ghost.json().messageId);
    assert.equal(ok.json().statusDetails.attempts[0].reason, 'NotConfigured');
  });

  it('resolves merge fields from the profile, falls back past an unconfigured sms and reaches delivered', async () => {
    const prof = await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, token, payload: { id: 'jane', firstName: 'Jane', crmId: 'C-1', lastOrder: { ref: 'SO-7' } } });
    assert.ok(prof.statusCode < 300, prof.body);
    const res = await send({
      to: { profileId: 'jane' }, rules: ['sms', 'custom_crm'], title: 'Hi', body: 'Hi {{profile.firstName}}, order {{ profile.lastOrder.ref }} shipped',
      metadata: { order: 'SO-7' },
    });
    assert.equal(res.statusCode, 201, res.body);
    const msg = res.json();
    assert.equal(msg.status, 'processing');
    assert.equal(msg.body, 'Hi {{profile.firstName}}, order {{ profile.lastOrder.ref }} shipped');
    assert.equal(msg.senderProfileId, 'Brightline-Support');
    assert.ok(res.headers.etag && res.headers.location);
    await settle(s());
    const got = r.seen.find((x) => x.body.ref === msg.messageId);
    assert.ok(got, 'receiver saw the message');
    assert.equal(got!.body.body, 'Hi Jane, order SO-7 shipped');
    assert.equal(got!.body.to, 'C-1');
    assert.equal(got!.body.meta, 'SO-7');
    const sent = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${msg.messageId}`, token })).json();
    assert.equal(sent.status, 'sent');
    assert.equal(sent.statusDetails.channelId, 'custom_crm');
    assert.deepEqual(sent.statusDetails.attempts.map((a: { channel: string; outcome: string; reason?: string }) => [a.channel, a.outcome, a.reason]), [['sms', 'skipped', 'NotConfigured'], ['custom_crm', 'accepted', undefined]]);

    const st = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/${msg.messageId}/statuses/delivered`, token, payload: { channel: 'custom_crm', channelStatus: { code: 'DELIVERED' } } });
    assert.equal(st.statusCode, 200, st.body);
    assert.equal(st.json().applied, true);
    const back = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/${msg.messageId}/statuses/sent`, token, payload: { channel: 'custom_crm' } });
    assert.equal(back.json().applied, false);
    const wrong = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/${msg.messageId}/statuses/read`, token, payload: { channel: 'email' } });
    assert.equal(wrong.statusCode, 409);
    assert.equal((await s().request({ method: 'POST', url: `/apispaces/${space}/messages/${msg.messageId}/statuses/bogus`, token, payload: { channel: 'custom_crm' } })).statusCode, 400);
    const final = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${msg.messageId}`, token })).json();
    assert.equal(final.status, 'delivered');
    const events = await eventsFor(s(), msg.messageId);
    assert.deepEqual(events.map((e) => e.name), ['message.sent', 'message.delivered']);
    assert.deepEqual(events[0]!.payload.metadata, { order: 'SO-7' });
    assert.equal(events[1]!.payload.details.channel, 'custom_crm');
    assert.ok(events[1]!.meta.etag);
  });

  it('renders a stored template per recipient and rejects an unknown templateId', async () => {
    const t = await s().request({ method: 'POST', url: `/apispaces/${space}/templates`, payload: { id: 'shipped', name: 'shipped', messageParts: [{ type: 'text/plain', data: 'Parcel for {{profile.firstName}} ({{metadata.order}})' }, { type: 'image/png', url: 'https://cdn.example.com/van.png', channels: ['whatsApp'] }] } });
    assert.equal(t.statusCode, 201, t.body);
    const unknown = await send({ to: { crmId: 'C-1' }, rules: ['custom_crm'], templateId: 'nope' });
    assert.equal(unknown.statusCode, 400);
    assert.equal(unknown.json().validationFailures[0].paramName, 'templateId');
    const both = await send({ to: { crmId: 'C-1' }, rules: ['custom_crm'], templateId: 'shipped', body: 'x' });
    assert.equal(both.statusCode, 400);
    const m = (await send({ to: { profileId: 'jane' }, rules: ['custom_crm'], templateId: 'shipped', metadata: { order: 'SO-9' } })).json();
    await settle(s());
    assert.equal(r.seen.find((x) => x.body.ref === m.messageId)?.body.body, 'Parcel for Jane (SO-9)');
  });

  it('honours opt-out and requireOptIn: filtered, message.failed with status filtered', async () => {
    await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, token, payload: { id: 'olly', crmId: 'O-1' } });
    const out = await s().request({ method: 'DELETE', url: `/apispaces/${space}/profiles/olly/optin?channel=custom_crm`, token });
    assert.ok(out.statusCode < 300, out.body);
    const a = (await send({ to: { profileId: 'olly' }, rules: ['custom_crm'], body: 'x' })).json();
    await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, token, payload: { id: 'nina', crmId: 'N-1' } });
    // the space default decides for profiles without an explicit choice (profiles.md §6.3)
    const defaults = await s().request({ method: 'PUT', url: `/apispaces/${space}/profiles/optin`, payload: { custom_crm: false } });
    assert.ok(defaults.statusCode < 300, defaults.body);
    const b = (await send({ to: { profileId: 'nina' }, rules: ['custom_crm'], body: 'x', requireOptIn: true })).json();
    const c = (await send({ to: { crmId: 'N-2' }, rules: ['custom_crm'], body: 'x', requireOptIn: true })).json();
    await settle(s());
    await s().request({ method: 'PUT', url: `/apispaces/${space}/profiles/nina/optin`, token, payload: { channels: ['custom_crm'] } });
    await s().request({ method: 'PUT', url: `/apispaces/${space}/profiles/optin`, payload: { custom_crm: true } });
    const d = (await send({ to: { profileId: 'nina' }, rules: ['custom_crm'], body: 'x', requireOptIn: true })).json();
    await settle(s());
    const get = async (id: string) => (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token })).json();
    assert.equal((await get(a.messageId)).status, 'filtered');
    assert.equal((await get(a.messageId)).statusDetails.attempts[0].reason, 'OptedOut');
    assert.equal((await get(b.messageId)).statusDetails.attempts[0].reason, 'NotOptedIn');
    assert.equal((await get(c.messageId)).status, 'filtered');
    assert.equal((await get(d.messageId)).status, 'sent');
    const events = await eventsFor(s(), a.messageId);
    assert.deepEqual(events.map((e) => [e.name, e.payload.status]), [['message.failed', 'filtered']]);
  });

  it('replays idempotent sends and refuses a reused key with another body', async () => {
    const body = { to: { crmId: 'C-9' }, rules: ['custom_crm'], body: 'once' };
    const a = await send(body, { 'idempotency-key': 'k-1' });
    const b = await send({ body: 'once', rules: ['custom_crm'], to: { crmId: 'C-9' } }, { 'idempotency-key': 'k-1' });
    assert.equal(a.statusCode, 201);
    assert.equal(b.statusCode, 201);
    assert.equal(b.headers['idempotent-replayed'], 'true');
    assert.equal(b.json().messageId, a.json().messageId);
    const c = await send({ ...body, body: 'twice' }, { 'idempotency-key': 'k-1' });
    assert.equal(c.statusCode, 422);
    assert.equal(c.json().code, 'IdempotencyKeyReused');
    // a failed request releases its key
    assert.equal((await send({ to: {} }, { 'idempotency-key': 'k-2' })).statusCode, 400);
    assert.equal((await send(body, { 'idempotency-key': 'k-2' })).statusCode, 201);
    await settle(s());
    assert.equal(r.seen.filter((x) => x.body.ref === a.json().messageId).length, 1);
  });

  it('redacts and deletes', async () => {
    const m = (await send({ to: { crmId: 'C-3' }, rules: ['custom_crm'], title: 'secret', body: 'code 1234' })).json();
    await settle(s());
    assert.equal((await s().request({ method: 'PATCH', url: `/apispaces/${space}/messages/${m.messageId}`, token, payload: { redact: true } })).statusCode, 202);
    const red = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${m.messageId}`, token })).json();
    assert.equal(red.body, '');
    assert.equal(red.title, '');
    assert.equal(red.statusDetails.redacted, true);
    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${space}/messages/${m.messageId}`, token })).statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${m.messageId}`, token })).statusCode, 404);
    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${space}/messages/${m.messageId}`, token })).statusCode, 404);
  });

  it('merges a custom channel\'s customBody string once: substituted values are not scanned again', async () => {
    const res = await send({ to: { crmId: 'C-77' }, rules: ['custom_crm'], body: 'keep {{userId}} and {{messageId}}', customBody: { custom_crm: 'CB:{{body}}|{{userId}}|{{profile.crmId}}' } });
    assert.equal(res.statusCode, 201, res.body);
    await settle(s());
    const got = r.seen.find((x) => typeof x.body.raw === 'string' && x.body.raw.startsWith('CB:'));
    assert.equal(got?.body.raw, 'CB:keep {{userId}} and {{messageId}}|C-77|C-77');
  });

  it('correlates an inbound reply with the outbound metadata as sent, merge fields substituted', async () => {
    const out = await send({ to: { crmId: 'C-88' }, rules: ['custom_crm'], body: 'x', metadata: { who: '{{profile.crmId}}', fixed: 1 } });
    await settle(s());
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/inbounds`, token, payload: { channel: 'custom_crm', from: { crmId: 'C-88' }, body: 'reply', correlation: { messageId: out.json().messageId } } });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().correlation, { messageId: out.json().messageId, metadata: { who: 'C-88', fixed: 1 } });
  });

  it('addresses a custom channel by a number or a nested property of the profile', async () => {
    await customChannel(s(), space, 'custom_num', `${r.base}/num`, 'crmNo');
    await customChannel(s(), space, 'custom_nested', `${r.base}/nested`, 'crm.id');
    const prof = await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, token, payload: { id: 'numbered', crmNo: 4242, crm: { id: 'N-5' } } });
    assert.ok(prof.statusCode < 300, prof.body);
    const a = await send({ to: { profileId: 'numbered' }, rules: ['custom_num'], body: 'n' });
    const b = await send({ to: { profileId: 'numbered' }, rules: ['custom_nested'], body: 'n' });
    await settle(s());
    assert.equal(r.seen.find((x) => x.body.ref === a.json().messageId)?.body.to, '4242');
    assert.equal(r.seen.find((x) => x.body.ref === b.json().messageId)?.body.to, 'N-5');
    for (const m of [a, b]) assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${m.json().messageId}`, token })).json().status, 'sent');
  });

  it('gives every event the metadata as sent and the accepting send\'s details, and the reported time', async () => {
    // Failing before any channel took it: the metadata is still substituted.
    const failed = await send({ to: { crmId: 'C-55' }, rules: ['custom_num'], body: 'x', metadata: { who: '{{profile.crmId}}' } });
    await settle(s());
    const f = (await eventsFor(s(), failed.json().messageId)).find((e) => e.name === 'message.failed');
    assert.deepEqual(f?.payload.metadata, { who: 'C-55' });
    // A receipt after a redaction, with its own time.
    const sent = await send({ to: { crmId: 'C-56' }, rules: ['custom_crm'], body: 'x', metadata: { who: '{{profile.crmId}}' } });
    await settle(s());
    const id = sent.json().messageId;
    const delivered = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/${id}/statuses/delivered`, token, payload: { channel: 'custom_crm', timestamp: '2026-01-02T03:04:05+01:00' } });
    assert.equal(delivered.json().applied, true, delivered.body);
    const d = (await eventsFor(s(), id)).find((x) => x.name === 'message.delivered')!;
    assert.deepEqual(d.payload.details.additionalInfo, { httpStatus: 200, successful: true });
    assert.equal(d.payload.details.channelStatus.custom_crm.updatedOn, '2026-01-02T02:04:05.000Z');
    assert.equal(delivered.json().timestamp, '2026-01-02T02:04:05.000Z');
    assert.equal((await s().request({ method: 'PATCH', url: `/apispaces/${space}/messages/${id}`, token, payload: { redact: true } })).statusCode, 202);
    const read = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/${id}/statuses/read`, token, payload: { channel: 'custom_crm' } });
    assert.equal(read.json().applied, true, read.body);
    const e = (await eventsFor(s(), id)).find((x) => x.name === 'message.read')!;
    assert.deepEqual(e.payload.metadata, { who: 'C-56' });
  });

  it('honours If-Match on PATCH and DELETE (412 on a stale ETag, nothing changed)', async () => {
    const m = await send({ to: { crmId: 'C-60' }, rules: ['custom_crm'], body: 'x' });
    await settle(s());
    const url = `/apispaces/${space}/messages/${m.json().messageId}`;
    const stale = m.headers.etag as string;
    const current = (await s().request({ method: 'GET', url, token })).headers.etag as string;
    assert.notEqual(stale, current, 'the send moved the message on');
    const refused = await s().request({ method: 'PATCH', url, token, payload: { redact: true }, headers: { 'if-match': stale } });
    assert.equal(refused.statusCode, 412, refused.body);
    assert.equal((await s().request({ method: 'GET', url, token })).json().body, 'x');
    assert.equal((await s().request({ method: 'DELETE', url, token, headers: { 'if-match': stale } })).statusCode, 412);
    assert.equal((await s().request({ method: 'PATCH', url, token, payload: { redact: true }, headers: { 'if-match': current } })).statusCode, 202);
    const after = (await s().request({ method: 'GET', url, token })).headers.etag as string;
    assert.equal((await s().request({ method: 'DELETE', url, token, headers: { 'if-match': `"x", ${after}` } })).statusCode, 204);
  });

  it('takes a failure receipt\'s own error code into statusDetails.errorCode (§3.3)', async () => {
    const codes: Array<string | undefined> = [];
    for (const channelStatus of [{ errorCode: 'Undeliverable', carrier: 'E42' }, undefined]) {
      const m = await send({ to: { crmId: 'C-70' }, rules: ['custom_crm'], body: 'x' });
      await settle(s());
      const id = m.json().messageId;
      const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages/${id}/statuses/failed`, token, payload: { channel: 'custom_crm', ...(channelStatus ? { channelStatus } : {}) } });
      assert.equal(res.json().applied, true, res.body);
      codes.push((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token })).json().statusDetails.errorCode);
    }
    assert.deepEqual(codes, ['Undeliverable', 'ProviderRejected']);
  });
});
