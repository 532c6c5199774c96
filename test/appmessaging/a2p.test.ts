import { it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { configureAuth, startSession } from './helpers.js';

eachDatabase('App Messaging a2p channel and push intent', (dialect) => {
  // Workers off: the push.notify job stays queued where the test can see it.
  const s = useServer(dialect, { start: false });
  let space = '';
  const url = (p: string) => `/apispaces/${space}${p}`;

  it('posts business messages into a created a2p conversation (One API appMessaging)', async () => {
    space = await s().createSpace('a2p');
    await configureAuth(s(), space);
    const am = s().container.services.appMessaging;
    const first = await am.postA2P(space, { to: 'jane', from: { profileId: 'brand', name: 'Brand' }, parts: [{ data: 'Your order shipped' }], metadata: { order: 7 }, conversationName: 'Orders' });
    assert.equal(first.conversationEventId, 1);
    const jane = await startSession(s(), space, 'jane');
    const conv = (await s().request({ method: 'GET', url: url(`/conversations/${first.conversationId}`), token: jane.token })).json();
    assert.equal(conv.messageScope, 'a2p');
    assert.equal(conv.name, 'Orders');
    assert.deepEqual(conv.roles.participant, { canSend: true, canAddParticipants: false, canRemoveParticipants: false });
    const page = (await s().request({ method: 'GET', url: url(`/conversations/${first.conversationId}/messages`), token: jane.token })).json();
    assert.deepEqual(page.messages[0].context.from, { id: 'brand', name: 'Brand' });
    assert.equal(page.messages[0].context.direction, 'outbound');
    assert.equal(page.messages[0].context.scope, 'a2p');
    // the end user's reply in an a2p conversation is inbound
    const reply = await s().request({ method: 'POST', url: url(`/conversations/${first.conversationId}/messages`), token: jane.token, payload: { parts: [{ data: 'thanks' }] } });
    assert.equal(reply.json().eventId, 2);
    const again = (await s().request({ method: 'GET', url: url(`/conversations/${first.conversationId}/messages?limit=1`), token: jane.token })).json();
    assert.equal(again.messages[0].context.direction, 'inbound');
    // an existing conversation gains a missing recipient
    await am.postA2P(space, { conversationId: first.conversationId, to: 'joe', from: { profileId: 'brand' }, parts: [{ data: 'hi joe' }] });
    const roster = (await s().request({ method: 'GET', url: url(`/conversations/${first.conversationId}/participants`) })).json();
    assert.deepEqual(roster.map((p: { id: string }) => p.id).sort(), ['brand', 'jane', 'joe']);
  });

  it('offers a channel adapter that accepts One API sends', async () => {
    const provider = s().container.services.appMessaging.channelProvider;
    assert.equal(provider.channel, 'appMessaging');
    const adapter = await provider.create({ apiSpaceId: space, channelId: 'appMessaging', settings: {}, sink: { receipt: async () => {}, inbound: async () => {} }, allowPrivateTargets: false, publicBaseUrl: 'http://x', log: pino({ level: 'silent' }) });
    const ok = await adapter.send({ apiSpaceId: space, messageId: 'm-1', channelId: 'appMessaging', to: { profileId: 'jane' }, from: { profileId: 'brand' }, title: 'Hello', body: 'Hi Jane', conversationId: 'one-api-conv' });
    assert.equal(ok.kind, 'accepted');
    const noAddress = await adapter.send({ apiSpaceId: space, messageId: 'm-2', channelId: 'appMessaging', to: {}, body: 'x' });
    assert.equal(noAddress.kind, 'rejected');
    const page = (await s().request({ method: 'GET', url: url('/conversations/one-api-conv/messages') })).json();
    assert.equal(page.messages[0].parts[0].data, 'Hi Jane');
    assert.deepEqual(page.messages[0].alert, { title: 'Hello', body: 'Hi Jane' });
    // body and parts together: the body's text part first, then the parts (one-api.md §2.4.2);
    // a body that is the parts' own text part is not repeated.
    const image = { type: 'image/png', url: 'https://cdn.example.com/van.png' };
    await adapter.send({ apiSpaceId: space, messageId: 'm-3', channelId: 'appMessaging', to: { profileId: 'jane' }, from: { profileId: 'brand' }, body: 'Shipped', messageParts: [image], conversationId: 'one-api-parts' });
    await adapter.send({ apiSpaceId: space, messageId: 'm-4', channelId: 'appMessaging', to: { profileId: 'jane' }, from: { profileId: 'brand' }, body: 'Own text', messageParts: [{ type: 'text/plain', data: 'Own text' }, image], conversationId: 'one-api-parts' });
    const both = (await s().request({ method: 'GET', url: url('/conversations/one-api-parts/messages') })).json().messages;
    const shapes = both.map((m: { parts: Array<{ type: string; data?: string }> }) => m.parts.map((p) => p.data ?? p.type)).sort((a: string[], b: string[]) => a[0]!.localeCompare(b[0]!));
    assert.deepEqual(shapes, [['Own text', 'image/png'], ['Shipped', 'image/png']]);
  });

  it('records a durable push.notify intent for messages with an alert', async () => {
    const alice = await startSession(s(), space, 'alice');
    await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'pushy', participants: [{ id: 'bob' }] } });
    await s().request({ method: 'POST', url: url('/conversations/pushy/messages'), token: alice.token, payload: { parts: [{ data: 'ping' }], alert: { text: 'New message', platforms: {} } } });
    const jobs = await s().container.platform.queue.list({ kind: 'push.notify' });
    const job = jobs.find((j) => j.payload.conversationId === 'pushy');
    assert.ok(job, 'push.notify queued');
    assert.deepEqual(job.payload.recipients, ['bob']);
    const handler = s().container.modules.find((m) => m.definition.name === 'appmessaging')!.instance.jobs!['push.notify']!;
    await handler({ job, completeIn: async () => {}, heartbeat: async () => true, signal: new AbortController().signal });
  });
});

