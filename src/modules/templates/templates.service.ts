/** Templates (one-api.md §3.10): CRUD with ETags and soft delete. */
import type { Actor } from '../../auth/actor.js';
import type { Platform } from '../../platform.js';
import type { Db, Tx } from '../../storage/db.js';
import { fromJson, isUniqueViolation, toJson } from '../../storage/dialect.js';
import { iso } from '../../lib/clock.js';
import { checkIfMatch, etagFor } from '../../http/etag.js';
import { AppError, errors, type ValidationFailure } from '../../http/errors.js';
import type { TemplatePart, TemplateView, TemplatesApi } from './templates.contract.js';
import { checkPart } from '../../lib/message-parts.js';

interface TemplateRow {
  api_space_id: string;
  id: string;
  name: string;
  description: string | null;
  message_parts: unknown;
  revision: number;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
  deleted_on: string | null;
  deleted_by: string | null;
}

declare module '../../storage/schema.js' {
  interface Database {
    templates: TemplateRow;
  }
}

export interface TemplateInput {
  id?: string;
  name: string;
  description?: string;
  messageParts: TemplatePart[];
}

/** Drops client-written `_` properties (conventions.md §7.1) from parts. */
const cleanParts = (parts: TemplatePart[]): TemplatePart[] => parts.map((p) => Object.fromEntries(Object.entries(p).filter(([k]) => !k.startsWith('_'))) as TemplatePart);

/** The part rules of a send (one-api.md §2.4.2): a template's parts become a send's parts. */
function partProblems(parts: TemplatePart[]): ValidationFailure[] {
  const out: ValidationFailure[] = [];
  parts.forEach((p, i) => checkPart(p, `messageParts[${i}]`, (paramName, message) => out.push({ paramName, message })));
  return out;
}

const view = (r: TemplateRow, withDeleted = false): TemplateView => ({
  id: r.id, name: r.name, ...(r.description !== null ? { description: r.description } : {}),
  messageParts: fromJson<TemplatePart[]>(r.message_parts),
  _createdOn: r.created_on, _createdBy: r.created_by, _updatedOn: r.updated_on, _updatedBy: r.updated_by,
  ...(withDeleted && r.deleted_on ? { _deleted: true, _deletedOn: r.deleted_on, _deletedBy: r.deleted_by ?? '' } : {}),
});
const etagOf = (r: TemplateRow) => etagFor(r.revision, view(r));

const LIST_CAP = 5000;

export type TemplatesService = ReturnType<typeof createTemplatesService>;

