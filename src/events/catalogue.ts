/**
 * The event catalogue (webhooks.md §5): every event name other modules append to the event log,
 * the filters webhooks may use on it (§2.1), the JSON Schema of its payload, and how a stored
 * event becomes the webhook envelope (§5.0).
 *
 * Producers: `ctx.events.append(uow, { apiSpaceId, accountId, name: ProfileEvents.update,
 * payload, meta: { revision, etag } })`. Presence events carry `meta.profileId` and no payload.
 */
import { createHash } from 'node:crypto';
import type { StoredEvent } from './log.js';

export const MessageEvents = {
  sent: 'message.sent',
  delivered: 'message.delivered',
  read: 'message.read',
  expired: 'message.expired',
  failed: 'message.failed',
  inbound: 'message.inbound',
} as const;
export const InteractionEvents = { click: 'interaction.click' } as const;
export const ProfileEvents = {
  create: 'profile.create',
  update: 'profile.update',
  delete: 'profile.delete',
  undelete: 'profile.undelete',
  devicesUpdated: 'profile.devicesUpdated',
} as const;
export const FacebookEvents = { optin: 'facebook.optin' } as const;
export const ConversationEvents = {
  create: 'conversation.create',
  update: 'conversation.update',
  delete: 'conversation.delete',
  undelete: 'conversation.undelete',
  participantAdded: 'conversation.participantAdded',
  participantRemoved: 'conversation.participantRemoved',
  participantUpdated: 'conversation.participantUpdated',
} as const;
export const ConversationMessageEvents = {
  sent: 'conversationMessage.sent',
  delivered: 'conversationMessage.delivered',
  read: 'conversationMessage.read',
} as const;
export const SessionEvents = { create: 'session.create', delete: 'session.delete' } as const;
export const ChatEvents = {
  create: 'chat.create',
  update: 'chat.update',
  assigned: 'chat.assigned',
  channelUpdated: 'chat.channelUpdated',
  closed: 'chat.closed',
  delete: 'chat.delete',
} as const;
export const ChatMessageEvents = { sent: 'chatMessage.sent', delivered: 'chatMessage.delivered', read: 'chatMessage.read' } as const;
export const PresenceEvents = { available: 'presence.available', away: 'presence.away', offline: 'presence.offline' } as const;

type Values<T> = T[keyof T];
export type EventName =
  | Values<typeof MessageEvents> | Values<typeof InteractionEvents> | Values<typeof ProfileEvents> | Values<typeof FacebookEvents>
  | Values<typeof ConversationEvents> | Values<typeof ConversationMessageEvents> | Values<typeof SessionEvents>
  | Values<typeof ChatEvents> | Values<typeof ChatMessageEvents> | Values<typeof PresenceEvents>;

export interface EventFilter {
  name: string;
  /** Dotted path into the payload (into the envelope for flat presence events). */
  path: string;
  required: boolean;
  description: string;
}

/**
 * How the envelope's `revision` is filled: from `meta.revision` (`entity`, with `initial` as the
 * default when a producer gives none), from a payload field, or never.
 */
type RevisionRule = { from: 'meta'; initial?: number } | { from: 'payload'; field: string } | { from: 'none' };

export interface EventType {
  type: EventName;
  family: string;
  description: string;
  filters: EventFilter[];
  /** JSON Schema (draft 2020-12) of `payload` (of the whole envelope for presence events). */
  schema: Record<string, unknown>;
  revision: RevisionRule;
  etag: boolean;
  /** Presence: `profileId` at the top level, no payload. */
  flat?: boolean;
}

// ---- JSON Schema helpers ----
const DRAFT = 'https://json-schema.org/draft/2020-12/schema';
type S = Record<string, unknown>;
const str: S = { type: 'string' };
const int: S = { type: 'integer' };
const bool: S = { type: 'boolean' };
const date: S = { type: 'string', format: 'date-time' };
const anyObj: S = { type: 'object' };
const nullable = (s: S): S => ({ ...s, type: [s.type as string, 'null'] });
const arr = (items: S): S => ({ type: 'array', items });
const obj = (properties: Record<string, S>, required: string[] = []): S => ({ type: 'object', properties, required, additionalProperties: true });
const root = (s: S): S => ({ $schema: DRAFT, ...s });

