import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { eventsFor, receiver, settle } from '../messages/helpers.js';

eachDatabase('HTTP SMS gateway end to end', (dialect) => {
  const s = useServer(dialect);
  const gw = receiver();
  let space: string;
  let token: string;

  before(async () => {
    await gw.start();
    gw.respond((_q, res, body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ messages: [{ id: `gw-${body.ref}` }] })));
    space = await s().createSpace();
    token = await s().createToken(space, ['msg:any:s', 'msg:r']);
    const put = await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/sms`, payload: { enabled: true, provider: 'http', settings: {
      sendUrl: `${gw.base}/send`, bodyTemplate: '{"to":"{{to}}","from":"{{from}}","text":"{{text}}","ref":"{{messageId}}"}', responseIdPath: '/messages/0/id',
      defaultFrom: 'ACME', callbackSecret: 'gw-callback-secret',
      receipt: { idPath: '/messageId', statusPath: '/status', statusMap: { delivered: 'delivered', failed: 'failed' }, errorCodePath: '/err' },
      inbound: { fromPath: '/from', toPath: '/to', textPath: '/text' },
    } } });
    assert.ok(put.statusCode < 300, put.body);
    assert.equal(put.json().settings.callbackSecret, '********');
  });
  after(() => gw.stop());

  it('sends, then applies the gateway receipt and takes an inbound SMS through the channel callback', async () => {
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to: { phoneNumber: '447400123456' }, rules: ['sms'], body: 'Hello from the gateway' } });
    assert.equal(res.statusCode, 201, res.body);
    const { messageId } = res.json();
    await settle(s());
    assert.deepEqual(gw.seen.at(-1)!.body, { to: '447400123456', from: 'ACME', text: 'Hello from the gateway', ref: messageId });
    const cb = (payload: unknown, secret = 'gw-callback-secret') => s().request({ method: 'POST', url: `/apispaces/${space}/channels/sms/callback?secret=${secret}`, token: null, payload: payload as object });
    assert.equal((await cb({ messageId: `gw-${messageId}`, status: 'delivered' }, 'nope')).statusCode, 401);
    assert.equal((await cb({ messageId: `gw-${messageId}`, status: 'delivered' })).statusCode, 200);
    assert.equal((await cb({ from: '447400999000', to: 'ACME', text: 'Thanks' })).statusCode, 200);
    await settle(s());
    const msg = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json();
    assert.equal(msg.status, 'delivered');
    assert.equal(msg.statusDetails.segmentCount, 1);
    // channelData.sms (webhooks.md §5.1, sms.md §6.4) from the adapter's outcome, on every event of the message
    const events = await eventsFor(s(), messageId);
    const sms = { phoneNumberCountryCode: 'GB', segmentCount: 1, encoding: 'GSM7', from: 'ACME' };
    assert.deepEqual(events.map((e) => e.name), ['message.sent', 'message.delivered']);
    for (const e of events) assert.deepEqual(e.payload.channelData, { sms }, e.name);
    assert.equal(events[0]!.payload.details.channelStatus.sms.details.encoding, 'GSM7');
    // additionalInfo: the number sent to and the clientRef (the message id when none was given), the receipt's too
    for (const e of events) assert.deepEqual(e.payload.details.additionalInfo, { to: '447400123456', successful: true, clientRef: messageId }, e.name);
    const ref = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to: { phoneNumber: '447400123456' }, rules: ['sms'], body: 'x', customBody: { sms: { body: 'with a ref', clientRef: 'inv-9' } } } });
    await settle(s());
    assert.equal((await eventsFor(s(), ref.json().messageId))[0]!.payload.details.additionalInfo.clientRef, 'inv-9');
    const inbound = await s().container.platform.db.selectFrom('inbound_messages').select(['channel', 'profile_id']).where('api_space_id', '=', space).execute();
    assert.deepEqual(inbound.map((r) => r.channel), ['sms']);
  });
});
