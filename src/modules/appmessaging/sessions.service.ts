import { randomBytes } from 'node:crypto';
import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import type { SpaceRef } from '../../auth/space-directory.js';
import type { ProfileDirectory, ProfileDevice } from '../profiles/profiles.contract.js';
import type { SpacesService } from '../spaces/spaces.service.js';
import { iso } from '../../lib/clock.js';
import { clientIdProblem } from '../../lib/ids.js';
import { TtlCache } from '../../lib/cache.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import { errors } from '../../http/errors.js';
import { SESSION_ENDED_CHANNEL, type SessionEnded } from '../../realtime/frames.js';
import type { AmSessionRow } from './appmessaging.migrations.js';
import { amErrors } from './appmessaging.errors.js';
import { ensureProfiles } from './conversations.model.js';
import type { DevicePush } from '../../channels/push/sender.js';

/** A session's push details (app-messaging.md §8.1), as the push sender takes them. */
export type PushConfig = DevicePush;
/** The push token the details carry (FCM registration id or APNs device token). */
export const tokenOf = (p: PushConfig): string | undefined => p.fcm?.registrationId ?? p.apns?.token;

export interface SessionStartInput {
  authenticationId: string;
  authenticationToken: string;
  deviceId: string;
  platform: string;
  platformVersion?: string;
  sdkType?: string;
  sdkVersion?: string;
  push?: PushConfig | null;
}

export interface SessionView {
  id: string;
  profileId: string;
  deviceId: string;
  platform: string;
  platformVersion?: string;
  sdkType?: string;
  sdkVersion?: string;
  sourceIp?: string;
  isActive: boolean;
  startedOn: string;
  createdOn: string;
  expiresOn: string;
  push?: PushConfig;
}

export type EndReason = 'ended' | 'deviceRemoved' | 'profileDeleted' | 'expired';

const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const PURGE_AFTER_MS = 30 * 24 * 3600 * 1000;

export type SessionsService = ReturnType<typeof createSessionsService>;