const deletion = obj({ date, by: str, id: str }, ['date', 'by', 'id']);
const messageStatus = obj({
  id: str,
  status: { type: 'string', enum: ['sent', 'delivered', 'read', 'expired', 'failed', 'filtered'] },
  conversationId: str,
  details: obj({
    channel: nullable(str),
    additionalInfo: anyObj,
    channelStatus: { type: 'object', additionalProperties: obj({ status: str, details: {}, updatedOn: date }) },
    failureReason: str,
    errorCode: { type: ['string', 'integer'] },
  }, ['channel']),
  channelData: anyObj,
  updatedOn: date,
  metadata: {},
}, ['id', 'status', 'details', 'updatedOn']);
const inbound = obj({
  id: str, messageId: str, channel: str, from: anyObj, to: anyObj, body: {}, receivedOn: date, status: str, correlation: anyObj,
}, ['id', 'messageId', 'channel', 'from']);
const profileDoc = obj({ id: str, _createdOn: date, _createdBy: str, _updatedOn: date, _updatedBy: str }, ['id']);
const device = obj({ deviceId: str, platform: str, platformVersion: str, sdkType: str, sdkVersion: str, push: anyObj, lastSessionOn: date }, ['deviceId']);
const participant = obj({ profileId: str, role: str }, ['profileId']);
const conversation = obj({ id: str, name: str, description: str, roles: anyObj, isPublic: bool, participants: arr(participant) }, ['id']);
const conversationUpdate = obj({ id: str, name: str, description: str, roles: anyObj, isPublic: bool }, ['id']);
const part = obj({ name: str, type: str, url: str, data: str, size: int });
const cmSent = obj({
  id: str, conversationEventId: int, metadata: {},
  context: obj({ from: obj({ id: str, name: str, avatarUrl: str }, ['id']), conversationId: str, sentBy: str, sentOn: date, scope: { enum: ['a2p', 'p2p'] }, direction: { enum: ['inbound', 'outbound'] } }, ['from', 'conversationId', 'sentBy', 'sentOn']),
  parts: arr(part),
}, ['id', 'conversationEventId', 'context', 'parts']);
const cmStatus = obj({
  id: str, conversationEventId: int, conversationId: str, scope: { enum: ['a2p', 'p2p'] }, direction: { enum: ['inbound', 'outbound'] },
  isPublicConversation: bool, profileId: str, timestamp: date,
}, ['id', 'conversationId', 'profileId', 'timestamp']);
const sessionFull = obj({ id: str, profileId: str, deviceId: str, platform: str, platformVersion: str, sdkType: str, sdkVersion: str, sourceIp: str, startedOn: date, createdOn: date, expiresOn: date, isActive: bool }, ['id', 'profileId']);
const sessionDelete = obj({ id: str, profileId: str, date, by: str, reason: { enum: ['ended', 'deviceRemoved', 'profileDeleted', 'expired'] } }, ['id', 'profileId', 'date', 'reason']);
const chat = obj({ id: str, name: str, description: str, teamId: str, channelId: str, status: str, participants: arr(participant), context: obj({ conversationId: str }) }, ['id']);
const chatMsgSent = obj({
  id: str, chatEventId: int, metadata: {},
  context: obj({ from: obj({ id: str, name: str }, ['id']), to: obj({ id: str }), chatId: str, teamId: str, sentBy: str, sentOn: date, direction: { enum: ['inbound', 'outbound'] } }, ['from', 'chatId', 'sentBy', 'sentOn', 'direction']),
  parts: arr(part),
}, ['id', 'context', 'parts']);
const chatMsgStatus = obj({ id: str, chatEventId: int, chatId: str, teamId: str, profileId: str, timestamp: date }, ['id', 'chatId', 'profileId', 'timestamp']);
const presence = obj({ eventId: str, accountId: int, apiSpaceId: str, name: str, profileId: str, timestamp: date }, ['eventId', 'accountId', 'apiSpaceId', 'name', 'profileId', 'timestamp']);