eachDatabase('App Messaging through the One API', (dialect) => {
  const s = useServer(dialect);

  it('delivers a One API appMessaging send into a conversation and reports read back', async (t) => {
    const space = await s().createSpace('oneapi');
    await configureAuth(s(), space);
    const channel = await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/appMessaging`, payload: { channelId: 'appMessaging', enabled: true, settings: {} } });
    if (channel.statusCode === 404 && channel.json().message === 'Route not found') return t.skip('channels module not present');
    assert.ok([200, 201].includes(channel.statusCode), channel.body);
    const token = await s().createToken(space, ['msg:any:s', 'msg:r'], 'brand');
    const sent = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token,
      payload: { to: { profileId: 'jane' }, body: 'Your parcel is on its way', title: 'Parcel', rules: ['appMessaging'], conversationId: 'parcel-1' } });
    if (sent.statusCode === 404) return t.skip('One API not present');
    assert.equal(sent.statusCode, 201, sent.body);
    const messageId = sent.json().messageId ?? sent.json().id;
    const jane = await startSession(s(), space, 'jane');
    let page: { messages: Array<{ id: string; parts: Array<{ data: string }>; context: { from: { id: string } } }> } | undefined;
    for (let i = 0; i < 100 && !page?.messages?.length; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const res = await s().request({ method: 'GET', url: `/apispaces/${space}/conversations/parcel-1/messages`, token: jane.token });
      if (res.statusCode === 200) page = res.json();
    }
    assert.equal(page?.messages[0]?.parts[0]?.data, 'Your parcel is on its way');
    assert.equal(page?.messages[0]?.context.from.id, 'brand');
    await s().request({ method: 'POST', url: `/apispaces/${space}/conversations/parcel-1/messages/statusupdates`, token: jane.token, payload: [{ messageIds: [page!.messages[0]!.id], status: 'read' }] });
    let status = '';
    for (let i = 0; i < 60 && status !== 'read'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json().status;
    }
    assert.equal(status, 'read');
    // Jane's reply is an inbound One API message of that conversation, in her history.
    const reply = await s().request({ method: 'POST', url: `/apispaces/${space}/conversations/parcel-1/messages`, token: jane.token, payload: { parts: [{ type: 'text/plain', data: 'Thanks!' }] } });
    assert.equal(reply.statusCode, 200, reply.body);
    const historyToken = await s().createToken(space, ['msg:r', 'prof:ra']);
    const history = (await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/jane/messages?conversationId=parcel-1`, token: historyToken })).json();
    assert.deepEqual(history.map((h: { direction: string }) => h.direction).sort(), ['inbound', 'outbound']);
    // Without conversationId a conversation is created (§2.5.2): the message names it from then on.
    const fresh = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to: { profileId: 'jane' }, body: 'New thread', rules: ['appMessaging'] } });
    let conversationId: string | undefined;
    for (let i = 0; i < 100 && !conversationId; i++) {
      await new Promise((r) => setTimeout(r, 50));
      conversationId = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${fresh.json().messageId}`, token })).json().conversationId;
    }
    assert.ok(conversationId, 'the created conversation is on the message');
    const events = (await s().container.platform.events.readAfter(0, 100_000)).filter((e) => e.name === 'message.sent' && (e.payload as { id: string }).id === fresh.json().messageId);
    assert.equal((events[0]!.payload as { conversationId?: string }).conversationId, conversationId);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/conversations/${conversationId}/messages`, token: jane.token })).json().messages[0].parts[0].data, 'New thread');
  });
});
