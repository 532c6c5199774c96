import { auditColumns, type SchemaMigration } from '../../storage/migrations/types.js';

/** Auth challenges (single use, short-lived). */
export interface AmChallengeRow {
  api_space_id: string;
  id: string;
  nonce: string;
  expires_at: number;
  used: number;
  created_on: string;
}

export interface AmSessionRow {
  api_space_id: string;
  id: string;
  profile_id: string;
  device_id: string;
  platform: string;
  platform_version: string | null;
  sdk_type: string | null;
  sdk_version: string | null;
  source_ip: string | null;
  push: unknown;
  is_active: number;
  started_on: string;
  expires_at: number;
  ended_on: string | null;
  end_reason: string | null;
}

export interface AmConversationRow {
  api_space_id: string;
  id: string;
  name: string;
  description: string | null;
  roles: unknown;
  is_public: number;
  message_scope: string;
  revision: number;
  /** Last conversationEventId handed out (the stream is gapless, starting at 1). */
  last_event_id: number;
  latest_sent_event_id: number | null;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
  deleted_on: string | null;
  deleted_by: string | null;
}

export interface AmParticipantRow {
  api_space_id: string;
  conversation_id: string;
  profile_id: string;
  role: string;
  added_on: string;
}

export interface AmMessageRow {
  api_space_id: string;
  conversation_id: string;
  id: string;
  sent_event_id: number;
  from_id: string;
  /** `{metadata, context, parts, alert?}` as sent. */
  doc: unknown;
  status_updates: unknown;
  /** One API message id when the message came through the `appMessaging` channel. */
  source_message_id: string | null;
  sent_on: string;
}

/** The conversation event stream: one row per conversationEventId. */
export interface AmEventRow {
  api_space_id: string;
  conversation_id: string;
  seq: number;
  event_id: string;
  /** `sent`, `delivered`, `read`. */
  name: string;
  message_id: string;
  profile_id: string;
  payload: unknown;
  created_by: string;
  created_on: string;
}

declare module '../../storage/schema.js' {
  interface Database {
    am_challenges: AmChallengeRow;
    am_sessions: AmSessionRow;
    am_conversations: AmConversationRow;
    am_participants: AmParticipantRow;
    am_messages: AmMessageRow;
    am_events: AmEventRow;
  }
}

export const appMessagingMigrations: SchemaMigration[] = [
  {
    name: '0500_appmessaging',
    async up({ db, t }) {
      await db.schema
        .createTable('am_challenges')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('expires_at', t.bigint, (c) => c.notNull())
        .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('am_challenges_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('am_challenges_expiry').on('am_challenges').columns(['expires_at']).execute();

      await db.schema
        .createTable('am_sessions')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('platform_version', 'text')
        .addColumn('sdk_type', 'text')
        .addColumn('sdk_version', 'text')
        .addColumn('source_ip', 'text')
        .addColumn('push', t.json)
        .addColumn('is_active', 'integer', (c) => c.notNull())
        .addColumn('started_on', 'text', (c) => c.notNull())
        .addColumn('expires_at', t.bigint, (c) => c.notNull())
        .addColumn('ended_on', 'text')
        .addColumn('end_reason', 'text')
        .addPrimaryKeyConstraint('am_sessions_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('am_sessions_profile').on('am_sessions').columns(['api_space_id', 'profile_id', 'device_id']).execute();
      await db.schema.createIndex('am_sessions_expiry').on('am_sessions').columns(['is_active', 'expires_at']).execute();

      await db.schema
        .createTable('am_conversations')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('roles', t.json, (c) => c.notNull())
        .addColumn('is_public', 'integer', (c) => c.notNull())
        .addColumn('message_scope', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('last_event_id', t.bigint, (c) => c.notNull().defaultTo(0))
        .addColumn('latest_sent_event_id', t.bigint)
        .$call(auditColumns({ softDelete: true }))
        .addPrimaryKeyConstraint('am_conversations_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('am_conversations_public').on('am_conversations').columns(['api_space_id', 'is_public']).execute();

      await db.schema
        .createTable('am_participants')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('added_on', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('am_participants_pk', ['api_space_id', 'conversation_id', 'profile_id'])
        .execute();
      await db.schema.createIndex('am_participants_profile').on('am_participants').columns(['api_space_id', 'profile_id']).execute();

      await db.schema
        .createTable('am_messages')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('sent_event_id', t.bigint, (c) => c.notNull())
        .addColumn('from_id', 'text', (c) => c.notNull())
        .addColumn('doc', t.json, (c) => c.notNull())
        .addColumn('status_updates', t.json, (c) => c.notNull())
        .addColumn('source_message_id', 'text')
        .addColumn('sent_on', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('am_messages_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('am_messages_conv').on('am_messages').columns(['api_space_id', 'conversation_id', 'sent_event_id']).execute();

      await db.schema
        .createTable('am_events')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('seq', t.bigint, (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('payload', t.json, (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('am_events_pk', ['api_space_id', 'conversation_id', 'seq'])
        .execute();
    },
  },
  {
    // Redaction of the copy of a One API send, and of a forgotten profile's messages.
    name: '0501_appmessaging_message_lookups',
    async up({ db }) {
      await db.schema.createIndex('am_messages_source').on('am_messages').columns(['api_space_id', 'source_message_id']).execute();
      await db.schema.createIndex('am_messages_from').on('am_messages').columns(['api_space_id', 'from_id']).execute();
    },
  },
];
