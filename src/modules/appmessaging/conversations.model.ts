import { sql } from 'kysely';
import type { ProfileDirectory, ProfileDocument } from '../profiles/profiles.contract.js';
import type { Actor } from '../../auth/actor.js';
import type { Tx, Executor } from '../../storage/db.js';
import { fromJson } from '../../storage/dialect.js';
import { etagFor } from '../../http/etag.js';
import { frameActor, type Frame } from '../../realtime/frames.js';
import type { AmConversationRow } from './appmessaging.migrations.js';
import type { SoftDeleteAuditFields } from '../../lib/audit.js';

export interface Privileges {
  canSend: boolean;
  canAddParticipants: boolean;
  canRemoveParticipants: boolean;
}
export interface Roles {
  owner: Privileges;
  participant: Privileges;
}
export type Role = 'owner' | 'participant';
export type Scope = 'a2p' | 'p2p';

export const ALL_TRUE: Privileges = { canSend: true, canAddParticipants: true, canRemoveParticipants: true };
export const DEFAULT_ROLES: Roles = { owner: { ...ALL_TRUE }, participant: { ...ALL_TRUE } };

export interface ConversationView extends SoftDeleteAuditFields {
  id: string;
  name: string;
  description?: string;
  roles: Roles;
  isPublic: boolean;
  messageScope: Scope;
}

export function conversationView(r: AmConversationRow, withDeleted = false): ConversationView {
  return {
    id: r.id,
    name: r.name,
    ...(r.description !== null ? { description: r.description } : {}),
    roles: fromJson<Roles>(r.roles),
    isPublic: r.is_public === 1,
    messageScope: r.message_scope as Scope,
    _createdOn: r.created_on,
    _createdBy: r.created_by,
    _updatedOn: r.updated_on,
    _updatedBy: r.updated_by,
    ...(withDeleted && r.deleted_on ? { _deleted: true, _deletedOn: r.deleted_on, _deletedBy: r.deleted_by ?? undefined } : {}),
  };
}

export function conversationEtag(r: AmConversationRow): string {
  return etagFor(Number(r.revision), conversationView(r));
}

/** The profile a caller acts as: its session or token profile, or the agent profile of a user. */
export function callerProfile(actor: Actor): string | undefined {
  if (actor.kind === 'session') return actor.profileId;
  if (actor.kind === 'access') return actor.profileId || undefined;
  return `PLATFORMUSER\\${actor.username ?? 'admin'}`;
}

/** Session tokens are bound by participation and roles; access and account tokens are not. */
export const isBound = (actor: Actor): boolean => actor.kind === 'session';

export async function participantIds(db: Executor | Tx, apiSpaceId: string, conversationId: string): Promise<string[]> {
  const rows = await db.selectFrom('am_participants').select('profile_id').where('api_space_id', '=', apiSpaceId).where('conversation_id', '=', conversationId).execute();
  return rows.map((r) => r.profile_id);
}

export async function roleOf(db: Executor | Tx, apiSpaceId: string, conversationId: string, profileId: string | undefined): Promise<Role | undefined> {
  if (!profileId) return undefined;
  const r = await db.selectFrom('am_participants').select('role').where('api_space_id', '=', apiSpaceId)
    .where('conversation_id', '=', conversationId).where('profile_id', '=', profileId).executeTakeFirst();
  return r?.role as Role | undefined;
}

/**
 * Hands out the next conversationEventId. The UPDATE takes the conversation's row lock, so the
 * stream stays gapless and ordered per conversation under concurrent writers.
 */
export async function nextEventId(tx: Tx, apiSpaceId: string, conversationId: string): Promise<number> {
  const r = await tx.updateTable('am_conversations').set({ last_event_id: sql`last_event_id + 1` })
    .where('api_space_id', '=', apiSpaceId).where('id', '=', conversationId).returning('last_event_id').executeTakeFirstOrThrow();
  return Number(r.last_event_id);
}

/** Builds a websocket frame (app-messaging.md §7.4). */
export function buildFrame(p: {
  eventId: string; apiSpaceId: string; accountId: number; name: string; conversationId?: string; conversationEventId?: number;
  payload: unknown; actor: string; createdOn: string; publishedOn: string; extra?: Record<string, unknown>;
}): Frame {
  return {
    eventId: p.eventId,
    apiSpaceId: p.apiSpaceId,
    accountId: p.accountId,
    name: p.name,
    ...(p.conversationId !== undefined ? { conversationId: p.conversationId } : {}),
    ...(p.conversationEventId !== undefined ? { conversationEventId: p.conversationEventId, revision: p.conversationEventId } : {}),
    payload: p.payload,
    context: { createdBy: frameActor(p.actor), createdOn: p.createdOn },
    ...(p.extra ?? {}),
    publishedOn: p.publishedOn,
  };
}

/**
 * Creates missing profiles (ids are free-form), each in its own transaction before the caller's
 * write: two requests creating the same profile at once then cost a retry (inside `ensure`), not
 * a failed request.
 */
export async function ensureProfiles(profiles: ProfileDirectory | undefined, apiSpaceId: string, ids: string[], actor: string): Promise<Map<string, ProfileDocument>> {
  const out = new Map<string, ProfileDocument>();
  if (!profiles) return out;
  for (const id of new Set(ids)) out.set(id, (await profiles.ensure(apiSpaceId, id, { id }, actor)).profile);
  return out;
}
