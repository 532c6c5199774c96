import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import type { SpaceRef } from '../../auth/space-directory.js';
import type { ProfileDirectory } from '../profiles/profiles.contract.js';
import type { Uow } from '../../storage/uow.js';
import { iso } from '../../lib/clock.js';
import { clientIdProblem } from '../../lib/ids.js';
import { isUniqueViolation, toJson } from '../../storage/dialect.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import { FRAMES_CHANNEL, type Frame, type FrameDelivery } from '../../realtime/frames.js';
import type { AmConversationRow } from './appmessaging.migrations.js';
import { amErrors } from './appmessaging.errors.js';
import {
  DEFAULT_ROLES, buildFrame, callerProfile, conversationEtag, conversationView, ensureProfiles, isBound, participantIds, roleOf,
  type ConversationView, type Role, type Roles, type Scope,
} from './conversations.model.js';

export interface ParticipantInput {
  id: string;
  role?: Role;
}

export interface ConversationCreateInput {
  id?: string;
  name?: string;
  description?: string;
  roles?: Roles;
  isPublic?: boolean;
  participants?: ParticipantInput[];
  messageScope?: Scope;
}

export interface ConversationUpdateInput {
  name?: string;
  description?: string;
  roles?: Roles;
}

export interface ListQuery {
  scope?: 'public' | 'participant';
  profileId?: string;
  includeDeleted?: boolean;
}

export type ConversationsService = ReturnType<typeof createConversationsService>;

