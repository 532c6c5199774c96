/** Branch rule sets (one-api.md §3.11): stored channel orders referenced by `ruleSet`. */
import { Type, type Static } from '@sinclair/typebox';
import type { App, ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import { errors } from '../../http/errors.js';
import { errorResponses, SpaceIdParam } from '../../http/schemas.js';
import { etagFor, checkIfMatch } from '../../http/etag.js';
import { fromJson, isUniqueViolation, toJson } from '../../storage/dialect.js';
import { iso } from '../../lib/clock.js';
import { isChannelId } from './validate.js';

const ID = '^[A-Za-z0-9_-]{1,100}$';
export const RuleSetBody = Type.Object({
  id: Type.Optional(Type.String({ pattern: ID })),
  name: Type.String({ minLength: 1, maxLength: 100 }),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
  rules: Type.Array(Type.String(), { minItems: 1, maxItems: 20 }),
  fallbackOnFailure: Type.Optional(Type.Boolean()),
  fallbackAfter: Type.Optional(Type.Integer({ minimum: 30, maximum: 86_400 })),
  successStatus: Type.Optional(Type.Union([Type.Literal('sent'), Type.Literal('delivered'), Type.Literal('read')])),
});
export const RuleSet = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.Optional(Type.String()),
  rules: Type.Array(Type.String()),
  fallbackOnFailure: Type.Boolean(),
  fallbackAfter: Type.Optional(Type.Integer()),
  successStatus: Type.String(),
  _createdOn: Type.String(), _createdBy: Type.String(), _updatedOn: Type.String(), _updatedBy: Type.String(),
});
type RuleSetDoc = Static<typeof RuleSet>;
const Params = Type.Object({ apiSpaceId: SpaceIdParam, ruleSetId: Type.String() });

export interface RuleSetsService {
  list(apiSpaceId: string): Promise<RuleSetDoc[]>;
  get(apiSpaceId: string, id: string): Promise<{ doc: RuleSetDoc; etag: string } | undefined>;
  /** `ruleSet` in a send: id first, then name (case-sensitive). */
  resolve(apiSpaceId: string, idOrName: string): Promise<RuleSetDoc | undefined>;
  create(apiSpaceId: string, actor: Actor, body: Static<typeof RuleSetBody>): Promise<{ doc: RuleSetDoc; etag: string }>;
  update(apiSpaceId: string, actor: Actor, id: string, body: Static<typeof RuleSetBody>, ifMatch: (etag: string | undefined) => void): Promise<{ doc: RuleSetDoc; etag: string }>;
  remove(apiSpaceId: string, id: string, ifMatch: (etag: string | undefined) => void): Promise<void>;
}

function checkRules(rules: string[]): void {
  const bad = rules.map((r, i) => ({ r, i })).filter(({ r }) => !isChannelId(r));
  if (bad.length) throw errors.validation(bad.map(({ i }) => ({ paramName: `rules[${i}]`, message: 'Not a valid channel id' })));
}

