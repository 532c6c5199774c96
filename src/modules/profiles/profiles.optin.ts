import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import type { Uow } from '../../storage/uow.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import type { ProfileRead } from './profiles.contract.js';
import { etagOf, toDocument, type ProfileState } from './profiles.document.js';
import type { ProfilesRepo } from './profiles.repo.js';
import type { ProfileWriter } from './profiles.writer.js';

export const BUILTIN_CHANNELS = ['sms', 'mms', 'email', 'nativePush', 'whatsApp', 'fbMessenger', 'twitterDm', 'appMessaging', 'rcs'] as const;
const CUSTOM_ID = /^[A-Za-z][A-Za-z0-9_-]{1,49}$/;
const SETTING = 'profiles.optin';

/** Opt-in per channel and the space defaults (profiles.md §6). */
export function createOptIn(ctx: ModuleContext, repo: ProfilesRepo, writer: ProfileWriter) {
  const builtin = new Set<string>(BUILTIN_CHANNELS);

  async function stored(apiSpaceId: string): Promise<Record<string, boolean>> {
    return (await ctx.services.settings.get<Record<string, boolean>>(apiSpaceId, SETTING))?.value ?? {};
  }

  async function isChannel(apiSpaceId: string, ch: string): Promise<boolean> {
    if (builtin.has(ch)) return true;
    if (!CUSTOM_ID.test(ch) || ch === 'facebook') return false;
    if (ch in (await stored(apiSpaceId))) return true;
    const channels = (ctx.services as { channels?: { config(s: string, c: string): Promise<{ custom: boolean } | undefined> } }).channels;
    return !!(await channels?.config(apiSpaceId, ch).catch(() => undefined))?.custom;
  }

  async function checkChannels(apiSpaceId: string, channels: string[], paramName: string): Promise<void> {
    const failures: ValidationFailure[] = [];
    for (const [i, ch] of channels.entries()) {
      if (!(await isChannel(apiSpaceId, ch))) failures.push({ paramName: `${paramName}[${i}]`, message: `Unknown channel "${ch}"` });
    }
    if (failures.length) throw errors.validation(failures);
  }

  async function defaults(apiSpaceId: string): Promise<Record<string, boolean>> {
    const out: Record<string, boolean> = {};
    for (const ch of BUILTIN_CHANNELS) out[ch] = true;
    return { ...out, ...(await stored(apiSpaceId)) };
  }

  async function change(uow: Uow, apiSpaceId: string, id: string, values: Record<string, boolean>, actor: string): Promise<ProfileState> {
    const cur = await repo.loadOne(uow.tx, apiSpaceId, id, true);
    if (!cur || cur.deletedOn) throw errors.notFound(`Profile ${id}`);
    const next = writer.bump(cur, actor, { optIn: { ...(cur.optIn ?? {}), ...values } });
    await writer.save(uow, apiSpaceId, cur, next, ['profile.update']);
    return next;
  }

  const read = (s: ProfileState): ProfileRead => ({ profile: toDocument(s), etag: etagOf(s), revision: s.revision });

  return {
    defaults,

    async putDefaults(actor: Actor, apiSpaceId: string, body: Record<string, unknown>): Promise<Record<string, boolean>> {
      const failures: ValidationFailure[] = [];
      for (const [k, v] of Object.entries(body)) {
        if (typeof v !== 'boolean') failures.push({ paramName: k, message: 'Must be a boolean' });
        else if (!(await isChannel(apiSpaceId, k))) failures.push({ paramName: k, message: `Unknown channel "${k}"` });
      }
      if (failures.length) throw errors.validation(failures);
      const next = { ...(await stored(apiSpaceId)), ...(body as Record<string, boolean>) };
      await ctx.services.settings.put(apiSpaceId, SETTING, next, actor.actor);
      return defaults(apiSpaceId);
    },

    async optIn(actor: Actor, apiSpaceId: string, id: string, channels: unknown): Promise<ProfileRead> {
      if (!Array.isArray(channels) || channels.length === 0 || channels.some((c) => typeof c !== 'string')) {
        throw errors.invalidField('channels', 'Must be a non-empty array of channel ids');
      }
      await checkChannels(apiSpaceId, channels, 'channels');
      return read(await ctx.transaction((uow) => change(uow, apiSpaceId, id, Object.fromEntries(channels.map((c) => [c, true])), actor.actor)));
    },

    async optOut(actor: Actor, apiSpaceId: string, id: string, channels: string[] | undefined): Promise<ProfileRead> {
      if (channels?.length) await checkChannels(apiSpaceId, channels, 'query.channel');
      const known = channels?.length ? undefined : Object.keys(await defaults(apiSpaceId));
      return read(await ctx.transaction(async (uow) => {
        let list = channels?.length ? channels : undefined;
        if (!list) {
          const cur = await repo.loadOne(uow.tx, apiSpaceId, id);
          list = [...new Set([...known!, ...Object.keys(cur?.optIn ?? {})])];
        }
        return change(uow, apiSpaceId, id, Object.fromEntries(list.map((c) => [c, false])), actor.actor);
      }));
    },

    /** Effective opt-in: the profile's explicit value, else the space default (true when unset). */
    async isOptedIn(apiSpaceId: string, profileId: string, channel: string): Promise<boolean> {
      const s = await repo.loadOne(ctx.db, apiSpaceId, profileId);
      const explicit = s?.optIn?.[channel];
      if (explicit !== undefined) return explicit;
      return (await defaults(apiSpaceId))[channel] ?? true;
    },

    async setOptIn(apiSpaceId: string, profileId: string, channels: Record<string, boolean>, actor: string, uow?: Uow): Promise<void> {
      if (uow) await change(uow, apiSpaceId, profileId, channels, actor);
      else await ctx.transaction((u) => change(u, apiSpaceId, profileId, channels, actor));
    },
  };
}

export type OptInService = ReturnType<typeof createOptIn>;
