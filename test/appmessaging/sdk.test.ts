import './sdk-env.js';
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { sdkStorage } from './sdk-env.js';
import { configureAuth, customerJwt } from './helpers.js';

/* The vendor's JavaScript SDK 1.3.0, unmodified, against a listening server (app-messaging.md §10). */

type Sdk = typeof import('@comapi/sdk-js-foundation');
type Handler = (e: any) => void;

interface User {
  name: string;
  foundation: any;
  events: Array<{ type: string; e: any }>;
  next(type: string, pred?: (e: any) => boolean, timeoutMs?: number): Promise<any>;
}

eachDatabase('vendor JavaScript SDK', (dialect) => {
  const s = useServer(dialect);
  let sdk: Sdk;
  let space = '';
  let base = '';
  let alice: User;
  let bob: User;
  let conversationId = '';
  const sentIds: string[] = [];

  async function user(name: string): Promise<User> {
    const config = new sdk.ComapiConfig()
      .withApiSpace(space)
      .withUrlBase(base)
      .withWebSocketBase(base.replace(/^http/, 'ws'))
      .withLocalStoragePrefix(`${dialect}.${name}.`)
      .withEnabledNonChatSocket(true)
      .withLogLevel(0)
      .withAuthChallenge(((options: { nonce: string }, answer: (jwt: string | null) => void) => {
        customerJwt({ sub: name, nonce: options.nonce }).then(answer, () => answer(null));
      }) as never);
    const foundation = await sdk.Foundation.initialise(config);
    const events: User['events'] = [];
    const waiters: Array<{ type: string; pred: (e: any) => boolean; resolve: Handler }> = [];
    for (const type of ['conversationMessageEvent', 'participantAdded', 'participantRemoved', 'participantTyping', 'participantTypingOff',
      'conversationUpdated', 'conversationDeleted', 'profileUpdated', 'webSocketEvent']) {
      foundation.on(type, (e: any) => {
        events.push({ type, e });
        for (const w of [...waiters]) if (w.type === type && w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      });
    }
    return {
      name, foundation, events,
      next(type, pred = () => true, timeoutMs = 5000) {
        const hit = events.find((x) => x.type === type && pred(x.e));
        if (hit) return Promise.resolve(hit.e);
        return new Promise((resolve, reject) => {
          const w = { type, pred, resolve: (e: any) => { clearTimeout(t); resolve(e); } };
          const t = setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            reject(new Error(`${name}: no ${type} event`));
          }, timeoutMs);
          waiters.push(w);
        });
      },
    };
  }

  before(async () => {
    sdk = await import('@comapi/sdk-js-foundation');
    base = (await s().app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    space = await s().createSpace('sdk');
    await configureAuth(s(), space);
  });

  after(async () => {
    // Stop the SDKs' reconnect loops before the server goes away.
    for (const u of [alice, bob]) await u?.foundation._networkManager.setWebsocketEnabled(false).catch(() => {});
  });

  it('starts sessions through the JWT challenge and opens the websocket', async () => {
    alice = await user('alice');
    bob = await user('bob');
    const session = await alice.foundation.startSession();
    assert.equal(session.profileId, 'alice');
    assert.equal((await bob.foundation.startSession()).profileId, 'bob');
    const info = await alice.next('webSocketEvent', (e) => e.name === 'socket.info');
    assert.equal(info.payload.profileId, 'alice');
  });

  it('registers and removes push details through the device API', async () => {
    const sessionUrl = `/apispaces/${space}/sessions/${alice.foundation.session.id}`;
    assert.equal(await alice.foundation.device.setFCMPushDetails('com.example.app', 'fcm-token-1'), true);
    assert.deepEqual((await s().request({ method: 'GET', url: sessionUrl })).json().push, { fcm: { package: 'com.example.app', registrationId: 'fcm-token-1' } });
    assert.equal(await alice.foundation.device.setAPNSPushDetails('com.example.app', 0 /* development */, 'a1b2c3'), true);
    assert.deepEqual((await s().request({ method: 'GET', url: sessionUrl })).json().push, { apns: { bundleId: 'com.example.app', environment: 'development', token: 'a1b2c3' } });
    assert.equal(await alice.foundation.device.removePushDetails(), true);
    assert.equal((await s().request({ method: 'GET', url: sessionUrl })).json().push, undefined);
  });

  it('reads and updates the own profile with ETags', async () => {
    const profile = alice.foundation.services.profile;
    const me = await profile.getMyProfile();
    assert.equal(me.id, 'alice');
    const etag1 = sdkStorage.getItem(`${dialect}.alice.MyProfileETag`);
    assert.ok(etag1, 'ETag stored from GET');
    const updated = await profile.updateMyProfile({ id: 'alice', name: 'Alice' });
    assert.equal(updated.name, 'Alice');
    // the profile.update frame carries the same ETag the PUT answered
    const frame = await alice.next('profileUpdated', (e) => e.profile?.name === 'Alice');
    assert.equal(frame.eTag, sdkStorage.getItem(`${dialect}.alice.MyProfileETag`));
    const patched = await profile.patchMyProfile({ email: 'alice@example.com' }, true);
    assert.equal(patched.email, 'alice@example.com');
    assert.equal(patched.name, 'Alice');
    sdkStorage.setItem(`${dialect}.alice.MyProfileETag`, '"0-stale"');
    await assert.rejects(profile.patchMyProfile({ email: 'x@example.com' }, true), (e: { statusCode: number }) => e.statusCode === 412);
    await profile.getMyProfile();
    assert.equal((await bob.foundation.services.profile.getProfile('alice')).response.name, 'Alice');
    assert.equal(bob.events.some((x) => x.type === 'profileUpdated' && x.e.profile?.id === 'alice'), false);
  });

  it('creates a conversation and adds a participant', async () => {
    const details = new sdk.ConversationBuilder().withName('Support').withDescription('SDK test');
    conversationId = details.id;
    const created = await alice.foundation.services.appMessaging.createConversation(details);
    assert.equal(created.id, conversationId);
    assert.ok(created._etag);
    await alice.next('participantAdded', (e) => e.profileId === 'alice' && e.conversationId === conversationId);
    await assert.rejects(alice.foundation.services.appMessaging.createConversation(details), (e: { statusCode: number }) => e.statusCode === 409);
    assert.equal(await alice.foundation.services.appMessaging.addParticipantsToConversation(conversationId, [{ id: 'bob', role: 'participant' }]), true);
    const added = await bob.next('participantAdded', (e) => e.profileId === 'bob');
    assert.equal(added.conversationId, conversationId);
    assert.equal(added.createdBy, 'alice');
    const participants = await bob.foundation.services.appMessaging.getParticipantsInConversation(conversationId);
    assert.deepEqual(participants.map((p: { id: string }) => p.id).sort(), ['alice', 'bob']);
    const listed = await bob.foundation.services.appMessaging.getConversations(sdk.ConversationScope.participant);
    assert.deepEqual(listed.map((c: { id: string }) => c.id), [conversationId]);
  });

  it('exchanges messages over the websocket', async () => {
    const am = (u: User) => u.foundation.services.appMessaging;
    for (let i = 1; i <= 5; i++) {
      const from = i % 2 ? alice : bob;
      const to = i % 2 ? bob : alice;
      const result = await am(from).sendMessageToConversation(conversationId, new sdk.MessageBuilder().withText(`message ${i}`).withMetadata({ i }));
      assert.equal(typeof result.id, 'string');
      assert.equal(typeof result.eventId, 'number');
      sentIds.push(result.id);
      const got = await to.next('conversationMessageEvent', (e) => e.name === 'conversationMessage.sent' && e.payload.messageId === result.id);
      assert.equal(got.conversationId, conversationId);
      assert.equal(got.conversationEventId, result.eventId);
      assert.equal(got.payload.parts[0].data, `message ${i}`);
      assert.equal(got.payload.context.from.id, from.name);
    }
  });

  it('pages history backwards and marks messages delivered', async () => {
    const am = bob.foundation.services.appMessaging;
    const seen: string[] = [];
    let page = await am.getMessages(conversationId, 2);
    seen.push(...page.messages.map((m: { id: string }) => m.id));
    while (page.continuationToken > 0) {
      page = await am.getMessages(conversationId, 2, page.continuationToken);
      seen.push(...page.messages.map((m: { id: string }) => m.id));
    }
    assert.deepEqual([...seen].reverse(), sentIds);
    // getMessages marked alice's messages (1, 3, 5) delivered for bob
    for (const id of [sentIds[0], sentIds[2], sentIds[4]]) {
      await alice.next('conversationMessageEvent', (e) => e.name === 'conversationMessage.delivered' && e.payload.messageId === id && e.payload.profileId === 'bob');
    }
    const again = await am.getMessages(conversationId, 10);
    const first = again.messages.find((m: { id: string }) => m.id === sentIds[0]);
    assert.equal(first.statusUpdates.bob.status, 'delivered');
  });

  it('marks messages read and shows typing', async () => {
    const am = bob.foundation.services.appMessaging;
    await am.sendMessageStatusUpdates(conversationId, [new sdk.MessageStatusBuilder().readStatusUpdates([sentIds[0], sentIds[2]])]);
    const read = await alice.next('conversationMessageEvent', (e) => e.name === 'conversationMessage.read' && e.payload.messageId === sentIds[2]);
    assert.equal(read.payload.profileId, 'bob');
    await am.sendIsTyping(conversationId);
    const typing = await alice.next('participantTyping', (e) => e.conversationId === conversationId);
    assert.equal(typing.profileId, 'bob');
    await am.sendIsTypingOff(conversationId);
    await alice.next('participantTypingOff', (e) => e.profileId === 'bob');
    const events = await alice.foundation.services.appMessaging.getConversationEvents(conversationId, 1, 100);
    const ids = events.map((e: { conversationEventId: number }) => e.conversationEventId);
    assert.deepEqual(ids, ids.map((_: number, i: number) => i + 1), 'one gapless stream starting at 1');
  });

  it('updates with the ETag, then a participant leaves and the owner deletes', async () => {
    const am = alice.foundation.services.appMessaging;
    const current = await am.getConversation(conversationId);
    const details = new sdk.ConversationBuilder().withId(conversationId).withName('Support (renamed)').withDescription('changed');
    const updated = await am.updateConversation(details, current._etag);
    assert.equal(updated.name, 'Support (renamed)');
    const frame = await bob.next('conversationUpdated', (e) => e.name === 'Support (renamed)');
    assert.equal(frame.eTag, updated._etag);
    await assert.rejects(am.updateConversation(details, current._etag), (e: { statusCode: number }) => e.statusCode === 412);

    assert.equal(await bob.foundation.services.appMessaging.deleteParticipantsFromConversation(conversationId, ['bob']), true);
    await alice.next('participantRemoved', (e) => e.profileId === 'bob');
    await bob.next('participantRemoved', (e) => e.profileId === 'bob');
    await assert.rejects(bob.foundation.services.appMessaging.sendMessageToConversation(conversationId, new sdk.MessageBuilder().withText('x')),
      (e: { statusCode: number }) => e.statusCode === 403);
    assert.equal(await am.deleteConversation(conversationId), true);
    await assert.rejects(am.getConversation(conversationId), (e: { statusCode: number }) => e.statusCode === 404);
  });

  it('recovers after its session is revoked (401 → new session) and ends sessions', async () => {
    const old = bob.foundation.session.id;
    const revoke = await s().request({ method: 'DELETE', url: `/apispaces/${space}/sessions/${old}` });
    assert.equal(revoke.statusCode, 204);
    const list = await bob.foundation.services.appMessaging.getConversations();
    assert.ok(Array.isArray(list));
    assert.notEqual(bob.foundation.session.id, old);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/sessions/${bob.foundation.session.id}` })).json().isActive, true);

    const aliceSession = alice.foundation.session.id;
    assert.equal(await alice.foundation.endSession(), true);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/sessions/${aliceSession}` })).json().isActive, false);
    assert.equal(await bob.foundation.endSession(), true);
  });
});
