import type { ModuleContext } from '../module.js';
import type { ChannelProvider, SendInput, SendOutcome } from '../../channels/adapter.js';
import { errors } from '../../http/errors.js';
import { toJson } from '../../storage/dialect.js';
import { iso } from '../../lib/clock.js';
import type { ConversationsService } from './conversations.service.js';
import type { ConversationMessagesService, MessagePart } from './messages.service.js';
import { ensureProfiles, type Roles } from './conversations.model.js';
import type { ProfileDirectory } from '../profiles/profiles.contract.js';

export interface A2PInput {
  conversationId?: string;
  to: string;
  from: { profileId: string; name?: string; avatarUrl?: string };
  parts: MessagePart[];
  metadata?: Record<string, unknown>;
  alert?: Record<string, unknown>;
  conversationName?: string;
  /** Overrides for a conversation this send creates (`overrides.appMessaging.conversation`). */
  conversation?: { name?: string; description?: string; roles?: Roles; isPublic?: boolean; messageScope?: 'a2p' | 'p2p' };
  /** The One API message id: its status follows the recipient's delivered/read updates. */
  sourceMessageId?: string;
  /** Actor string recorded as `sentBy` (default `system`). */
  actor?: string;
}

const A2P_ROLES: Roles = {
  owner: { canSend: true, canAddParticipants: true, canRemoveParticipants: true },
  participant: { canSend: true, canAddParticipants: false, canRemoveParticipants: false },
};