export function createTemplatesService(p: Platform) {
  const { db, clock } = p;
  const load = (ex: Db | Tx, apiSpaceId: string, id: string) =>
    ex.selectFrom('templates').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
  const result = (r: TemplateRow) => ({ template: view(r), etag: etagOf(r) });

  const service = {
    async get(apiSpaceId: string, id: string): Promise<TemplateView | undefined> {
      const row = await load(db, apiSpaceId, id);
      return row && !row.deleted_on ? view(row) : undefined;
    },

    /** Unpaged list (conventions.md §9.1): the newest 5000, oldest first; `total` counts them all. */
    async list(apiSpaceId: string, includeDeleted: boolean): Promise<{ items: TemplateView[]; total: number }> {
      let q = db.selectFrom('templates').where('api_space_id', '=', apiSpaceId);
      if (!includeDeleted) q = q.where('deleted_on', 'is', null);
      const rows = await q.selectAll().orderBy('created_on', 'desc').orderBy('id').limit(LIST_CAP).execute();
      const total = rows.length < LIST_CAP ? rows.length : Number((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      return { items: rows.reverse().map((r) => view(r, includeDeleted)), total };
    },

    async read(apiSpaceId: string, id: string, includeDeleted: boolean) {
      const row = await load(db, apiSpaceId, id);
      if (!row || (row.deleted_on && !includeDeleted)) throw errors.notFound('Template');
      return { template: view(row, includeDeleted), etag: etagOf(row) };
    },

    async create(actor: Actor, apiSpaceId: string, input: TemplateInput) {
      const id = input.id ?? input.name.replace(/[^A-Za-z0-9_-]/g, '');
      if (!id) throw errors.invalidField('id', 'The name has no letters, digits, - or _ to derive an id from; supply an id');
      if (id.length > 100) throw errors.invalidField('id', 'The id derived from the name is longer than 100 characters; supply an id');
      const problems = partProblems(input.messageParts);
      if (problems.length) throw errors.validation(problems);
      const now = iso(clock.now());
      const base = {
        name: input.name, description: input.description ?? null, message_parts: toJson(cleanParts(input.messageParts)),
        created_on: now, created_by: actor.actor, updated_on: now, updated_by: actor.actor, deleted_on: null, deleted_by: null,
      };
      return p.transaction(async ({ tx }) => {
        const existing = await load(tx, apiSpaceId, id);
        if (existing && !existing.deleted_on) throw errors.conflict(`A template with id "${id}" already exists`, 'AlreadyExists');
        if (existing) {
          // Re-creating a deleted template's id replaces it; the revision keeps counting so old ETags never match.
          const revision = existing.revision + 1;
          await tx.updateTable('templates').set({ ...base, revision }).where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('revision', '=', existing.revision).execute();
          return result({ ...existing, ...base, revision });
        }
        const row: TemplateRow = { api_space_id: apiSpaceId, id, revision: 1, ...base };
        try {
          await tx.insertInto('templates').values(row).execute();
        } catch (err) {
          if (isUniqueViolation(err)) throw errors.conflict(`A template with id "${id}" already exists`, 'AlreadyExists');
          throw err;
        }
        return result(row);
      });
    },

    async update(actor: Actor, apiSpaceId: string, id: string, input: Omit<TemplateInput, 'id'>, ifMatch: string | string[] | undefined) {
      const problems = partProblems(input.messageParts);
      if (problems.length) throw errors.validation(problems);
      return p.transaction(async ({ tx }) => {
        const row = await load(tx, apiSpaceId, id);
        if (!row || row.deleted_on) throw errors.notFound('Template');
        checkIfMatch(ifMatch, etagOf(row));
        const next: TemplateRow = {
          ...row, name: input.name, description: input.description ?? null, message_parts: toJson(cleanParts(input.messageParts)),
          revision: row.revision + 1, updated_on: iso(clock.now()), updated_by: actor.actor,
        };
        const res = await tx.updateTable('templates')
          .set({ name: next.name, description: next.description, message_parts: next.message_parts, revision: next.revision, updated_on: next.updated_on, updated_by: next.updated_by })
          .where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('revision', '=', row.revision).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The template was changed concurrently');
        return result(next);
      });
    },

    /** Retention (spaces-and-billing.md §5): hard-deletes templates deleted longer ago than `deletedProfilesDays`. */
    async purgeDeleted(now: number, retentionDays: (apiSpaceId: string) => Promise<number | null>): Promise<number> {
      let removed = 0;
      const spaces = await db.selectFrom('templates').select('api_space_id').distinct().where('deleted_on', 'is not', null).execute();
      for (const { api_space_id: space } of spaces) {
        const days = await retentionDays(space);
        if (days === null) continue;
        const res = await db.deleteFrom('templates').where('api_space_id', '=', space).where('deleted_on', '<', iso(now - days * 86_400_000)).executeTakeFirst();
        removed += Number(res.numDeletedRows);
      }
      return removed;
    },

    async remove(actor: Actor, apiSpaceId: string, id: string, ifMatch: string | string[] | undefined): Promise<void> {
      await p.transaction(async ({ tx }) => {
        const row = await load(tx, apiSpaceId, id);
        if (!row || row.deleted_on) throw errors.notFound('Template');
        checkIfMatch(ifMatch, etagOf(row));
        const res = await tx.updateTable('templates').set({ deleted_on: iso(clock.now()), deleted_by: actor.actor, revision: row.revision + 1 })
          .where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('revision', '=', row.revision).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw new AppError(409, 'Conflict', 'The template was changed concurrently');
      });
    },
  };
  return service satisfies TemplatesApi;
}