/** Sessions, the JWT challenge and push registration (app-messaging.md §2, §8). */
export function createSessionsService(ctx: ModuleContext, deps: { profiles?: ProfileDirectory; apiSpaces: SpacesService }) {
  const { db, clock, ids, config, bus, credentials } = { ...ctx, credentials: ctx.services.credentials };
  const { profiles, apiSpaces } = deps;
  // Session validity per request: a short cache, dropped in every process when a session ends.
  const live = new TtlCache<string, number>(5_000, 100_000, () => clock.now());
  bus.subscribe(SESSION_ENDED_CHANNEL, (m) => live.delete(`${(m as SessionEnded).s}:${(m as SessionEnded).sessionId}`));

  const view = (r: AmSessionRow): SessionView => {
    const push = fromJson<PushConfig | null>(r.push);
    return {
      id: r.id, profileId: r.profile_id, deviceId: r.device_id, platform: r.platform,
      ...(r.platform_version !== null ? { platformVersion: r.platform_version } : {}),
      ...(r.sdk_type !== null ? { sdkType: r.sdk_type } : {}),
      ...(r.sdk_version !== null ? { sdkVersion: r.sdk_version } : {}),
      ...(r.source_ip !== null ? { sourceIp: r.source_ip } : {}),
      isActive: r.is_active === 1 && Number(r.expires_at) > clock.now(),
      startedOn: r.started_on, createdOn: r.started_on, expiresOn: iso(Number(r.expires_at)),
      ...(push ? { push } : {}),
    };
  };

  async function row(apiSpaceId: string, id: string): Promise<AmSessionRow> {
    const r = await db.selectFrom('am_sessions').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
    if (!r) throw amErrors.sessionNotFound();
    return r;
  }

  function ownOrPermitted(actor: Actor, sessionId: string): void {
    if (actor.kind === 'session' && actor.sessionId !== sessionId) throw errors.forbidden('A session can only act on itself');
  }

  /** Verifies the customer's JWT (§2.4) and returns the profile id from its id claim. */
  async function verifyCustomerJwt(token: string, nonce: string, auth: { issuer: string; audience: string; sharedSecretPlain: string; idClaim: string }): Promise<string> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, new TextEncoder().encode(auth.sharedSecretPlain), {
        algorithms: JWT_ALGORITHMS,
        issuer: auth.issuer,
        ...(auth.audience === '*' ? {} : { audience: auth.audience }),
        clockTolerance: 60,
        currentDate: new Date(clock.now()),
      }));
    } catch {
      throw amErrors.invalidJwt();
    }
    if (payload.nonce !== nonce) throw amErrors.invalidJwt();
    const raw = payload[auth.idClaim || 'sub'];
    const id = typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : typeof raw === 'string' ? raw : '';
    if (!id || clientIdProblem(id, ['bulk', 'optin'])) throw amErrors.invalidJwt();
    return id;
  }

  async function endRow(r: AmSessionRow, by: string, reason: EndReason): Promise<boolean> {
    const now = iso(clock.now());
    // Looked up before the transaction: SQLite has one connection, held by the transaction.
    const space = await ctx.services.spaces.get(r.api_space_id);
    const ended = await ctx.transaction(async (uow) => {
      const res = await uow.tx.updateTable('am_sessions').set({ is_active: 0, ended_on: now, end_reason: reason })
        .where('api_space_id', '=', r.api_space_id).where('id', '=', r.id).where('is_active', '=', 1).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      await ctx.events.append(uow, {
        apiSpaceId: r.api_space_id, accountId: space?.accountId ?? config.bootstrapAccountId, name: 'session.delete',
        payload: { id: r.id, profileId: r.profile_id, date: now, by, reason }, meta: { actor: by, profileId: r.profile_id },
      });
      uow.afterCommit(() => bus.publish(SESSION_ENDED_CHANNEL, { s: r.api_space_id, sessionId: r.id } satisfies SessionEnded));
      return true;
    });
    live.delete(`${r.api_space_id}:${r.id}`);
    const push = fromJson<PushConfig | null>(r.push);
    if (ended && push && reason !== 'expired' && reason !== 'deviceRemoved') await dropDevicePush(r, push, by);
    return ended;
  }

  async function dropDevicePush(r: AmSessionRow, push: PushConfig, by: string): Promise<void> {
    const token = tokenOf(push);
    if (token !== undefined) await dropDeviceToken(r.api_space_id, r.profile_id, r.device_id, token, by);
  }

  /** Removes a device's push details if they still carry `token`. */
  async function dropDeviceToken(apiSpaceId: string, profileId: string, deviceId: string, token: string, by: string): Promise<void> {
    if (!profiles) return;
    const device = (await profiles.devices(apiSpaceId, profileId)).find((d) => d.deviceId === deviceId);
    if (device?.push && tokenOf(device.push) === token) {
      const { push: _drop, ...rest } = device;
      await profiles.upsertDevice(apiSpaceId, profileId, rest, by);
    }
  }

  function deviceFrom(r: { device_id: string; platform: string; platform_version: string | null; sdk_type: string | null; sdk_version: string | null }, push: PushConfig | null | undefined, at: string): ProfileDevice {
    return {
      deviceId: r.device_id, platform: r.platform,
      ...(r.platform_version !== null ? { platformVersion: r.platform_version } : {}),
      ...(r.sdk_type !== null ? { sdkType: r.sdk_type } : {}),
      ...(r.sdk_version !== null ? { sdkVersion: r.sdk_version } : {}),
      ...(push ? { push } : {}),
      lastSessionOn: at,
    };
  }

  return {
    view,
    dropPushTokens,

    /** Credentials hook: is this session active and unexpired? */
    async isLive(apiSpaceId: string, sessionId: string): Promise<boolean> {
      const key = `${apiSpaceId}:${sessionId}`;
      let until = live.get(key);
      if (until === undefined) {
        const r = await db.selectFrom('am_sessions').select(['is_active', 'expires_at']).where('api_space_id', '=', apiSpaceId).where('id', '=', sessionId).executeTakeFirst();
        until = r && r.is_active === 1 ? Number(r.expires_at) : 0;
        live.set(key, until);
      }
      return until > clock.now();
    },

    async start(space: SpaceRef) {
      const now = clock.now();
      const challenge = { api_space_id: space.id, id: ids.uuid(), nonce: randomBytes(16).toString('hex'), expires_at: now + config.authChallengeTtlSeconds * 1000, used: 0, created_on: iso(now) };
      await db.insertInto('am_challenges').values(challenge).execute();
      return { authenticationId: challenge.id, provider: 'jsonWebToken' as const, nonce: challenge.nonce, expiresOn: iso(challenge.expires_at) };
    },

    async create(space: SpaceRef, rawSpaceId: string, input: SessionStartInput, sourceIp: string | undefined) {
      if (input.push && !!input.push.fcm === !!input.push.apns) throw errors.invalidField('push', 'Supply exactly one of fcm or apns');
      const now = clock.now();
      const challenge = await db.selectFrom('am_challenges').select(['nonce']).where('api_space_id', '=', space.id).where('id', '=', input.authenticationId).executeTakeFirst();
      // Mark used first: a challenge is consumed by any attempt, successful or not.
      const used = await db.updateTable('am_challenges').set({ used: 1 })
        .where('api_space_id', '=', space.id).where('id', '=', input.authenticationId).where('used', '=', 0).where('expires_at', '>', now).executeTakeFirst();
      if (!challenge || Number(used.numUpdatedRows) !== 1) throw amErrors.invalidAuthentication();
      const auth = await apiSpaces.authConfig(space.id);
      if (!auth) throw amErrors.authNotConfigured();
      const profileId = await verifyCustomerJwt(input.authenticationToken, challenge.nonce, auth);

      const id = ids.uuid();
      const actor = `session:${profileId}`;
      const expiresAt = now + config.sessionTtlSeconds * 1000;
      const r: AmSessionRow = {
        api_space_id: space.id, id, profile_id: profileId, device_id: input.deviceId, platform: input.platform,
        platform_version: input.platformVersion ?? null, sdk_type: input.sdkType ?? null, sdk_version: input.sdkVersion ?? null,
        source_ip: sourceIp ?? null, push: input.push ? toJson(input.push) : null, is_active: 1, started_on: iso(now), expires_at: expiresAt, ended_on: null, end_reason: null,
      };
      const profile = (await ensureProfiles(profiles, space.id, [profileId], actor)).get(profileId);
      if (profile?._deleted) throw amErrors.profileDeleted();
      await ctx.transaction(async (uow) => {
        await uow.tx.insertInto('am_sessions').values(r).execute();
        const { push: _p, ...payload } = view(r);
        await ctx.events.append(uow, { apiSpaceId: space.id, accountId: space.accountId, name: 'session.create', payload, meta: { actor, profileId } });
      });
      if (profiles) {
        if (input.push) await removePushElsewhere(space.id, id, input.push);
        await profiles.upsertDevice(space.id, profileId, deviceFrom(r, input.push, r.started_on), actor);
        await profiles.touchActivity(space.id, profileId, now);
      }
      const token = credentials.issue({
        tokenType: 'session', jti: id, sessionId: id, iss: `${config.publicBaseUrl}/sessions`, aud: config.publicBaseUrl,
        sub: profileId, profileId, apiSpaceId: rawSpaceId, accountId: space.accountId,
        iat: Math.floor(now / 1000), exp: Math.floor(expiresAt / 1000),
      });
      return { token, session: view(r) };
    },

    async get(actor: Actor, apiSpaceId: string, id: string): Promise<SessionView> {
      ownOrPermitted(actor, id);
      return view(await row(apiSpaceId, id));
    },

    async end(actor: Actor, apiSpaceId: string, id: string): Promise<void> {
      ownOrPermitted(actor, id);
      const r = await row(apiSpaceId, id);
      await endRow(r, actor.actor, 'ended');
    },

    /** Ends every active session of a device (the device was removed from its profile). */
    async endDevice(apiSpaceId: string, profileId: string, deviceId: string): Promise<void> {
      const rows = await db.selectFrom('am_sessions').selectAll().where('api_space_id', '=', apiSpaceId)
        .where('profile_id', '=', profileId).where('device_id', '=', deviceId).where('is_active', '=', 1).execute();
      for (const r of rows) await endRow(r, 'system', 'deviceRemoved');
    },

    /** Active, unexpired sessions (`sessionFull`) of profiles, by profile id (`$includeSessions`). */
    async activeByProfile(apiSpaceId: string, profileIds: readonly string[]): Promise<Map<string, SessionView[]>> {
      const out = new Map<string, SessionView[]>();
      const now = clock.now();
      const unique = [...new Set(profileIds)];
      for (let i = 0; i < unique.length; i += 500) {
        const rows = await db.selectFrom('am_sessions').selectAll().where('api_space_id', '=', apiSpaceId)
          .where('profile_id', 'in', unique.slice(i, i + 500)).where('is_active', '=', 1).where('expires_at', '>', now)
          .orderBy('started_on').orderBy('id').execute();
        for (const r of rows) {
          const list = out.get(r.profile_id) ?? [];
          list.push(view(r));
          out.set(r.profile_id, list);
        }
      }
      return out;
    },

    /** Ends every active session of a deleted profile. */
    async endProfile(apiSpaceId: string, profileId: string): Promise<void> {
      const rows = await db.selectFrom('am_sessions').selectAll().where('api_space_id', '=', apiSpaceId)
        .where('profile_id', '=', profileId).where('is_active', '=', 1).execute();
      for (const r of rows) await endRow(r, 'system', 'profileDeleted');
    },

    async setPush(actor: Actor, apiSpaceId: string, id: string, push: PushConfig): Promise<void> {
      ownOrPermitted(actor, id);
      if (!!push.fcm === !!push.apns) throw errors.invalidField('body', 'Supply exactly one of fcm or apns');
      const r = await row(apiSpaceId, id);
      await db.updateTable('am_sessions').set({ push: toJson(push) }).where('api_space_id', '=', apiSpaceId).where('id', '=', id).execute();
      await removePushElsewhere(apiSpaceId, id, push);
      if (profiles) await profiles.upsertDevice(apiSpaceId, r.profile_id, deviceFrom(r, push, iso(clock.now())), actor.actor);
    },

    async removePush(actor: Actor, apiSpaceId: string, id: string): Promise<void> {
      ownOrPermitted(actor, id);
      const r = await row(apiSpaceId, id);
      const push = fromJson<PushConfig | null>(r.push);
      if (!push) return;
      await db.updateTable('am_sessions').set({ push: null }).where('api_space_id', '=', apiSpaceId).where('id', '=', id).execute();
      await dropDevicePush(r, push, actor.actor);
    },

    async anonToken(space: SpaceRef, visitorId: string, nonce: string): Promise<string> {
      const auth = await apiSpaces.authConfig(space.id);
      if (!auth) throw amErrors.authNotConfigured();
      if (auth.allowAnonymous === false) throw amErrors.anonymousDisabled();
      const id = visitorId.startsWith('anon_') ? visitorId : `anon_${visitorId}`;
      const problem = clientIdProblem(id, ['bulk', 'optin']);
      if (problem) throw errors.invalidField('query.id', problem);
      const now = Math.floor(clock.now() / 1000);
      return new SignJWT({ [auth.idClaim || 'sub']: id, nonce, iss: auth.issuer, aud: auth.audience, iat: now, exp: now + config.anonTokenTtlSeconds })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .sign(new TextEncoder().encode(auth.sharedSecretPlain));
    },

    /** Marks expired sessions inactive (emitting `session.delete`), purges old rows and challenges. */
    async sweep(): Promise<number> {
      const now = clock.now();
      const expired = await db.selectFrom('am_sessions').selectAll().where('is_active', '=', 1).where('expires_at', '<=', now).limit(500).execute();
      let n = 0;
      for (const r of expired) if (await endRow(r, 'system', 'expired')) n++;
      await db.deleteFrom('am_sessions').where('is_active', '=', 0).where('expires_at', '<', now - PURGE_AFTER_MS).execute();
      await db.deleteFrom('am_challenges').where('expires_at', '<', now - 3600_000).execute();
      return n;
    },
  };

  /** A push token belongs to one installation: registering it elsewhere clears other sessions' copies. */
  /**
   * Removes push details a provider called invalid (channels.md §5): from every session holding
   * the token, and from the device each target names, also when its session is already gone
   * (`profile.devicesUpdated`).
   */
  async function dropPushTokens(apiSpaceId: string, targets: ReadonlyArray<{ profileId: string; deviceId: string; token: string }>): Promise<void> {
    if (!targets.length) return;
    await clearSessionPush(apiSpaceId, targets.map((t) => t.token));
    for (const t of targets) await dropDeviceToken(apiSpaceId, t.profileId, t.deviceId, t.token, 'system');
  }

  /** Another session registering a token takes it over: sessions holding it elsewhere lose it. */
  async function removePushElsewhere(apiSpaceId: string, sessionId: string, push: PushConfig): Promise<void> {
    const token = tokenOf(push);
    if (token !== undefined) await clearSessionPush(apiSpaceId, [token], sessionId);
  }

  /** Clears the push details of the space's sessions (but `exceptSessionId`) holding one of `tokens`, and their devices'. */
  async function clearSessionPush(apiSpaceId: string, tokens: readonly string[], exceptSessionId?: string): Promise<void> {
    let q = db.selectFrom('am_sessions').selectAll().where('api_space_id', '=', apiSpaceId).where('push', 'is not', null);
    if (exceptSessionId !== undefined) q = q.where('id', '!=', exceptSessionId);
    for (const r of await q.execute()) {
      const p = fromJson<PushConfig | null>(r.push);
      const token = p ? tokenOf(p) : undefined;
      if (!p || token === undefined || !tokens.includes(token)) continue;
      await db.updateTable('am_sessions').set({ push: null }).where('api_space_id', '=', apiSpaceId).where('id', '=', r.id).execute();
      await dropDevicePush(r, p, 'system');
    }
  }
}