// ---- Filters (webhooks.md §2.1) ----
const f = (name: string, path: string, description: string): EventFilter => ({ name, path, required: false, description });
const channelFilter = (path: string) => f('channel', path, 'Channel of the message, for example sms');
const conversationFilter = (path: string) => f('conversationId', path, 'Conversation the event belongs to');
const scopeFilter = (path: string) => f('scope', path, 'a2p or p2p');
const chatFilters = [f('teamId', 'teamId', 'Team owning the chat'), f('channelId', 'channelId', 'Channel of the chat')];
const chatMessageFilters = [f('teamId', 'context.teamId', 'Team owning the chat'), f('direction', 'context.direction', 'inbound or outbound')];

const ENTITY: RevisionRule = { from: 'meta' };
const CREATED: RevisionRule = { from: 'meta', initial: 0 };
const NONE: RevisionRule = { from: 'none' };

const def = (type: EventName, description: string, schema: S, filters: EventFilter[], revision: RevisionRule, etag: boolean, flat = false): EventType => ({
  type, family: type.slice(0, type.indexOf('.')), description, filters, schema: root(schema), revision, etag, ...(flat ? { flat } : {}),
});

const msg = (type: EventName, what: string) => def(type, what, messageStatus, [channelFilter('details.channel')], ENTITY, true);

