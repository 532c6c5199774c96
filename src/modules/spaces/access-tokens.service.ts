import type { Platform } from '../../platform.js';
import type { Actor } from '../../auth/actor.js';
import type { Credentials } from '../../auth/credentials.js';
import type { AccessTokenRow } from '../../storage/schema.js';
import { PERMISSION_TEMPLATES, isKnownPermission } from '../../auth/permissions.js';
import { iso, parseDateTime } from '../../lib/clock.js';
import { errors, type ValidationFailure } from '../../http/errors.js';

export interface AccessTokenView {
  id: string;
  name: string;
  profileId: string;
  permissions: string[];
  expiresOn: string | null;
  revoked: boolean;
  lastUsedOn: string | null;
  _createdOn: string;
  _createdBy: string;
}

const view = (r: AccessTokenRow): AccessTokenView => ({
  id: r.id, name: r.name, profileId: r.profile_id, permissions: JSON.parse(r.permissions), expiresOn: r.expires_on,
  revoked: r.revoked === 1, lastUsedOn: r.last_used_on, _createdOn: r.created_on, _createdBy: r.created_by,
});

/** Called when a token names a profile: the profiles module creates a system profile if missing. */
export type ProfileEnsurer = (apiSpaceId: string, profileId: string, actor: string) => Promise<void>;

export type AccessTokensService = ReturnType<typeof createAccessTokensService>;

/** Access tokens (spaces-and-billing.md §6). */
export function createAccessTokensService(p: Platform, credentials: Credentials) {
  const { db, clock, ids, config } = p;
  let ensureProfile: ProfileEnsurer | undefined;

  return {
    setProfileEnsurer(fn: ProfileEnsurer) {
      ensureProfile = fn;
    },

    templates: () => PERMISSION_TEMPLATES,

    async create(actor: Actor, apiSpaceId: string, input: { name: string; profileId: string; permissions?: string[]; template?: string; expiresOn?: string }) {
      const failures: ValidationFailure[] = [];
      let permissions = input.permissions;
      if (input.template !== undefined) {
        const t = PERMISSION_TEMPLATES.find((x) => x.id === input.template);
        if (!t) failures.push({ paramName: 'template', message: `Unknown permission template "${input.template}"` });
        else permissions = [...new Set([...(permissions ?? []), ...t.permissions])];
      }
      if (!permissions) failures.push({ paramName: 'permissions', message: 'Supply permissions or template' });
      (permissions ?? []).forEach((perm, i) => {
        if (!isKnownPermission(perm)) failures.push({ paramName: `permissions[${i}]`, message: `Unknown permission "${perm}"` });
      });
      let exp: number | undefined;
      if (input.expiresOn !== undefined) {
        exp = parseDateTime(input.expiresOn);
        if (exp === undefined || exp <= clock.now()) failures.push({ paramName: 'expiresOn', message: 'Must be a future date-time' });
      }
      if (failures.length) throw errors.validation(failures);
      const id = ids.uuid();
      const now = clock.now();
      const row: AccessTokenRow = {
        id, api_space_id: apiSpaceId, name: input.name, profile_id: input.profileId, permissions: JSON.stringify(permissions),
        expires_on: exp === undefined ? null : iso(exp), revoked: 0, last_used_on: null, created_on: iso(now), created_by: actor.actor,
      };
      await db.insertInto('access_tokens').values(row).execute();
      await ensureProfile?.(apiSpaceId, input.profileId, actor.actor);
      const token = credentials.issue({
        tokenType: 'access', jti: id, iss: `${config.publicBaseUrl}/accesstokens`, aud: config.publicBaseUrl, sub: id,
        name: input.name, profileId: input.profileId, accountId: actor.accountId, apiSpaceId, permissions,
        iat: Math.floor(now / 1000), ...(exp !== undefined ? { exp: Math.floor(exp / 1000) } : {}),
      });
      return { ...view(row), token };
    },

    async list(apiSpaceId: string): Promise<AccessTokenView[]> {
      const rows = await db.selectFrom('access_tokens').selectAll().where('api_space_id', '=', apiSpaceId).orderBy('created_on').limit(5000).execute();
      return rows.map(view);
    },

    async get(apiSpaceId: string, tokenId: string): Promise<AccessTokenView> {
      const row = await db.selectFrom('access_tokens').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', tokenId).executeTakeFirst();
      if (!row) throw errors.notFound('Access token');
      return view(row);
    },

    async revoke(apiSpaceId: string, tokenId: string): Promise<void> {
      const res = await db.updateTable('access_tokens').set({ revoked: 1 }).where('api_space_id', '=', apiSpaceId).where('id', '=', tokenId).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw errors.notFound('Access token');
      credentials.invalidate('access', tokenId);
    },
  };
}
