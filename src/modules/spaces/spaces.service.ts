import type { Platform } from '../../platform.js';
import type { Uow } from '../../storage/uow.js';
import type { ApiSpaceRow } from '../../storage/schema.js';
import type { SpaceSettings } from '../../storage/space-settings.js';
import type { SpaceDirectory } from '../../auth/space-directory.js';
import type { Actor } from '../../auth/actor.js';
import { iso } from '../../lib/clock.js';
import { errors } from '../../http/errors.js';
import { etagFor } from '../../http/etag.js';
import { maskSecret } from '../../lib/secrets.js';
import { RETENTION_DEFAULTS, retentionProblems } from './spaces.schemas.js';

export interface ApiSpaceView {
  id: string;
  name: string;
  accountId: number;
  createdOn: string;
  updatedOn: string;
  createdBy: string;
  updatedBy: string;
}

export interface AuthConfigStored {
  issuer: string;
  audience: string;
  /** Sealed with the installation's secret box. */
  sharedSecret: string;
  idClaim: string;
  allowAnonymous: boolean;
}

export type AuthConfigInput = Omit<AuthConfigStored, 'idClaim' | 'allowAnonymous'> & { idClaim?: string; allowAnonymous?: boolean };
export type Retention = Record<string, number | null>;

/** Hooks other modules register to create or remove their per-space defaults. */
export type SpaceHook = (uow: Uow, space: ApiSpaceView) => Promise<void>;

const view = (r: ApiSpaceRow): ApiSpaceView => ({
  id: r.id, name: r.name, accountId: r.account_id, createdOn: r.created_on, updatedOn: r.updated_on, createdBy: r.created_by, updatedBy: r.updated_by,
});

export type SpacesService = ReturnType<typeof createSpacesService>;

/** API space management (spaces-and-billing.md §2, §3, §5). */
export function createSpacesService(p: Platform, deps: { settings: SpaceSettings; directory: SpaceDirectory }) {
  const { db, clock, ids, secrets } = p;
  const { settings, directory } = deps;
  const createdHooks: SpaceHook[] = [];
  const deletedHooks: SpaceHook[] = [];
  const withEtag = (r: ApiSpaceRow) => ({ space: view(r), etag: etagFor(r.revision, view(r)) });

  async function row(accountId: number, id: string): Promise<ApiSpaceRow> {
    const r = await db.selectFrom('api_spaces').selectAll().where('id', '=', id).where('deleted_on', 'is', null).executeTakeFirst();
    if (!r || r.account_id !== accountId) throw errors.notFound('API space');
    return r;
  }

  return {
    onCreated: (hook: SpaceHook) => void createdHooks.push(hook),
    onDeleted: (hook: SpaceHook) => void deletedHooks.push(hook),

    async list(actor: Actor): Promise<ApiSpaceView[]> {
      let q = db.selectFrom('api_spaces').selectAll().where('account_id', '=', actor.accountId).where('deleted_on', 'is', null).orderBy('created_on').limit(5000);
      if (actor.kind === 'access') q = q.where('id', '=', actor.apiSpaceId!);
      return (await q.execute()).map(view);
    },

    async create(actor: Actor, name: string, id = ids.uuid()) {
      const now = iso(clock.now());
      const r: ApiSpaceRow = { id, account_id: actor.accountId, name, revision: 1, created_on: now, updated_on: now, created_by: actor.actor, updated_by: actor.actor, deleted_on: null };
      await p.transaction(async (uow) => {
        await uow.tx.insertInto('accounts').values({ id: actor.accountId, name: `Account ${actor.accountId}`, created_on: now }).onConflict((oc) => oc.doNothing()).execute();
        await uow.tx.insertInto('api_spaces').values(r).execute();
        await settings.put(id, 'retention', { ...RETENTION_DEFAULTS }, actor.actor, uow.tx);
        for (const hook of createdHooks) await hook(uow, view(r));
      });
      directory.invalidate(id);
      return withEtag(r);
    },

    async get(accountId: number, id: string) {
      return withEtag(await row(accountId, id));
    },

    async update(actor: Actor, id: string, name: string, check: (etag: string) => void) {
      const current = await row(actor.accountId, id);
      check(withEtag(current).etag);
      const next: ApiSpaceRow = { ...current, name, revision: current.revision + 1, updated_on: iso(clock.now()), updated_by: actor.actor };
      const res = await db.updateTable('api_spaces').set({ name, revision: next.revision, updated_on: next.updated_on, updated_by: next.updated_by })
        .where('id', '=', id).where('revision', '=', current.revision).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The API space was changed by another request');
      directory.invalidate(id);
      return withEtag(next);
    },

    async remove(actor: Actor, id: string, check: (etag: string) => void): Promise<void> {
      const current = await row(actor.accountId, id);
      check(withEtag(current).etag);
      await p.transaction(async (uow) => {
        await uow.tx.updateTable('api_spaces').set({ deleted_on: iso(clock.now()), updated_by: actor.actor }).where('id', '=', id).execute();
        // Access tokens of a deleted space stop working at once.
        await uow.tx.updateTable('access_tokens').set({ revoked: 1 }).where('api_space_id', '=', id).execute();
        for (const hook of deletedHooks) await hook(uow, view(current));
      });
      directory.invalidate(id);
    },

    async getAuth(accountId: number, id: string) {
      await row(accountId, id);
      const s = await settings.get<AuthConfigStored>(id, 'auth');
      if (!s) throw errors.notFound('Auth configuration');
      return { ...s.value, sharedSecret: maskSecret(secrets.open(s.value.sharedSecret)) };
    },

    /** The unmasked auth configuration, for the session module. */
    async authConfig(id: string): Promise<(AuthConfigStored & { sharedSecretPlain: string }) | undefined> {
      const s = await settings.get<AuthConfigStored>(id, 'auth');
      return s ? { ...s.value, sharedSecretPlain: secrets.open(s.value.sharedSecret) } : undefined;
    },

    async putAuth(actor: Actor, id: string, input: AuthConfigInput) {
      await row(actor.accountId, id);
      const stored: AuthConfigStored = {
        issuer: input.issuer, audience: input.audience, sharedSecret: secrets.seal(input.sharedSecret),
        idClaim: input.idClaim ?? 'sub', allowAnonymous: input.allowAnonymous ?? true,
      };
      await settings.put(id, 'auth', stored, actor.actor);
      return { ...stored, sharedSecret: maskSecret(input.sharedSecret) };
    },

    async getRetention(accountId: number, id: string): Promise<Retention> {
      await row(accountId, id);
      const s = await settings.get<Retention>(id, 'retention');
      return { ...RETENTION_DEFAULTS, ...(s?.value ?? {}) };
    },

    async putRetention(actor: Actor, id: string, input: Record<string, unknown>): Promise<Retention> {
      await row(actor.accountId, id);
      const problems = retentionProblems(input);
      if (problems.length) throw errors.validation(problems);
      const value: Retention = { ...RETENTION_DEFAULTS };
      for (const k of Object.keys(RETENTION_DEFAULTS)) if (input[k] !== undefined) value[k] = input[k] as number | null;
      await settings.put(id, 'retention', value, actor.actor);
      return value;
    },
  };
}
