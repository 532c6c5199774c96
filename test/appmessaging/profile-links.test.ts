import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer, type TestServer } from '../helpers/harness.js';
import { eventsFor, settle } from '../messages/helpers.js';
import { configureAuth, startSession } from './helpers.js';

type Page = { messages: Array<{ id: string; parts: Array<Record<string, unknown>>; alert?: unknown; metadata: Record<string, unknown>; context: Record<string, any> }> };

/** App Messaging and its neighbours: profile sessions, forget, redaction of copies, the One API channel. */
eachDatabase('App Messaging with profiles and the One API', (dialect) => {
  const s = useServer(dialect);
  let space = '';
  let token = '';
  const url = (p: string) => `/apispaces/${space}${p}`;
  const page = async (srv: TestServer, conversationId: string): Promise<Page> => {
    const res = await srv.request({ method: 'GET', url: url(`/conversations/${conversationId}/messages`) });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const send = async (payload: Record<string, unknown>): Promise<string> => {
    const res = await s().request({ method: 'POST', url: url('/messages'), token, payload: { rules: ['appMessaging'], ...payload } });
    assert.equal(res.statusCode, 201, res.body);
    await settle(s());
    return res.json().messageId;
  };

  it('sets up a space with the appMessaging channel', async () => {
    space = await s().createSpace('am-links');
    await configureAuth(s(), space);
    const channel = await s().request({ method: 'PUT', url: url('/channels/appMessaging'), payload: { enabled: true, settings: {} } });
    assert.ok(channel.statusCode < 300, channel.body);
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'msg:w'], 'brand');
  });

  it('lists active sessions as _sessions with $includeSessions=true', async () => {
    const one = await startSession(s(), space, 'ann', 'phone');
    const two = await startSession(s(), space, 'ann', 'laptop');
    await s().request({ method: 'DELETE', url: url(`/sessions/${two.session.id}`) });
    assert.equal((await s().request({ method: 'POST', url: url('/profiles'), payload: { id: 'bo', name: 'Bo' } })).statusCode, 201);
    const res = await s().request({ method: 'GET', url: url('/profiles?$includeSessions=true&$sort=id') });
    assert.equal(res.statusCode, 200, res.body);
    const byId = new Map(res.json().map((p: { id: string }) => [p.id, p]));
    const ann = byId.get('ann') as { _sessions: Array<Record<string, unknown>> };
    assert.equal(ann._sessions.length, 1);
    const full = (await s().request({ method: 'GET', url: url(`/sessions/${one.session.id}`) })).json();
    assert.deepEqual(ann._sessions[0], full);
    assert.equal(ann._sessions[0]!.isActive, true);
    assert.deepEqual((byId.get('bo') as { _sessions: unknown[] })._sessions, []);
    const plain = (await s().request({ method: 'GET', url: url('/profiles?id=ann') })).json();
    assert.equal(plain[0]._sessions, undefined);
  });

  it('passes the sender, the credential and the conversation overrides to the appMessaging channel', async () => {
    await send({ to: { profileId: 'cat' }, body: 'Parcel out', conversationId: 'deliveries-cat', channelOptions: { appMessaging: { from: { profileId: 'support', name: 'Support' } } }, overrides: { appMessaging: { conversation: { name: 'Deliveries' } } } });
    const conv = (await s().request({ method: 'GET', url: url('/conversations/deliveries-cat') })).json();
    assert.equal(conv.name, 'Deliveries');
    const first = (await page(s(), 'deliveries-cat')).messages[0]!;
    assert.deepEqual(first.context.from, { id: 'support', name: 'Support' });
    assert.match(first.context.sentBy, /^access:/);
    // without channelOptions the sender is the token's profile
    await send({ to: { profileId: 'cat' }, body: 'Second', conversationId: 'deliveries-cat' });
    assert.equal((await page(s(), 'deliveries-cat')).messages[0]!.context.from.id, 'brand');
  });

  it('redacts the conversation copy when a One API message is redacted (PATCH)', async () => {
    const messageId = await send({ to: { profileId: 'dan' }, title: 'Code', body: 'Your code is 1234', conversationId: 'codes-dan', metadata: { k: 1 } });
    const sent = (await s().request({ method: 'GET', url: url(`/messages/${messageId}`), token })).json();
    assert.equal(sent.status, 'sent');
    assert.equal((await page(s(), 'codes-dan')).messages[0]!.parts[0]!.data, 'Your code is 1234');
    // channelData.appMessaging carries the conversation event id (webhooks.md §5.1)
    const [event] = await eventsFor(s(), messageId);
    assert.deepEqual(event!.payload.channelData, { appMessaging: { conversationEventId: 1 } });
    const patch = await s().request({ method: 'PATCH', url: url(`/messages/${messageId}`), token, payload: { redact: true } });
    assert.equal(patch.statusCode, 202, patch.body);
    const copy = (await page(s(), 'codes-dan')).messages[0]!;
    assert.deepEqual(copy.parts, [{ type: 'text/plain', size: 17 }]);
    assert.equal(copy.alert, undefined);
    assert.deepEqual(copy.metadata, { k: 1 });
    const stream = (await s().request({ method: 'GET', url: url('/conversations/codes-dan/events?from=1') }));
    assert.equal(stream.statusCode, 200, stream.body);
    assert.ok(!stream.body.includes('1234'), 'the sent event no longer carries the content');
    // deleting a message redacts its copy too
    const other = await send({ to: { profileId: 'dan' }, body: 'Secret two', conversationId: 'codes-dan' });
    assert.equal((await s().request({ method: 'DELETE', url: url(`/messages/${other}`), token })).statusCode, 204);
    assert.equal((await page(s(), 'codes-dan')).messages[0]!.parts[0]!.data, undefined);
  });

  it('forgetting a profile ends its sessions, removes it from conversations and redacts its messages', async () => {
    const eve = await startSession(s(), space, 'eve');
    const fred = await startSession(s(), space, 'fred');
    const create = await s().request({ method: 'POST', url: url('/conversations'), token: eve.token, payload: { id: 'eve-fred', participants: [{ id: 'fred' }] } });
    assert.equal(create.statusCode, 201, create.body);
    await s().request({ method: 'POST', url: url('/conversations/eve-fred/messages'), token: eve.token, payload: { parts: [{ data: 'my address is 1 Main St' }] } });
    await s().request({ method: 'POST', url: url('/conversations/eve-fred/messages'), token: fred.token, payload: { parts: [{ data: 'thanks' }] } });
    const toEve = await send({ to: { profileId: 'eve' }, body: 'Hello Eve', conversationId: 'news-eve' });
    // an end user's message in an a2p conversation is also an inbound One API message
    await s().request({ method: 'POST', url: url('/conversations/news-eve/messages'), token: eve.token, payload: { parts: [{ data: 'unsubscribe me' }] } });

    const del = await s().request({ method: 'DELETE', url: url('/profiles/eve?forget=true') });
    assert.equal(del.statusCode, 204, del.body);
    await settle(s());

    assert.equal((await s().request({ method: 'GET', url: url(`/sessions/${eve.session.id}`), token: eve.token })).statusCode, 401);
    assert.equal((await s().request({ method: 'GET', url: url(`/sessions/${eve.session.id}`) })).json().isActive, false);
    const roster = (await s().request({ method: 'GET', url: url('/conversations/eve-fred/participants') })).json();
    assert.deepEqual(roster.map((p: { id: string }) => p.id), ['fred']);
    const news = (await s().request({ method: 'GET', url: url('/conversations/news-eve/participants') })).json();
    assert.deepEqual(news.map((p: { id: string }) => p.id), ['brand']);
    const all = await s().container.platform.events.readAfter(0, 100_000);
    const removed = all.filter((e) => e.name === 'conversation.participantRemoved' && (e.payload as { profileId: string }).profileId === 'eve');
    assert.deepEqual(removed.map((e) => (e.payload as { id: string }).id).sort(), ['eve-fred', 'news-eve']);

    const chat = (await page(s(), 'eve-fred')).messages;
    assert.equal(chat.find((m) => m.context.from.id === 'fred')!.parts[0]!.data, 'thanks');
    assert.deepEqual(chat.find((m) => m.context.from.id === 'eve')!.parts, [{ type: 'text/plain' }]);
    const msg = (await s().request({ method: 'GET', url: url(`/messages/${toEve}`), token })).json();
    assert.equal(msg.body, '');
    assert.deepEqual(msg.to, {});
    assert.equal(msg.statusDetails.redacted, true);
    assert.ok((await page(s(), 'news-eve')).messages.every((m) => m.parts.every((p) => p.data === undefined)));
    const inbound = await s().container.platform.db.selectFrom('inbound_messages').select(['profile_id', 'doc']).where('api_space_id', '=', space).execute();
    assert.ok(inbound.length >= 1);
    for (const r of inbound) {
      assert.equal(r.profile_id, null);
      assert.ok(!JSON.stringify(r.doc).includes('unsubscribe'), 'inbound content removed');
    }
    assert.equal((await s().request({ method: 'GET', url: url('/profiles/eve') })).statusCode, 404);
  });
});