/** Conversations, participants and typing (app-messaging.md §3, §4). */
export function createConversationsService(ctx: ModuleContext, deps: { profiles?: ProfileDirectory }) {
  const { db, clock, ids, bus } = ctx;
  const { profiles } = deps;

  const withEtag = (r: AmConversationRow) => ({ conversation: conversationView(r), etag: conversationEtag(r), lastModified: r.updated_on });

  function publish(uow: Uow, apiSpaceId: string, to: string[], frame: Frame, ex?: string): void {
    if (!to.length) return;
    uow.afterCommit(() => bus.publish(FRAMES_CHANNEL, { s: apiSpaceId, to, ex, f: frame } satisfies FrameDelivery));
  }

  function frame(space: SpaceRef, name: string, conversationId: string, payload: unknown, actor: string, extra?: Record<string, unknown>): Frame {
    const now = iso(clock.now());
    return buildFrame({ eventId: ids.uuid(), apiSpaceId: space.id, accountId: space.accountId, name, conversationId, payload, actor, createdOn: now, publishedOn: now, extra });
  }

  async function load(apiSpaceId: string, id: string, includeDeleted = false): Promise<AmConversationRow> {
    const r = await db.selectFrom('am_conversations').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
    if (!r || (r.deleted_on && !includeDeleted)) throw amErrors.conversationNotFound();
    return r;
  }

  /** Read access: session callers must take part, unless the conversation is public. */
  async function readable(actor: Actor, apiSpaceId: string, id: string, includeDeleted = false): Promise<AmConversationRow> {
    const r = await load(apiSpaceId, id, includeDeleted && !isBound(actor));
    if (isBound(actor) && r.is_public !== 1 && !(await roleOf(db, apiSpaceId, id, actor.profileId))) throw amErrors.notAParticipant(id);
    return r;
  }

  async function requireOwner(actor: Actor, apiSpaceId: string, id: string): Promise<void> {
    if (!isBound(actor)) return;
    const role = await roleOf(db, apiSpaceId, id, actor.profileId);
    if (!role) throw amErrors.notAParticipant(id);
    if (role !== 'owner') throw amErrors.roleNotAllowed('this operation');
  }

  function participantProblems(list: ParticipantInput[], path: string): ValidationFailure[] {
    const out: ValidationFailure[] = [];
    const seen = new Set<string>();
    list.forEach((p, i) => {
      const problem = clientIdProblem(p.id, ['bulk', 'optin']);
      if (problem) out.push({ paramName: `${path}[${i}].id`, message: problem });
      if (seen.has(p.id)) out.push({ paramName: `${path}[${i}].id`, message: 'Participant listed twice' });
      seen.add(p.id);
    });
    return out;
  }

  /** Adds or re-roles participants inside a transaction (profiles ensured beforehand); emits events and frames. */
  async function applyParticipants(uow: Uow, space: SpaceRef, conversationId: string, list: ParticipantInput[], actor: string): Promise<void> {
    const now = iso(clock.now());
    const existing = new Map((await uow.tx.selectFrom('am_participants').select(['profile_id', 'role']).where('api_space_id', '=', space.id)
      .where('conversation_id', '=', conversationId).execute()).map((r) => [r.profile_id, r.role]));
    const added: Array<{ id: string; role: Role }> = [];
    const updated: Array<{ id: string; role: Role }> = [];
    for (const p of list) {
      const role = p.role ?? 'participant';
      const current = existing.get(p.id);
      if (current === role) continue;
      if (current === undefined) {
        // A concurrent request may have added the same profile: then it is not ours to announce.
        const res = await uow.tx.insertInto('am_participants').values({ api_space_id: space.id, conversation_id: conversationId, profile_id: p.id, role, added_on: now })
          .onConflict((oc) => oc.columns(['api_space_id', 'conversation_id', 'profile_id']).doNothing()).executeTakeFirst();
        if (Number(res.numInsertedOrUpdatedRows ?? 1n) > 0) added.push({ id: p.id, role });
      } else {
        await uow.tx.updateTable('am_participants').set({ role }).where('api_space_id', '=', space.id)
          .where('conversation_id', '=', conversationId).where('profile_id', '=', p.id).execute();
        updated.push({ id: p.id, role });
      }
      existing.set(p.id, role);
    }
    const everyone = [...existing.keys()];
    for (const [name, items] of [['conversation.participantAdded', added], ['conversation.participantUpdated', updated]] as const) {
      for (const p of items) {
        await ctx.events.append(uow, { apiSpaceId: space.id, accountId: space.accountId, name, payload: { profileId: p.id, role: p.role, id: conversationId }, meta: { actor, conversationId } });
        publish(uow, space.id, everyone, frame(space, name, conversationId, { profileId: p.id, role: p.role, conversationId, apiSpaceId: space.id }, actor));
      }
    }
  }

  /** Removes participants inside a transaction; one `conversation.participantRemoved` each. */
  async function dropParticipants(uow: Uow, space: SpaceRef, id: string, profileIds: string[], actor: string): Promise<void> {
    const before = await participantIds(uow.tx, space.id, id);
    const removed = profileIds.filter((p) => before.includes(p));
    if (!removed.length) return;
    await uow.tx.deleteFrom('am_participants').where('api_space_id', '=', space.id).where('conversation_id', '=', id).where('profile_id', 'in', removed).execute();
    const remaining = before.filter((p) => !removed.includes(p));
    for (const p of removed) {
      await ctx.events.append(uow, { apiSpaceId: space.id, accountId: space.accountId, name: 'conversation.participantRemoved', payload: { profileId: p, id }, meta: { actor, conversationId: id } });
      publish(uow, space.id, [...remaining, p], frame(space, 'conversation.participantRemoved', id, { profileId: p, conversationId: id, apiSpaceId: space.id }, actor));
    }
  }

  return {
    load,
    readable,
    applyParticipants,

    async create(actor: Actor, space: SpaceRef, input: ConversationCreateInput) {
      const id = input.id ?? ids.uuid();
      const failures: ValidationFailure[] = [];
      const idProblem = clientIdProblem(id, []);
      if (idProblem) failures.push({ paramName: 'id', message: idProblem });
      const listed = (input.participants ?? []).map((p) => ({ ...p }));
      failures.push(...participantProblems(listed, 'participants'));
      if (failures.length) throw errors.validation(failures);
      const me = isBound(actor) ? actor.profileId! : undefined;
      if (me) {
        const mine = listed.find((p) => p.id === me);
        if (!mine) listed.unshift({ id: me, role: 'owner' });
        else if (!mine.role) mine.role = 'owner';
      }
      await ensureProfiles(profiles, space.id, listed.map((p) => p.id), actor.actor);
      const now = iso(clock.now());
      const base = {
        name: input.name ?? id, description: input.description ?? null, roles: toJson(input.roles ?? DEFAULT_ROLES),
        is_public: input.isPublic ? 1 : 0, message_scope: input.messageScope ?? 'p2p', updated_on: now, updated_by: actor.actor,
      };
      return ctx.transaction(async (uow) => {
        const existing = await uow.tx.selectFrom('am_conversations').selectAll().where('api_space_id', '=', space.id).where('id', '=', id).executeTakeFirst();
        let r: AmConversationRow;
        let undelete = false;
        if (existing && !existing.deleted_on) throw amErrors.alreadyExists(id);
        if (existing) {
          // Re-creating a soft-deleted id restores it, keeping its earlier participants.
          undelete = true;
          r = { ...existing, ...base, revision: Number(existing.revision) + 1, deleted_on: null, deleted_by: null };
          await uow.tx.updateTable('am_conversations').set({ ...base, revision: r.revision, deleted_on: null, deleted_by: null })
            .where('api_space_id', '=', space.id).where('id', '=', id).execute();
        } else {
          r = { api_space_id: space.id, id, ...base, revision: 0, last_event_id: 0, latest_sent_event_id: null, created_on: now, created_by: actor.actor, deleted_on: null, deleted_by: null };
          try {
            await uow.tx.insertInto('am_conversations').values(r).execute();
          } catch (err) {
            if (isUniqueViolation(err)) throw amErrors.alreadyExists(id);
            throw err;
          }
        }
        const view = conversationView(r);
        const etag = conversationEtag(r);
        await applyParticipants(uow, space, id, listed, actor.actor);
        const everyone = await participantIds(uow.tx, space.id, id);
        const roster = (await uow.tx.selectFrom('am_participants').select(['profile_id', 'role']).where('api_space_id', '=', space.id).where('conversation_id', '=', id).execute())
          .map((p) => ({ profileId: p.profile_id, role: p.role }));
        const payload = { id, name: view.name, description: view.description, roles: view.roles, isPublic: view.isPublic, participants: roster };
        await ctx.events.append(uow, {
          apiSpaceId: space.id, accountId: space.accountId, name: undelete ? 'conversation.undelete' : 'conversation.create', payload,
          meta: { actor: actor.actor, conversationId: id, revision: Number(r.revision), etag },
        });
        if (undelete) publish(uow, space.id, everyone, frame(space, 'conversation.undelete', id, view, actor.actor, { revision: Number(r.revision), etag }));
        return { conversation: view, etag, lastModified: r.updated_on };
      });
    },

    async get(actor: Actor, apiSpaceId: string, id: string, includeDeleted = false) {
      const r = await readable(actor, apiSpaceId, id, includeDeleted);
      return { conversation: conversationView(r, includeDeleted), etag: conversationEtag(r), lastModified: r.updated_on };
    },

    async update(actor: Actor, space: SpaceRef, id: string, input: ConversationUpdateInput, check: (etag: string) => void) {
      const current = await load(space.id, id);
      await requireOwner(actor, space.id, id);
      check(conversationEtag(current));
      const now = iso(clock.now());
      const next: AmConversationRow = {
        ...current, name: input.name ?? current.name, description: input.description ?? null,
        roles: input.roles ? toJson(input.roles) : current.roles, revision: Number(current.revision) + 1, updated_on: now, updated_by: actor.actor,
      };
      const result = withEtag(next);
      await ctx.transaction(async (uow) => {
        const res = await uow.tx.updateTable('am_conversations')
          .set({ name: next.name, description: next.description, roles: typeof next.roles === 'string' ? next.roles : toJson(next.roles), revision: next.revision, updated_on: now, updated_by: actor.actor })
          .where('api_space_id', '=', space.id).where('id', '=', id).where('revision', '=', current.revision).where('deleted_on', 'is', null).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The conversation was changed by another request');
        const c = result.conversation;
        const payload = { id, name: c.name, description: c.description, roles: c.roles, isPublic: c.isPublic };
        await ctx.events.append(uow, { apiSpaceId: space.id, accountId: space.accountId, name: 'conversation.update', payload, meta: { actor: actor.actor, conversationId: id, revision: next.revision, etag: result.etag } });
        publish(uow, space.id, await participantIds(uow.tx, space.id, id), frame(space, 'conversation.update', id, payload, actor.actor, { revision: next.revision, etag: result.etag }));
      });
      return result;
    },

    async remove(actor: Actor, space: SpaceRef, id: string, check: (etag: string) => void): Promise<void> {
      const current = await load(space.id, id);
      await requireOwner(actor, space.id, id);
      check(conversationEtag(current));
      const now = iso(clock.now());
      await ctx.transaction(async (uow) => {
        const res = await uow.tx.updateTable('am_conversations').set({ deleted_on: now, deleted_by: actor.actor, revision: Number(current.revision) + 1 })
          .where('api_space_id', '=', space.id).where('id', '=', id).where('revision', '=', current.revision).where('deleted_on', 'is', null).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The conversation was changed by another request');
        const payload = { id, date: now, by: actor.actor };
        await ctx.events.append(uow, { apiSpaceId: space.id, accountId: space.accountId, name: 'conversation.delete', payload, meta: { actor: actor.actor, conversationId: id, revision: Number(current.revision) + 1 } });
        publish(uow, space.id, await participantIds(uow.tx, space.id, id), frame(space, 'conversation.delete', id, payload, actor.actor));
      });
    },

    async list(actor: Actor, apiSpaceId: string, query: ListQuery) {
      let profileFilter: string | undefined;
      if (isBound(actor)) {
        if (query.profileId !== undefined && query.profileId !== actor.profileId) throw errors.forbidden('A session can only list its own conversations');
        if (query.scope !== 'public' || query.profileId !== undefined) profileFilter = actor.profileId;
      } else {
        profileFilter = query.profileId ?? (query.scope === 'participant' && actor.kind === 'access' && actor.profileId ? actor.profileId : undefined);
      }
      let q = db.selectFrom('am_conversations as c').selectAll('c').where('c.api_space_id', '=', apiSpaceId);
      if (!(query.includeDeleted && !isBound(actor))) q = q.where('c.deleted_on', 'is', null);
      if (query.scope === 'public') q = q.where('c.is_public', '=', 1);
      if (profileFilter !== undefined) {
        const pid = profileFilter;
        q = q.where(({ exists, selectFrom }) => exists(selectFrom('am_participants as p').select('p.profile_id')
          .whereRef('p.api_space_id', '=', 'c.api_space_id').whereRef('p.conversation_id', '=', 'c.id').where('p.profile_id', '=', pid)));
      }
      const rows = await q.orderBy('c.updated_on', 'desc').limit(5000).execute();
      if (!rows.length) return [];
      const counts = new Map<string, number>();
      const cids = rows.map((r) => r.id);
      for (let i = 0; i < cids.length; i += 500) {
        const chunk = cids.slice(i, i + 500);
        const cs = await db.selectFrom('am_participants').select(['conversation_id', db.fn.countAll<number>().as('n')])
          .where('api_space_id', '=', apiSpaceId).where('conversation_id', 'in', chunk).groupBy('conversation_id').execute();
        for (const c of cs) counts.set(c.conversation_id, Number(c.n));
      }
      return rows.map((r) => ({
        ...conversationView(r, !!query.includeDeleted && !isBound(actor)),
        participantCount: counts.get(r.id) ?? 0,
        ...(r.latest_sent_event_id !== null ? { latestSentEventId: Number(r.latest_sent_event_id) } : {}),
      }));
    },

    async participants(actor: Actor, apiSpaceId: string, id: string) {
      await readable(actor, apiSpaceId, id);
      const rows = await db.selectFrom('am_participants').select(['profile_id', 'role', 'added_on']).where('api_space_id', '=', apiSpaceId).where('conversation_id', '=', id)
        .orderBy('added_on').orderBy('profile_id').execute();
      return rows.map((r) => ({ id: r.profile_id, role: r.role as Role }));
    },

    async addParticipants(actor: Actor, space: SpaceRef, id: string, list: ParticipantInput[]): Promise<void> {
      const failures = participantProblems(list, 'body');
      if (failures.length) throw errors.validation(failures);
      const r = await load(space.id, id);
      if (isBound(actor)) {
        const role = await roleOf(db, space.id, id, actor.profileId);
        const selfJoin = r.is_public === 1 && list.length === 1 && list[0]!.id === actor.profileId && (list[0]!.role ?? 'participant') === 'participant';
        if (!selfJoin) {
          if (!role) throw amErrors.notAParticipant(id);
          const roles = conversationView(r).roles;
          if (!roles[role].canAddParticipants) throw amErrors.roleNotAllowed('adding participants');
        }
      }
      await ensureProfiles(profiles, space.id, list.map((p) => p.id), actor.actor);
      await ctx.transaction((uow) => applyParticipants(uow, space, id, list, actor.actor));
    },

    async removeParticipants(actor: Actor, space: SpaceRef, id: string, profileIds: string[]): Promise<void> {
      const r = await load(space.id, id);
      const unique = [...new Set(profileIds.filter((p) => p !== ''))];
      if (!unique.length) throw errors.invalidField('query.id', 'At least one participant id is required');
      if (isBound(actor) && !(unique.length === 1 && unique[0] === actor.profileId)) {
        const role = await roleOf(db, space.id, id, actor.profileId);
        if (!role) throw amErrors.notAParticipant(id);
        if (!conversationView(r).roles[role].canRemoveParticipants) throw amErrors.roleNotAllowed('removing participants');
      }
      await ctx.transaction((uow) => dropParticipants(uow, space, id, unique, actor.actor));
    },

    /**
     * A forgotten profile (profiles.md §3.5) leaves every conversation it takes part in, deleted
     * ones included, with the usual `conversation.participantRemoved` events.
     */
    async removeProfileEverywhere(space: SpaceRef, profileId: string, actor: string): Promise<void> {
      const rows = await db.selectFrom('am_participants').select('conversation_id').where('api_space_id', '=', space.id).where('profile_id', '=', profileId).execute();
      for (const r of rows) await ctx.transaction((uow) => dropParticipants(uow, space, r.conversation_id, [profileId], actor));
    },

    /** Typing indicators: websocket only, never stored (§4.4). */
    async typing(actor: Actor, space: SpaceRef, id: string, on: boolean): Promise<void> {
      await load(space.id, id);
      const me = callerProfile(actor);
      if (!me || (actor.kind === 'access' && !actor.profileId)) throw errors.forbidden('The token has no profileId to type as');
      const everyone = await participantIds(db, space.id, id);
      if (isBound(actor) && !everyone.includes(me)) throw amErrors.notAParticipant(id);
      const name = on ? 'conversation.participantTyping' : 'conversation.participantTypingOff';
      const f = frame(space, name, id, { conversationId: id, profileId: me }, actor.actor);
      bus.publish(FRAMES_CHANNEL, { s: space.id, to: everyone, ex: me, f } satisfies FrameDelivery);
    },
  };
}

export type { ConversationView };