/** Every event type, in the order `GET /webhooks/availableevents` lists them. */
export const EVENT_CATALOGUE: readonly EventType[] = [
  msg(MessageEvents.sent, 'A channel accepted an outbound message.'),
  msg(MessageEvents.delivered, 'A channel reported that an outbound message was delivered.'),
  msg(MessageEvents.read, 'A channel reported that an outbound message was read or opened.'),
  msg(MessageEvents.expired, 'An outbound message expired before or after acceptance.'),
  msg(MessageEvents.failed, 'An outbound message failed or was filtered.'),
  def(MessageEvents.inbound, 'An inbound message was received.', inbound, [channelFilter('channel')], CREATED, false),
  def(InteractionEvents.click, 'A tracked link in a message was used.', obj({ id: str, channel: str, url: str, clickedOn: date, userAgent: str, metadata: {} }, ['id', 'url', 'clickedOn']), [channelFilter('channel')], NONE, false),

  def(ProfileEvents.create, 'A profile was created.', profileDoc, [], CREATED, true),
  def(ProfileEvents.update, 'A profile was changed; the payload is the whole profile after the change.', profileDoc, [], ENTITY, true),
  def(ProfileEvents.delete, 'A profile was deleted.', obj({ date, by: str, id: str, forget: bool }, ['date', 'by', 'id']), [], ENTITY, false),
  def(ProfileEvents.undelete, 'A deleted profile was restored.', obj({ id: str }, ['id']), [], ENTITY, true),
  def(ProfileEvents.devicesUpdated, 'The devices of a profile changed.', obj({ id: str, devices: arr(device) }, ['id', 'devices']), [], ENTITY, false),

  def(FacebookEvents.optin, 'A Messenger user opted in through a Send to Messenger plugin or link.', obj({ fbMessengerId: str, profileId: str, stateData: str, ref: str, rawData: anyObj, pageId: str }, ['fbMessengerId', 'ref']), [], NONE, false),

  def(ConversationEvents.create, 'A conversation was created.', conversation, [conversationFilter('id')], CREATED, true),
  def(ConversationEvents.update, 'A conversation was changed.', conversationUpdate, [conversationFilter('id')], ENTITY, true),
  def(ConversationEvents.delete, 'A conversation was deleted.', deletion, [conversationFilter('id')], ENTITY, false),
  def(ConversationEvents.undelete, 'A deleted conversation was restored.', conversation, [conversationFilter('id')], ENTITY, true),
  def(ConversationEvents.participantAdded, 'A participant was added to a conversation.', obj({ profileId: str, role: str, id: str }, ['profileId', 'id']), [conversationFilter('id')], NONE, false),
  def(ConversationEvents.participantRemoved, 'A participant was removed from a conversation.', obj({ profileId: str, id: str }, ['profileId', 'id']), [conversationFilter('id')], NONE, false),
  def(ConversationEvents.participantUpdated, "A participant's role in a conversation changed.", obj({ profileId: str, role: str, id: str }, ['profileId', 'id']), [conversationFilter('id')], NONE, false),

  def(ConversationMessageEvents.sent, 'A message was sent in a conversation.', cmSent, [conversationFilter('context.conversationId'), scopeFilter('context.scope')], { from: 'payload', field: 'conversationEventId' }, false),
  def(ConversationMessageEvents.delivered, 'A conversation message was delivered to a participant.', cmStatus, [conversationFilter('conversationId'), scopeFilter('scope')], { from: 'payload', field: 'conversationEventId' }, false),
  def(ConversationMessageEvents.read, 'A conversation message was read by a participant.', cmStatus, [conversationFilter('conversationId'), scopeFilter('scope')], { from: 'payload', field: 'conversationEventId' }, false),

  def(SessionEvents.create, 'An App Messaging session was started.', sessionFull, [], NONE, false),
  def(SessionEvents.delete, 'An App Messaging session ended (ended, device removed, profile deleted or expired).', sessionDelete, [], NONE, false),

  def(ChatEvents.create, 'A chat was created.', chat, chatFilters, CREATED, true),
  def(ChatEvents.update, 'A chat changed (name, description, status or participants).', chat, chatFilters, ENTITY, true),
  def(ChatEvents.assigned, 'A chat was assigned to a team or agent.', obj({ id: str, teamId: str, agentId: nullable(str), previousTeamId: nullable(str), previousAgentId: nullable(str) }, ['id']), chatFilters, ENTITY, true),
  def(ChatEvents.channelUpdated, 'The channel of a chat changed.', obj({ id: str, channelId: str }, ['id', 'channelId']), chatFilters, ENTITY, true),
  def(ChatEvents.closed, 'A chat was closed.', obj({ id: str, teamId: str, bypassMessage: bool, closeTimeSecs: { type: 'number' } }, ['id']), chatFilters, ENTITY, true),
  def(ChatEvents.delete, 'A chat was deleted.', deletion, chatFilters, ENTITY, false),

  def(ChatMessageEvents.sent, 'A message was sent to or from a chat.', chatMsgSent, chatMessageFilters, { from: 'payload', field: 'chatEventId' }, false),
  def(ChatMessageEvents.delivered, 'A chat message was delivered.', chatMsgStatus, [f('teamId', 'teamId', 'Team owning the chat')], { from: 'payload', field: 'chatEventId' }, false),
  def(ChatMessageEvents.read, 'A chat message was read.', chatMsgStatus, [f('teamId', 'teamId', 'Team owning the chat')], { from: 'payload', field: 'chatEventId' }, false),

  def(PresenceEvents.available, 'An agent became available for chats.', presence, [f('profileId', 'profileId', 'The agent')], NONE, false, true),
  def(PresenceEvents.away, 'An agent is away and receives no new chats.', presence, [f('profileId', 'profileId', 'The agent')], NONE, false, true),
  def(PresenceEvents.offline, 'An agent closed the chat application.', presence, [f('profileId', 'profileId', 'The agent')], NONE, false, true),
];

const BY_NAME = new Map<string, EventType>(EVENT_CATALOGUE.map((e) => [e.type, e]));
export const EVENT_FAMILIES: readonly string[] = [...new Set(EVENT_CATALOGUE.map((e) => e.family))];

export function eventType(name: string): EventType | undefined {
  return BY_NAME.get(name);
}

/** Event types a subscription `type` covers: an exact name or `<family>.*`; empty when unknown. */
export function typesCovered(subscriptionType: string): EventType[] {
  if (subscriptionType.endsWith('.*')) {
    const family = subscriptionType.slice(0, -2);
    return EVENT_CATALOGUE.filter((e) => e.family === family);
  }
  const t = BY_NAME.get(subscriptionType);
  return t ? [t] : [];
}

