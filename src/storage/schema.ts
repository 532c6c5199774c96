/**
 * The Kysely database type. Each module adds its own tables by augmenting `Database`
 * (declaration merging) next to its repository, so no central file lists every table:
 *
 *   declare module '../../storage/schema.js' { interface Database { profiles: ProfileRow } }
 *
 * Conventions for both dialects: dates are ISO 8601 text (`…Z`, milliseconds), instants used for
 * scheduling are epoch milliseconds (bigint), booleans are integers 0/1, JSON is text on SQLite
 * and jsonb on PostgreSQL (read it back through `fromJson`) — except JSON that is only ever read
 * back whole on a hot path (jobs' payloads, messages' documents, events' payloads and metadata),
 * which is text on both.
 */
export interface Database {
  accounts: AccountRow;
  users: UserRow;
  api_spaces: ApiSpaceRow;
  access_tokens: AccessTokenRow;
  space_settings: SpaceSettingRow;
  jobs: JobRow;
  events: EventRow;
  event_cursors: EventCursorRow;
  kv: KvRow;
}

export interface AccountRow {
  id: number;
  name: string;
  created_on: string;
}

export interface UserRow {
  account_id: number;
  username: string;
  name: string;
  role: 'admin' | 'agent';
  password_hash: string;
  /** Bumped when the user is deleted or changes password: older tokens stop working. */
  token_generation: number;
  deleted: number;
  created_on: string;
  updated_on: string;
}

export interface ApiSpaceRow {
  id: string;
  account_id: number;
  name: string;
  revision: number;
  created_on: string;
  updated_on: string;
  created_by: string;
  updated_by: string;
  deleted_on: string | null;
}

export interface AccessTokenRow {
  id: string;
  api_space_id: string;
  name: string;
  profile_id: string;
  permissions: string;
  expires_on: string | null;
  revoked: number;
  last_used_on: string | null;
  created_on: string;
  created_by: string;
}

/** One JSON document per (space, key): auth config, push config, retention, opt-in defaults… */
export interface SpaceSettingRow {
  api_space_id: string;
  key: string;
  value: string;
  /** Secrets inside `value` are already encrypted by the caller (see crypto/secrets). */
  revision: number;
  updated_on: string;
  updated_by: string;
}

export interface JobRow {
  id: string;
  kind: string;
  api_space_id: string | null;
  payload: unknown;
  /** queued | running | done | dead */
  state: string;
  run_at: number;
  attempts: number;
  max_attempts: number;
  lease_owner: string | null;
  lease_until: number | null;
  last_error: string | null;
  /** Optional de-duplication key: at most one live job per (kind, key). */
  dedupe_key: string | null;
  created_at: number;
  updated_at: number;
}

export interface EventRow {
  id: number;
  api_space_id: string;
  account_id: number;
  name: string;
  payload: unknown;
  /** Extra envelope fields (revision, etag, conversationId, profileId…) as a JSON object. */
  meta: unknown;
  created_on: string;
}

export interface EventCursorRow {
  consumer: string;
  position: number;
  updated_on: string;
}

export interface KvRow {
  key: string;
  value: string;
}
