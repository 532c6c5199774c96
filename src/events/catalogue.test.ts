import { it } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_CATALOGUE, EVENT_TEMPLATES, eventIdOf, eventType, filterValue, toWebhookEnvelope, typesCovered } from './catalogue.js';
import type { StoredEvent } from './log.js';

const stored = (name: string, payload: unknown, meta: Record<string, unknown> = {}): StoredEvent => ({
  id: 7, apiSpaceId: 'space-1', accountId: 3, name, payload, meta, createdOn: '2024-05-01T09:30:00.410Z',
});

it('lists every family of webhooks.md §5 with unique names and valid schemas', () => {
  const families = new Set(EVENT_CATALOGUE.map((e) => e.family));
  assert.deepEqual([...families], ['message', 'interaction', 'profile', 'facebook', 'conversation', 'conversationMessage', 'session', 'chat', 'chatMessage', 'presence']);
  assert.equal(new Set(EVENT_CATALOGUE.map((e) => e.type)).size, EVENT_CATALOGUE.length);
  assert.equal(EVENT_CATALOGUE.length, 37);
  for (const e of EVENT_CATALOGUE) assert.equal(e.schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  for (const t of EVENT_TEMPLATES) for (const n of t.events) assert.ok(eventType(n), n);
  assert.equal(typesCovered('chat.*').length, 6);
  assert.equal(typesCovered('message.*').length, 6);
  assert.deepEqual(typesCovered('nope.*'), []);
});

it('builds envelopes: revision and etag by type, flat presence, stable event ids', () => {
  const sent = toWebhookEnvelope(stored('message.sent', { id: 'm', details: { channel: 'sms' } }, { revision: 1, etag: '"1-x"' }));
  assert.deepEqual(Object.keys(sent).sort(), ['accountId', 'apiSpaceId', 'etag', 'eventId', 'name', 'payload', 'revision', 'timestamp']);
  assert.equal(sent.timestamp, '2024-05-01T09:30:00.410Z');
  assert.equal(sent.eventId, eventIdOf(stored('message.sent', {})));
  assert.equal(toWebhookEnvelope(stored('profile.delete', { id: 'p' }, { revision: 4, etag: '"4-x"' })).etag, undefined);
  assert.equal(toWebhookEnvelope(stored('message.inbound', { id: 'i' })).revision, 0);
  assert.equal(toWebhookEnvelope(stored('conversation.create', { id: 'c' }, { etag: '"0-x"' })).revision, 0);
  assert.equal(toWebhookEnvelope(stored('conversationMessage.sent', { id: 'm', conversationEventId: 12 })).revision, 12);
  assert.equal(toWebhookEnvelope(stored('chatMessage.read', { id: 'm', chatEventId: 4 })).revision, 4);
  assert.equal(toWebhookEnvelope(stored('session.create', { id: 's' }, { revision: 9 })).revision, undefined);
  const presence = toWebhookEnvelope(stored('presence.away', null, { profileId: 'PLATFORMUSER\\kim' }));
  assert.deepEqual(Object.keys(presence).sort(), ['accountId', 'apiSpaceId', 'eventId', 'name', 'profileId', 'timestamp']);
  assert.equal(toWebhookEnvelope(stored('chat.create', {}, { eventId: 'given' })).eventId, 'given');
});

it('reads filter values at their paths', () => {
  const env = (name: string, payload: unknown, meta = {}) => toWebhookEnvelope(stored(name, payload, meta));
  assert.equal(filterValue(env('message.failed', { details: { channel: 'sms' } }), 'channel'), 'sms');
  assert.equal(filterValue(env('message.inbound', { channel: 'email' }), 'channel'), 'email');
  assert.equal(filterValue(env('conversationMessage.sent', { context: { conversationId: 'c1', scope: 'a2p' } }), 'scope'), 'a2p');
  assert.equal(filterValue(env('conversationMessage.read', { conversationId: 'c2' }), 'conversationId'), 'c2');
  assert.equal(filterValue(env('presence.available', null, { profileId: 'kim' }), 'profileId'), 'kim');
  assert.equal(filterValue(env('chat.closed', { teamId: 7 }), 'teamId'), '7');
  assert.equal(filterValue(env('profile.update', { channel: 'sms' }), 'channel'), undefined);
});
