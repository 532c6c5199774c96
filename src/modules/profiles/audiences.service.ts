import { sql } from 'kysely';
import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import { iso } from '../../lib/clock.js';
import { errors } from '../../http/errors.js';
import { checkIfMatch, etagFor } from '../../http/etag.js';
import { isUniqueViolation } from '../../storage/dialect.js';
import type { AudienceRow } from './profiles.repo.js';
import { parseFilterString, whereClause } from './profiles.query.js';

export interface AudienceInput {
  name: string;
  description?: string;
  query: string;
}

const view = (r: AudienceRow) => ({
  id: r.id, name: r.name, ...(r.description != null ? { description: r.description } : {}), query: r.query,
  _createdOn: r.created_on, _createdBy: r.created_by, _updatedOn: r.updated_on, _updatedBy: r.updated_by,
});
export type AudienceView = ReturnType<typeof view> & { profileCount?: number };

/** Audiences: named, saved profile queries evaluated when read (profiles.md §9). */
export function createAudiences(ctx: ModuleContext) {
  const { db, clock } = ctx;
  const withEtag = (r: AudienceRow) => ({ audience: view(r) as AudienceView, etag: etagFor(r.revision, view(r)) });

  async function row(apiSpaceId: string, id: string): Promise<AudienceRow> {
    const r = await db.selectFrom('audiences').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
    if (!r) throw errors.notFound(`Audience ${id}`);
    return r;
  }

  function validate(input: AudienceInput): void {
    if (input.name.trim() === '') throw errors.invalidField('name', 'Must not be empty');
    parseFilterString(input.query, 'query');
  }

  const nameTaken = (name: string) => errors.conflict(`An audience named "${name}" already exists`, 'AlreadyExists');

  return {
    filters: (r: { query: string }) => parseFilterString(r.query, 'query'),

    async count(apiSpaceId: string, query: string): Promise<number> {
      const res = await sql<{ c: number }>`SELECT count(*) AS c FROM profiles p WHERE ${whereClause(apiSpaceId, parseFilterString(query, 'query'), {})}`.execute(db);
      return Number(res.rows[0]?.c ?? 0);
    },

    async list(apiSpaceId: string, limit: number, skip: number) {
      const total = await db.selectFrom('audiences').select((eb) => eb.fn.countAll<number>().as('c')).where('api_space_id', '=', apiSpaceId).executeTakeFirst();
      const rows = await db.selectFrom('audiences').selectAll().where('api_space_id', '=', apiSpaceId).orderBy('name').orderBy('id').limit(limit).offset(skip).execute();
      return { items: rows.map(view) as AudienceView[], total: Number(total?.c ?? 0) };
    },

    async get(apiSpaceId: string, id: string) {
      return withEtag(await row(apiSpaceId, id));
    },

    async create(actor: Actor, apiSpaceId: string, input: AudienceInput) {
      validate(input);
      const now = iso(clock.now());
      const r: AudienceRow = {
        api_space_id: apiSpaceId, id: ctx.ids.uuid(), name: input.name, description: input.description ?? null, query: input.query, revision: 0,
        created_on: now, created_by: actor.actor, updated_on: now, updated_by: actor.actor,
      };
      try {
        await db.insertInto('audiences').values(r).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw nameTaken(input.name);
        throw err;
      }
      return withEtag(r);
    },

    async replace(actor: Actor, apiSpaceId: string, id: string, input: AudienceInput, ifMatch: string | string[] | undefined) {
      validate(input);
      const cur = await row(apiSpaceId, id);
      checkIfMatch(ifMatch, withEtag(cur).etag);
      const next: AudienceRow = { ...cur, name: input.name, description: input.description ?? null, query: input.query, revision: cur.revision + 1, updated_on: iso(clock.now()), updated_by: actor.actor };
      try {
        const res = await db.updateTable('audiences').set({ name: next.name, description: next.description, query: next.query, revision: next.revision, updated_on: next.updated_on, updated_by: next.updated_by })
          .where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('revision', '=', cur.revision).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The audience was changed by another request');
      } catch (err) {
        if (isUniqueViolation(err)) throw nameTaken(input.name);
        throw err;
      }
      return withEtag(next);
    },

    async remove(apiSpaceId: string, id: string, ifMatch: string | string[] | undefined): Promise<void> {
      const cur = await row(apiSpaceId, id);
      checkIfMatch(ifMatch, withEtag(cur).etag);
      await db.deleteFrom('audiences').where('api_space_id', '=', apiSpaceId).where('id', '=', id).execute();
    },
  };
}

export type Audiences = ReturnType<typeof createAudiences>;