/** Business-to-person sends for the One API `appMessaging` channel (one-api.md §4.6). */
export function createA2P(ctx: ModuleContext, deps: { conversations: ConversationsService; messages: ConversationMessagesService; profiles?: ProfileDirectory }) {
  const { conversations, messages } = deps;

  async function postA2P(apiSpaceId: string, input: A2PInput): Promise<{ conversationId: string; messageId: string; conversationEventId: number }> {
    const space = await ctx.services.spaces.get(apiSpaceId);
    if (!space) throw errors.notFound('API space');
    const conversationId = input.conversationId ?? ctx.ids.uuid();
    const actor = input.actor ?? 'system';
    await ensureProfiles(deps.profiles, space.id, [input.from.profileId, input.to], actor);
    return ctx.transaction(async (uow) => {
      let conv = await uow.tx.selectFrom('am_conversations').selectAll().where('api_space_id', '=', space.id).where('id', '=', conversationId).executeTakeFirst();
      if (conv?.deleted_on) throw errors.conflict(`Conversation ${conversationId} is deleted`, 'InvalidState');
      if (!conv) {
        const now = iso(ctx.clock.now());
        const o = input.conversation ?? {};
        conv = {
          api_space_id: space.id, id: conversationId, name: o.name ?? input.conversationName ?? conversationId, description: o.description ?? null,
          roles: toJson(o.roles ?? A2P_ROLES), is_public: o.isPublic ? 1 : 0, message_scope: o.messageScope ?? 'a2p', revision: 0, last_event_id: 0,
          latest_sent_event_id: null, created_on: now, created_by: actor, updated_on: now, updated_by: actor, deleted_on: null, deleted_by: null,
        };
        await uow.tx.insertInto('am_conversations').values(conv).execute();
        await ctx.events.append(uow, {
          apiSpaceId: space.id, accountId: space.accountId, name: 'conversation.create',
          payload: { id: conversationId, name: conv.name, roles: o.roles ?? A2P_ROLES, isPublic: !!o.isPublic, participants: [{ profileId: input.from.profileId, role: 'owner' }, { profileId: input.to, role: 'participant' }] },
          meta: { actor, conversationId, revision: 0 },
        });
        const list = input.from.profileId === input.to ? [{ id: input.to, role: 'owner' as const }] : [{ id: input.from.profileId, role: 'owner' as const }, { id: input.to, role: 'participant' as const }];
        await conversations.applyParticipants(uow, space, conversationId, list, actor);
      } else {
        const present = await uow.tx.selectFrom('am_participants').select('profile_id').where('api_space_id', '=', space.id)
          .where('conversation_id', '=', conversationId).where('profile_id', '=', input.to).executeTakeFirst();
        if (!present) await conversations.applyParticipants(uow, space, conversationId, [{ id: input.to, role: 'participant' }], actor);
      }
      const from = { id: input.from.profileId, ...(input.from.name ? { name: input.from.name } : {}), ...(input.from.avatarUrl ? { avatarUrl: input.from.avatarUrl } : {}) };
      const sent = await messages.store(space, conv, {
        actor, from, direction: 'outbound', parts: input.parts.map((p) => ({ ...p, type: p.type ?? (p.data !== undefined ? 'text/plain' : 'application/octet-stream') })),
        metadata: input.metadata ?? {}, alert: input.alert, sourceMessageId: input.sourceMessageId,
      }, uow);
      return { conversationId, messageId: sent.id, conversationEventId: sent.eventId };
    });
  }

  /** The channel provider: no settings, the adapter posts into conversations. */
  const provider: ChannelProvider = {
    channel: 'appMessaging',
    provider: 'internal',
    secretSettings: [],
    validateSettings: () => [],
    create: () => ({
      async send(input: SendInput): Promise<SendOutcome> {
        const to = typeof input.to.profileId === 'string' ? input.to.profileId : undefined;
        if (!to) return { kind: 'rejected', reason: 'appMessaging needs to.profileId', code: 'NoAddress' };
        // The dispatcher passes the sender (channelOptions.appMessaging.from or the token's
        // profileId), the sending credential and overrides.appMessaging in the send input.
        const opts = (input.options ?? {}) as { conversation?: A2PInput['conversation'] };
        const sender = (input.from ?? {}) as Partial<A2PInput['from']>;
        const fromId = typeof sender.profileId === 'string' ? sender.profileId : undefined;
        if (!fromId) return { kind: 'rejected', reason: 'No sender profile (channelOptions.appMessaging.from or the token profileId)', code: 'NoSender' };
        const custom = (input.customBody ?? undefined) as { parts?: MessagePart[]; metadata?: Record<string, unknown>; alert?: Record<string, unknown> } | undefined;
        // The content (one-api.md §2.4.2): a text/plain part holding `body`, then the parts; `body`
        // taken from the parts' own first text part is not repeated.
        const given = input.messageParts ?? [];
        const bodyPart: MessagePart[] = input.body !== undefined && !given.some((p) => p.type === 'text/plain' && p.data === input.body)
          ? [{ type: 'text/plain', data: input.body, size: Buffer.byteLength(input.body) }] : [];
        const parts: MessagePart[] = custom?.parts ?? [...bodyPart, ...given];
        if (!parts.length) return { kind: 'rejected', reason: 'No content for appMessaging', code: 'NoContent' };
        const alert = custom?.alert ?? (input.title || input.body ? { ...(input.title ? { title: input.title } : {}), ...(input.body ? { body: input.body } : {}) } : undefined);
        try {
          const r = await postA2P(input.apiSpaceId, {
            conversationId: input.conversationId, to, from: { ...sender, profileId: fromId }, parts,
            metadata: custom?.metadata ?? (input.metadata && typeof input.metadata === 'object' ? input.metadata as Record<string, unknown> : undefined),
            alert, conversation: opts.conversation ?? (input.overrides?.conversation as A2PInput['conversation'] | undefined), sourceMessageId: input.messageId, actor: input.actor,
          });
          return { kind: 'accepted', providerMessageId: r.messageId, acceptedAt: ctx.clock.now(), details: { conversationId: r.conversationId, conversationEventId: r.conversationEventId } };
        } catch (err) {
          return { kind: 'rejected', reason: (err as Error).message, code: (err as { code?: string }).code };
        }
      },
    }),
  };

  return { postA2P, provider };
}
