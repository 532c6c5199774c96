import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';

const Loose = { additionalProperties: true } as const;
const FreeObject = Type.Object({}, { additionalProperties: true });

// ---- sessions (session-api.json) ----

export const SpaceOnly = Type.Object({ apiSpaceId: SpaceIdParam });
export const SessionParams = Type.Object({ apiSpaceId: SpaceIdParam, sessionId: Type.String({ minLength: 1, maxLength: 200 }) });

export const PushBody = Type.Object({
  fcm: Type.Optional(Type.Object({ package: Type.String({ minLength: 1 }), registrationId: Type.String({ minLength: 1 }) }, Loose)),
  apns: Type.Optional(Type.Object({ bundleId: Type.String({ minLength: 1 }), environment: Type.String({ minLength: 1 }), token: Type.String({ minLength: 1 }) }, Loose)),
}, { ...Loose, description: 'Exactly one of fcm or apns' });

export const SessionStartBody = Type.Object({
  authenticationId: Type.String({ minLength: 1, maxLength: 200 }),
  authenticationToken: Type.String({ minLength: 1, maxLength: 16_384 }),
  deviceId: Type.String({ minLength: 1, maxLength: 128 }),
  platform: Type.String({ minLength: 1, maxLength: 100 }),
  platformVersion: Type.Optional(Type.String({ maxLength: 2000 })),
  sdkType: Type.Optional(Type.String({ maxLength: 100 })),
  sdkVersion: Type.Optional(Type.String({ maxLength: 200 })),
  push: Type.Optional(Type.Union([PushBody, Type.Null()])),
}, Loose);

export const AuthChallenge = Type.Object({
  authenticationId: Type.String(),
  provider: Type.Literal('jsonWebToken'),
  nonce: Type.String(),
  expiresOn: Type.String({ format: 'date-time' }),
});

export const Session = Type.Object({
  id: Type.String(),
  profileId: Type.String(),
  deviceId: Type.String(),
  platform: Type.String(),
  platformVersion: Type.Optional(Type.String()),
  sdkType: Type.Optional(Type.String()),
  sdkVersion: Type.Optional(Type.String()),
  sourceIp: Type.Optional(Type.String()),
  isActive: Type.Boolean(),
  startedOn: Type.String({ format: 'date-time' }),
  createdOn: Type.String({ format: 'date-time' }),
  expiresOn: Type.String({ format: 'date-time' }),
  push: Type.Optional(FreeObject),
}, { description: 'sessionFull' });

export const SessionCreated = Type.Object({ token: Type.String(), session: Session });
export const AnonQuery = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), nonce: Type.String({ minLength: 1, maxLength: 200 }) }, Loose);
export const AnonToken = Type.Object({ token: Type.String() });

// ---- conversations (conversation-api.json) ----

const Privileges = Type.Object({ canSend: Type.Boolean(), canAddParticipants: Type.Boolean(), canRemoveParticipants: Type.Boolean() }, Loose);
export const Roles = Type.Object({ owner: Privileges, participant: Privileges }, Loose);
const Role = Type.Union([Type.Literal('owner'), Type.Literal('participant')]);
export const Participant = Type.Object({ id: Type.String(), role: Type.Optional(Role) }, Loose);
const ParticipantOut = Type.Object({ id: Type.String(), role: Role });

export const ConversationParams = Type.Object({ apiSpaceId: SpaceIdParam, conversationId: Type.String({ minLength: 1, maxLength: 256 }) });

export const ConversationCreateBody = Type.Object({
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  name: Type.Optional(Type.String({ maxLength: 1000 })),
  description: Type.Optional(Type.String({ maxLength: 4000 })),
  roles: Type.Optional(Roles),
  isPublic: Type.Optional(Type.Boolean()),
  participants: Type.Optional(Type.Array(Participant, { maxItems: 100 })),
  messageScope: Type.Optional(Type.Union([Type.Literal('a2p'), Type.Literal('p2p')])),
}, Loose);