export function createRuleSets(ctx: ModuleContext): RuleSetsService {
  const { db } = ctx;
  const load = async (apiSpaceId: string, id: string) => {
    const row = await db.selectFrom('rule_sets').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
    return row ? { doc: fromJson<RuleSetDoc>(row.doc), revision: row.revision } : undefined;
  };
  const shape = (body: Static<typeof RuleSetBody>, id: string, audit: Pick<RuleSetDoc, '_createdOn' | '_createdBy' | '_updatedOn' | '_updatedBy'>): RuleSetDoc => ({
    id, name: body.name, ...(body.description !== undefined ? { description: body.description } : {}),
    rules: [...new Set(body.rules)], fallbackOnFailure: body.fallbackOnFailure ?? false,
    ...(body.fallbackAfter !== undefined ? { fallbackAfter: body.fallbackAfter } : {}),
    successStatus: body.successStatus ?? 'delivered', ...audit,
  });
  const conflict = () => errors.conflict('A rule set with this id or name exists', 'AlreadyExists');
  return {
    async list(apiSpaceId) {
      const rows = await db.selectFrom('rule_sets').select('doc').where('api_space_id', '=', apiSpaceId).orderBy('id').limit(5000).execute();
      return rows.map((r) => fromJson<RuleSetDoc>(r.doc));
    },
    async get(apiSpaceId, id) {
      const r = await load(apiSpaceId, id);
      return r && { doc: r.doc, etag: etagFor(r.revision, r.doc) };
    },
    async resolve(apiSpaceId, idOrName) {
      const byId = await load(apiSpaceId, idOrName);
      if (byId) return byId.doc;
      const row = await db.selectFrom('rule_sets').select('doc').where('api_space_id', '=', apiSpaceId).where('name', '=', idOrName).executeTakeFirst();
      return row ? fromJson<RuleSetDoc>(row.doc) : undefined;
    },
    async create(apiSpaceId, actor, body) {
      checkRules(body.rules);
      const id = body.id ?? body.name.replace(/[^A-Za-z0-9_-]/g, '');
      if (!id) throw errors.invalidField('id', 'Cannot derive an id from name; supply id');
      const now = iso(ctx.clock.now());
      const doc = shape(body, id.slice(0, 100), { _createdOn: now, _createdBy: actor.actor, _updatedOn: now, _updatedBy: actor.actor });
      try {
        await db.insertInto('rule_sets').values({ api_space_id: apiSpaceId, id: doc.id, name: doc.name, doc: toJson(doc), revision: 0 }).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict();
        throw err;
      }
      return { doc, etag: etagFor(0, doc) };
    },
    async update(apiSpaceId, actor, id, body, ifMatch) {
      checkRules(body.rules);
      const cur = await load(apiSpaceId, id);
      ifMatch(cur ? etagFor(cur.revision, cur.doc) : undefined);
      if (!cur) throw errors.notFound('Rule set');
      const doc = shape(body, id, { _createdOn: cur.doc._createdOn, _createdBy: cur.doc._createdBy, _updatedOn: iso(ctx.clock.now()), _updatedBy: actor.actor });
      try {
        const res = await db.updateTable('rule_sets').set({ name: doc.name, doc: toJson(doc), revision: cur.revision + 1 })
          .where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('revision', '=', cur.revision).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The rule set was changed concurrently');
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict();
        throw err;
      }
      return { doc, etag: etagFor(cur.revision + 1, doc) };
    },
    async remove(apiSpaceId, id, ifMatch) {
      const cur = await load(apiSpaceId, id);
      ifMatch(cur ? etagFor(cur.revision, cur.doc) : undefined);
      if (!cur) throw errors.notFound('Rule set');
      await db.deleteFrom('rule_sets').where('api_space_id', '=', apiSpaceId).where('id', '=', id).execute();
    },
  };
}

export function ruleSetRoutes(service: RuleSetsService) {
  const tags = ['Rule sets'];
  const config = { auth: { kind: 'space' as const, permission: 'msg:branch' } };
  const base = '/apispaces/:apiSpaceId/rulesets';
  return async (app: App) => {
    app.get(base, { schema: { operationId: 'rulesets.list', tags, params: Type.Object({ apiSpaceId: SpaceIdParam }), response: { 200: Type.Array(RuleSet), ...errorResponses(404) } }, config },
      async (request) => service.list(request.space.id));
    app.post(base, { schema: { operationId: 'rulesets.create', tags, params: Type.Object({ apiSpaceId: SpaceIdParam }), body: RuleSetBody, response: { 201: RuleSet, ...errorResponses(404, 409) } }, config },
      async (request, reply) => {
        const { doc, etag } = await service.create(request.space.id, request.actor, request.body);
        return reply.code(201).header('ETag', etag).header('Last-Modified', doc._updatedOn).header('Location', `/apispaces/${request.space.id}/rulesets/${doc.id}`).send(doc);
      });
    app.get(`${base}/:ruleSetId`, { schema: { operationId: 'rulesets.get', tags, params: Params, response: { 200: RuleSet, ...errorResponses(404) } }, config },
      async (request, reply) => {
        const found = await service.get(request.space.id, request.params.ruleSetId);
        if (!found) throw errors.notFound('Rule set');
        return reply.header('ETag', found.etag).header('Last-Modified', found.doc._updatedOn).send(found.doc);
      });
    app.put(`${base}/:ruleSetId`, { schema: { operationId: 'rulesets.update', tags, params: Params, body: RuleSetBody, response: { 200: RuleSet, ...errorResponses(404, 409, 412) } }, config },
      async (request, reply) => {
        const { doc, etag } = await service.update(request.space.id, request.actor, request.params.ruleSetId, request.body, (cur) => checkIfMatch(request.headers['if-match'], cur));
        return reply.header('ETag', etag).header('Last-Modified', doc._updatedOn).send(doc);
      });
    app.delete(`${base}/:ruleSetId`, { schema: { operationId: 'rulesets.delete', tags, params: Params, response: { 204: Type.Null(), ...errorResponses(404, 412) } }, config },
      async (request, reply) => {
        await service.remove(request.space.id, request.params.ruleSetId, (cur) => checkIfMatch(request.headers['if-match'], cur));
        return reply.code(204).send(null);
      });
  };
}
