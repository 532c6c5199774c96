import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { configureAuth, startSession, type StartedSession } from './helpers.js';

const JSON_HDR = { 'content-type': 'application/json' };

eachDatabase('App Messaging conversations and messages', (dialect) => {
  const s = useServer(dialect);
  let space = '';
  let alice: StartedSession;
  let bob: StartedSession;
  let carol: StartedSession;
  const url = (p: string) => `/apispaces/${space}${p}`;

  it('creates a conversation as the SDK builds it', async () => {
    space = await s().createSpace('conv');
    await configureAuth(s(), space);
    [alice, bob, carol] = await Promise.all([startSession(s(), space, 'alice'), startSession(s(), space, 'bob'), startSession(s(), space, 'carol')]);
    const res = await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'ord-7731', isPublic: false, participants: [{ id: 'bob' }] } });
    assert.equal(res.statusCode, 201);
    const c = res.json();
    assert.equal(c.name, 'ord-7731');
    assert.equal(c.messageScope, 'p2p');
    assert.equal(c._createdBy, 'session:alice');
    assert.deepEqual(c.roles.participant, { canSend: true, canAddParticipants: true, canRemoveParticipants: true });
    assert.match(res.headers.etag as string, /^"0-/);
    const parts = await s().request({ method: 'GET', url: url('/conversations/ord-7731/participants'), token: bob.token, headers: JSON_HDR });
    assert.deepEqual(parts.json().sort((a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id)), [{ id: 'alice', role: 'owner' }, { id: 'bob', role: 'participant' }]);
    const dup = await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'ord-7731' } });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().code, 'AlreadyExists');
    const twice = await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'x1', participants: [{ id: 'bob' }, { id: 'bob' }] } });
    assert.equal(twice.statusCode, 400);
  });

  it('reads, updates with if-match and lists with the SDK query quirks', async () => {
    const got = await s().request({ method: 'GET', url: url('/conversations/ord-7731'), token: bob.token, headers: JSON_HDR });
    assert.equal(got.statusCode, 200);
    const etag = got.headers.etag as string;
    assert.equal((await s().request({ method: 'GET', url: url('/conversations/ord-7731'), token: carol.token })).json().code, 'NotAParticipant');
    const stale = await s().request({ method: 'PUT', url: url('/conversations/ord-7731'), token: alice.token, headers: { 'if-match': '"9-nope"' }, payload: { name: 'x', isPublic: true } });
    assert.equal(stale.statusCode, 412);
    const notOwner = await s().request({ method: 'PUT', url: url('/conversations/ord-7731'), token: bob.token, payload: { name: 'x' } });
    assert.equal(notOwner.json().code, 'RoleNotAllowed');
    const put = await s().request({ method: 'PUT', url: url('/conversations/ord-7731'), token: alice.token, headers: { 'if-match': etag }, payload: { name: 'Renamed', description: 'd', isPublic: true } });
    assert.equal(put.statusCode, 200);
    assert.equal(put.json().name, 'Renamed');
    assert.equal(put.json().isPublic, false, 'isPublic is ignored on PUT');
    assert.notEqual(put.headers.etag, etag);
    for (const q of ['', '?scope=participant&', '?profileId=bob', '?scope=public&profileId=bob']) {
      const list = await s().request({ method: 'GET', url: url(`/conversations${q}`), token: bob.token, headers: JSON_HDR });
      assert.equal(list.statusCode, 200, q);
      if (q.includes('public')) assert.deepEqual(list.json(), []);
      else assert.deepEqual(list.json().map((c: { id: string; participantCount: number }) => [c.id, c.participantCount]), [['ord-7731', 2]]);
    }
    assert.equal((await s().request({ method: 'GET', url: url('/conversations?profileId=alice'), token: bob.token })).statusCode, 403);
    assert.equal((await s().request({ method: 'GET', url: url('/conversations?scope=bogus'), token: bob.token })).statusCode, 400);
  });

  it('sends messages and pages backwards with orphaned events', async () => {
    const ids: Array<{ id: string; eventId: number }> = [];
    for (let i = 1; i <= 5; i++) {
      const from = i % 2 ? alice : bob;
      const res = await s().request({ method: 'POST', url: url('/conversations/ord-7731/messages'), token: from.token, payload: { parts: [{ data: `m${i}` }], metadata: { n: i } } });
      assert.equal(res.statusCode, 200, res.body);
      ids.push(res.json());
    }
    assert.deepEqual(ids.map((x) => x.eventId), [1, 2, 3, 4, 5]);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/ord-7731/messages'), token: carol.token, payload: { parts: [{ data: 'x' }] } })).statusCode, 403);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/ord-7731/messages'), token: alice.token, payload: { parts: [{ data: 'x' }], from: { profileId: 'bob' } } })).statusCode, 403);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/ord-7731/messages'), token: alice.token, payload: { parts: [{ name: 'no-content' }] } })).statusCode, 400);

    // bob marks message 1 delivered (event 6), then read (event 7); read again is ignored
    const su = (token: string, status: string, messageIds: string[]) => s().request({ method: 'POST', url: url('/conversations/ord-7731/messages/statusupdates'), token,
      payload: [{ messageIds, status, timestamp: '2024-05-01T09:12:00.000Z' }] });
    assert.equal((await su(bob.token, 'delivered', [ids[0]!.id])).statusCode, 200);
    assert.equal((await su(bob.token, 'read', [ids[0]!.id, ids[1]!.id])).statusCode, 200); // ids[1] is bob's own: ignored
    assert.equal((await su(bob.token, 'delivered', [ids[0]!.id])).statusCode, 200);
    const camel = await s().request({ method: 'POST', url: url('/conversations/ord-7731/messages/statusUpdates'), token: carol.token, payload: [{ messageIds: [ids[0]!.id], status: 'read' }] });
    assert.equal(camel.statusCode, 403, 'statusUpdates matched case-insensitively; carol is not a participant');

    const page1 = (await s().request({ method: 'GET', url: url('/conversations/ord-7731/messages?limit=2'), token: alice.token, headers: JSON_HDR })).json();
    assert.equal(page1.latestEventId, 7);
    assert.deepEqual(page1.messages.map((m: { sentEventId: number }) => m.sentEventId), [5, 4]);
    assert.equal(page1.earliestEventId, 4);
    assert.deepEqual(page1.orphanedEvents.map((e: { id: number; data: { name: string } }) => [e.id, e.data.name]), [[6, 'delivered'], [7, 'read']]);
    const page2 = (await s().request({ method: 'GET', url: url(`/conversations/ord-7731/messages?limit=2&from=${page1.earliestEventId - 1}`), token: alice.token })).json();
    assert.deepEqual(page2.messages.map((m: { sentEventId: number }) => m.sentEventId), [3, 2]);
    assert.equal(page2.earliestEventId, 2);
    const page3 = (await s().request({ method: 'GET', url: url(`/conversations/ord-7731/messages?limit=2&from=1`), token: alice.token })).json();
    assert.deepEqual(page3.messages.map((m: { sentEventId: number }) => m.sentEventId), [1]);
    assert.equal(page3.earliestEventId, 0);
    assert.deepEqual(page3.messages[0].statusUpdates, { bob: { status: 'read', on: '2024-05-01T09:12:00.000Z' } });
    assert.deepEqual(page3.messages[0].context.from, { id: 'alice' });
    assert.deepEqual(page3.orphanedEvents, []);
    const big = (await s().request({ method: 'GET', url: url('/conversations/ord-7731/messages?limit=1000'), token: alice.token })).json();
    assert.equal(big.messages.length, 5);

    const events = (await s().request({ method: 'GET', url: url('/conversations/ord-7731/events?from=5&limit=10'), token: bob.token, headers: JSON_HDR })).json();
    assert.deepEqual(events.map((e: { id: number; conversationEventId: number; name: string }) => [e.id, e.conversationEventId, e.name]),
      [[5, 5, 'conversationMessage.sent'], [6, 6, 'conversationMessage.delivered'], [7, 7, 'conversationMessage.read']]);
    assert.equal(events[1].payload.profileId, 'bob');
    assert.equal(events[1].data.name, 'delivered');
    assert.equal(events[0].context.createdBy, 'alice');
  });

  it('adds, re-roles and removes participants; typing answers 204', async () => {
    const add = await s().request({ method: 'POST', url: url('/conversations/ord-7731/participants'), token: bob.token, payload: [{ id: 'carol', role: 'participant' }, { id: 'dave' }] });
    assert.equal(add.statusCode, 201);
    assert.equal(add.body, '');
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/ord-7731/typing'), token: carol.token, payload: {} })).statusCode, 204);
    assert.equal((await s().request({ method: 'DELETE', url: url('/conversations/ord-7731/typing'), token: carol.token, headers: JSON_HDR })).statusCode, 204);
    const del = await s().request({ method: 'DELETE', url: url('/conversations/ord-7731/participants?id=carol&id=dave,nobody'), token: alice.token, headers: JSON_HDR });
    assert.equal(del.statusCode, 204);
    const after = (await s().request({ method: 'GET', url: url('/conversations/ord-7731/participants'), token: alice.token })).json();
    assert.deepEqual(after.map((p: { id: string }) => p.id).sort(), ['alice', 'bob']);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/ord-7731/typing'), token: carol.token, payload: {} })).statusCode, 403);
    // bob leaves by himself
    assert.equal((await s().request({ method: 'DELETE', url: url('/conversations/ord-7731/participants?id=bob'), token: bob.token })).statusCode, 204);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/ord-7731/messages'), token: bob.token, payload: { parts: [{ data: 'x' }] } })).statusCode, 403);
  });

  it('lets anyone join a public conversation, and access tokens act as their profile', async () => {
    await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'lobby', name: 'Lobby', isPublic: true } });
    const pub = await s().request({ method: 'GET', url: url('/conversations?scope=public'), token: carol.token });
    assert.deepEqual(pub.json().map((c: { id: string }) => c.id), ['lobby']);
    assert.equal((await s().request({ method: 'GET', url: url('/conversations/lobby/messages'), token: carol.token })).statusCode, 200);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/lobby/participants'), token: carol.token, payload: [{ id: 'dave' }] })).statusCode, 403);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/lobby/participants'), token: carol.token, payload: [{ id: 'carol', role: 'participant' }] })).statusCode, 201);
    const bot = await s().createToken(space, ['conv:ra', 'conv:wa', 'conv:da'], 'brightline-bot');
    const sent = await s().request({ method: 'POST', url: url('/conversations/lobby/messages'), token: bot, payload: { parts: [{ data: 'hi all' }] } });
    assert.equal(sent.statusCode, 200);
    const page = (await s().request({ method: 'GET', url: url('/conversations/lobby/messages'), token: bot })).json();
    assert.equal(page.messages[0].context.from.id, 'brightline-bot');
    assert.equal(page.messages[0].context.sentBy.startsWith('access:'), true);
    const noPerm = await s().createToken(space, ['conv:ra'], 'reader');
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/lobby/messages'), token: noPerm, payload: { parts: [{ data: 'x' }] } })).statusCode, 403);
    const all = await s().request({ method: 'GET', url: url('/conversations'), token: bot });
    assert.deepEqual(all.json().map((c: { id: string }) => c.id).sort(), ['lobby', 'ord-7731']);
  });

  it('deletes (404 afterwards) and restores a soft-deleted id on create', async () => {
    assert.equal((await s().request({ method: 'DELETE', url: url('/conversations/lobby'), token: carol.token })).json().code, 'RoleNotAllowed');
    assert.equal((await s().request({ method: 'DELETE', url: url('/conversations/lobby'), token: alice.token, headers: JSON_HDR })).statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: url('/conversations/lobby'), token: alice.token })).statusCode, 404);
    assert.equal((await s().request({ method: 'POST', url: url('/conversations/lobby/messages'), token: alice.token, payload: { parts: [{ data: 'x' }] } })).statusCode, 404);
    const withDeleted = await s().request({ method: 'GET', url: url('/conversations/lobby?includeDeleted=true') });
    assert.equal(withDeleted.json()._deleted, true);
    const again = await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'lobby', name: 'Lobby 2' } });
    assert.equal(again.statusCode, 201);
    const roster = (await s().request({ method: 'GET', url: url('/conversations/lobby/participants'), token: alice.token })).json();
    assert.deepEqual(roster.map((p: { id: string }) => p.id).sort(), ['alice', 'carol']);
    // the stream continues where it was
    const m = await s().request({ method: 'POST', url: url('/conversations/lobby/messages'), token: alice.token, payload: { parts: [{ data: 'back' }] } });
    assert.equal(m.json().eventId, 2);
  });

  it('keeps the event stream gapless under concurrent sends and receipts', async () => {
    await s().request({ method: 'POST', url: url('/conversations'), token: alice.token, payload: { id: 'busy', participants: [{ id: 'bob' }] } });
    const sends = await Promise.all(Array.from({ length: 8 }, (_, i) => s().request({ method: 'POST', url: url('/conversations/busy/messages'), token: i % 2 ? bob.token : alice.token, payload: { parts: [{ data: `c${i}` }] } })));
    assert.deepEqual(sends.map((r) => r.statusCode), Array(8).fill(200));
    const mine = sends.filter((_, i) => i % 2 === 0).map((r) => r.json().id);
    const receipts = await Promise.all(['delivered', 'read', 'delivered', 'read'].map((status) => s().request({ method: 'POST', url: url('/conversations/busy/messages/statusupdates'), token: bob.token, payload: [{ messageIds: mine, status }] })));
    assert.deepEqual(receipts.map((r) => r.statusCode), [200, 200, 200, 200]);
    const adds = await Promise.all([0, 1].map(() => s().request({ method: 'POST', url: url('/conversations/busy/participants'), token: alice.token, payload: [{ id: 'erin' }] })));
    assert.deepEqual(adds.map((r) => r.statusCode), [201, 201]);
    const events = (await s().request({ method: 'GET', url: url('/conversations/busy/events?from=0&limit=100'), token: alice.token })).json();
    assert.deepEqual(events.map((e: { id: number }) => e.id), events.map((_: unknown, i: number) => i + 1));
    assert.ok(events.length >= 8 + 4, 'every message at least delivered or read once');
    const page = (await s().request({ method: 'GET', url: url('/conversations/busy/messages'), token: alice.token })).json();
    for (const m of page.messages.filter((x: { id: string }) => mine.includes(x.id))) assert.ok(['delivered', 'read'].includes(m.statusUpdates.bob.status));
    const added = await s().container.platform.db.selectFrom('events').select('payload').where('api_space_id', '=', space).where('name', '=', 'conversation.participantAdded').execute();
    assert.equal(added.filter((r) => (typeof r.payload === 'string' ? r.payload : JSON.stringify(r.payload)).includes('"erin"')).length, 1);
  });

  it('answers CORS preflights and exposes ETag to browsers', async () => {
    const pre = await s().request({ method: 'OPTIONS', url: url('/conversations/busy/messages/statusupdates'), token: null,
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, if-match' } });
    assert.equal(pre.statusCode, 204);
    assert.match(String(pre.headers['access-control-allow-headers']), /if-match/);
    const got = await s().request({ method: 'GET', url: url('/conversations/busy'), token: alice.token, headers: { origin: 'https://app.example.com', 'if-modified-since': 'Mon, 26 Jul 1997 05:00:00 GMT', 'cache-control': 'no-cache', pragma: 'no-cache' } });
    assert.equal(got.statusCode, 200);
    assert.match(String(got.headers['access-control-expose-headers']), /ETag/);
  });

  it('replays a send with the same Idempotency-Key', async () => {
    const send = (key: string, data: string) => s().request({ method: 'POST', url: url('/conversations/busy/messages'), token: alice.token, headers: { 'idempotency-key': key }, payload: { parts: [{ data }] } });
    const first = await send('k-1', 'once');
    const again = await send('k-1', 'once');
    assert.equal(again.statusCode, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.json(), first.json());
    assert.equal((await send('k-1', 'different')).statusCode, 422);
  });

  it('records webhook events in the write transaction', async () => {
    const rows = await s().container.platform.db.selectFrom('events').select(['name']).where('api_space_id', '=', space).execute();
    const names = new Set(rows.map((r) => r.name));
    for (const n of ['session.create', 'conversation.create', 'conversation.update', 'conversation.delete', 'conversation.undelete', 'conversation.participantAdded',
      'conversation.participantRemoved', 'conversationMessage.sent', 'conversationMessage.delivered', 'conversationMessage.read']) assert.ok(names.has(n), n);
  });
});