/** Named groups of event types (webhooks.md §2.2). */
export const EVENT_TEMPLATES: ReadonlyArray<{ name: string; description: string; events: EventName[] }> = [
  { name: 'Message events', description: 'Outbound message statuses and inbound messages',
    events: ['message.sent', 'message.delivered', 'message.read', 'message.expired', 'message.failed', 'message.inbound'] },
  { name: 'Message and Profile events', description: 'Message events plus profile changes',
    events: ['message.sent', 'message.delivered', 'message.read', 'message.expired', 'message.failed', 'message.inbound',
      'profile.create', 'profile.update', 'profile.delete', 'profile.undelete', 'profile.devicesUpdated'] },
  { name: 'App Messaging events', description: 'Conversations, conversation messages and sessions',
    events: ['conversation.create', 'conversation.update', 'conversation.delete', 'conversation.undelete',
      'conversation.participantAdded', 'conversation.participantRemoved', 'conversation.participantUpdated',
      'conversationMessage.sent', 'conversationMessage.delivered', 'conversationMessage.read', 'session.create', 'session.delete'] },
  { name: 'Chat events', description: 'Chats, chat messages and agent presence',
    events: ['chat.create', 'chat.update', 'chat.assigned', 'chat.channelUpdated', 'chat.closed', 'chat.delete',
      'chatMessage.sent', 'chatMessage.delivered', 'chatMessage.read', 'presence.available', 'presence.away', 'presence.offline'] },
];

/**
 * The envelope's `eventId`: `meta.eventId` when the producer set one (so websocket frames and
 * webhooks can share it), otherwise a name-based UUID derived from the log position, so every
 * redelivery of one event carries the same id.
 */
export function eventIdOf(event: StoredEvent): string {
  const given = event.meta.eventId;
  if (typeof given === 'string' && given) return given;
  const h = createHash('sha1').update(`switchboard-event:${event.apiSpaceId}:${event.id}:${event.createdOn}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export type WebhookEnvelope = Record<string, unknown> & { eventId: string; accountId: number; apiSpaceId: string; name: string; timestamp: string };

/** The webhook envelope of a stored event (webhooks.md §5.0; presence events are flat). */
export function toWebhookEnvelope(event: StoredEvent): WebhookEnvelope {
  const type = BY_NAME.get(event.name);
  const meta = event.meta;
  const head = { eventId: eventIdOf(event), accountId: event.accountId, apiSpaceId: event.apiSpaceId, name: event.name };
  const timestamp = typeof meta.timestamp === 'string' ? meta.timestamp : event.createdOn;
  if (type?.flat) {
    const p = (event.payload ?? {}) as Record<string, unknown>;
    return { ...head, profileId: String(meta.profileId ?? p.profileId ?? ''), timestamp };
  }
  const env: WebhookEnvelope = { ...head, payload: event.payload ?? {}, timestamp };
  const rule = type?.revision ?? ENTITY;
  let revision: unknown;
  if (rule.from === 'meta') revision = typeof meta.revision === 'number' ? meta.revision : rule.initial;
  else if (rule.from === 'payload') revision = typeof meta.revision === 'number' ? meta.revision : (event.payload as Record<string, unknown> | null)?.[rule.field];
  if (typeof revision === 'number') env.revision = revision;
  if ((type ? type.etag : true) && typeof meta.etag === 'string') env.etag = meta.etag;
  return env;
}

/**
 * The string form of the value a filter looks at, or undefined when the event type does not
 * offer that filter or the value is absent.
 */
export function filterValue(envelope: WebhookEnvelope, filterName: string): string | undefined {
  const type = BY_NAME.get(envelope.name);
  const filter = type?.filters.find((x) => x.name === filterName);
  if (!type || !filter) return undefined;
  let cur: unknown = type.flat ? envelope : envelope.payload;
  for (const key of filter.path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  if (cur === undefined || cur === null || typeof cur === 'object') return undefined;
  return String(cur);
}