export const ConversationUpdateBody = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 1000 })),
  description: Type.Optional(Type.String({ maxLength: 4000 })),
  roles: Type.Optional(Roles),
  isPublic: Type.Optional(Type.Unknown({ description: 'Accepted and ignored (SDK)' })),
}, Loose);

const conversationFields = {
  id: Type.String(),
  name: Type.String(),
  description: Type.Optional(Type.String()),
  roles: Roles,
  isPublic: Type.Boolean(),
  messageScope: Type.Union([Type.Literal('a2p'), Type.Literal('p2p')]),
  _createdOn: Type.String({ format: 'date-time' }),
  _createdBy: Type.String(),
  _updatedOn: Type.String({ format: 'date-time' }),
  _updatedBy: Type.String(),
  _deleted: Type.Optional(Type.Boolean()),
  _deletedOn: Type.Optional(Type.String()),
  _deletedBy: Type.Optional(Type.String()),
};
export const Conversation = Type.Object(conversationFields);
export const ConversationListItem = Type.Object({ ...conversationFields, participantCount: Type.Integer(), latestSentEventId: Type.Optional(Type.Integer()) });

export const ConversationListQuery = Type.Object({
  scope: Type.Optional(Type.Union([Type.Literal('public'), Type.Literal('participant')])),
  profileId: Type.Optional(Type.String()),
  includeDeleted: Type.Optional(Type.String()),
}, Loose);
export const IncludeDeletedQuery = Type.Object({ includeDeleted: Type.Optional(Type.String()) }, Loose);

export const ParticipantsBody = Type.Array(Participant, { minItems: 1, maxItems: 100 });
export const ParticipantList = Type.Array(ParticipantOut);
export const ParticipantDeleteQuery = Type.Object({ id: Type.Array(Type.String(), { minItems: 1 }) }, Loose);

// ---- messages (conversation-message-api.json) ----

const MessagePart = Type.Object({
  type: Type.Optional(Type.String({ maxLength: 200 })),
  name: Type.Optional(Type.String({ maxLength: 1000 })),
  url: Type.Optional(Type.String({ maxLength: 4000 })),
  data: Type.Optional(Type.String()),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
}, Loose);

export const MessagePost = Type.Object({
  parts: Type.Array(MessagePart, { minItems: 1, maxItems: 50 }),
  metadata: Type.Optional(FreeObject),
  alert: Type.Optional(FreeObject),
  from: Type.Optional(Type.Object({ profileId: Type.String({ minLength: 1 }), name: Type.Optional(Type.String()), avatarUrl: Type.Optional(Type.String()) }, Loose)),
  direction: Type.Optional(Type.Union([Type.Literal('inbound'), Type.Literal('outbound')])),
}, Loose);

export const MessageSent = Type.Object({ id: Type.String(), eventId: Type.Integer() });

export const MessagesQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1 })),
  from: Type.Optional(Type.Integer({ minimum: 0 })),
}, Loose);

const MessageComplete = Type.Object({
  id: Type.String(),
  sentEventId: Type.Integer(),
  metadata: FreeObject,
  context: FreeObject,
  parts: Type.Array(FreeObject),
  statusUpdates: FreeObject,
  alert: Type.Optional(FreeObject),
});
const OrphanedEvent = Type.Object({ id: Type.Integer(), data: FreeObject });
export const MessageResult = Type.Object({
  earliestEventId: Type.Integer(),
  latestEventId: Type.Integer(),
  messages: Type.Array(MessageComplete),
  orphanedEvents: Type.Array(OrphanedEvent),
});

export const EventsQuery = Type.Object({
  from: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 0 })),
}, Loose);
export const EventList = Type.Array(Type.Object({ id: Type.Integer(), data: FreeObject }, Loose));

export const StatusUpdatesBody = Type.Array(Type.Object({
  messageIds: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 100 }),
  status: Type.Union([Type.Literal('delivered'), Type.Literal('read')]),
  timestamp: Type.Optional(Type.String()),
}, Loose), { minItems: 1, maxItems: 100 });
