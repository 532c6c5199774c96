import { sql } from 'kysely';
import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import type { Uow } from '../../storage/uow.js';
import { iso } from '../../lib/clock.js';
import { inLanes } from '../../lib/lanes.js';
import { createStatistics } from '../../storage/statistics.js';
import { phoneDigits } from '../../lib/phone.js';
import { AppError, errors, type ValidationFailure } from '../../http/errors.js';
import { checkIfMatch } from '../../http/etag.js';
import { fromJson } from '../../storage/dialect.js';
import type { ProfileDeletedHook, ProfileDevice, ProfileDirectory, ProfileDocument, ProfileRead, SessionLister } from './profiles.contract.js';
import { cleanInput, etagOf, finishData, profileIdProblem, project, stateFromRow, toDocument, type ProfileState } from './profiles.document.js';
import { createProfilesRepo, type ProfileRow } from './profiles.repo.js';
import { createProfileWriter, type ItemResult } from './profiles.writer.js';
import { fieldsOf, orderClause, whereClause, type Filter, type ParsedQuery } from './profiles.query.js';
import { schemaSummary } from './profiles.schema-summary.js';
import { createOptIn } from './profiles.optin.js';

export type { ProfileDeletedHook, SessionLister };

export interface WriteOptions {
  ifMatch?: string | string[];
}

/**
 * A bulk upsert on PostgreSQL of more than BULK_LANE_MIN valid items runs as BULK_LANES
 * transactions at once, the items split by id (`lib/lanes.ts`): most of a batch's time is spent in
 * the database server, and with one transaction this process would wait for it instead of
 * preparing the other part (1,000-profile requests 20–30 % faster on two cores, ADR 0003). Items
 * apply independently (profiles.md §4.1), so a part that loses a conflict answers `failed` for its
 * own items. SQLite has one writer: one transaction.
 */
const BULK_LANES = 2;
const BULK_LANE_MIN = 200;

const read = (s: ProfileState): ProfileRead => ({ profile: toDocument(s), etag: etagOf(s), revision: s.revision });

/** Profiles (profiles.md §1–§4, §8, §10) and the directory other modules use. */
export function createProfilesService(ctx: ModuleContext) {
  const { db, clock } = ctx;
  const repo = createProfilesRepo(ctx.handle.dialect);
  // Bulk upserts and imports grow the tables in bursts (storage/statistics.ts).
  const statistics = createStatistics(ctx.handle, ctx.log, [{ table: 'profiles', columns: ['api_space_id', 'id'] }, { table: 'profile_fields', columns: ['space_key', 'profile_id'] }]);
  const writer = createProfileWriter(ctx, repo, statistics.grew);
  const optIn = createOptIn(ctx, repo, writer);
  const deviceRemovedHooks: Array<(apiSpaceId: string, profileId: string, deviceId: string) => Promise<void>> = [];
  const deletedHooks: ProfileDeletedHook[] = [];
  let sessionLister: SessionLister | undefined;

  const inUow = <T>(uow: Uow | undefined, fn: (u: Uow) => Promise<T>): Promise<T> => (uow ? fn(uow) : ctx.transaction(fn));

  function assertWritable(actor: Actor, id: string): void {
    if (actor.kind === 'session' && actor.profileId !== id) throw errors.forbidden('A session token can only change its own profile');
  }

  function validId(id: string, paramName = 'id'): void {
    const problem = profileIdProblem(id);
    if (problem) throw errors.invalidField(paramName, problem);
  }

  async function live(ex: typeof db, apiSpaceId: string, id: string, lock = false): Promise<ProfileState> {
    const s = await repo.loadOne(ex, apiSpaceId, id, lock);
    if (!s || s.deletedOn) throw errors.notFound(`Profile ${id}`);
    return s;
  }

  async function devicesOf(apiSpaceId: string, ids: readonly string[]): Promise<Map<string, ProfileDevice[]>> {
    const out = new Map<string, ProfileDevice[]>();
    if (!ids.length) return out;
    const rows = await db.selectFrom('profile_devices').selectAll().where('api_space_id', '=', apiSpaceId).where('profile_id', 'in', ids).orderBy('created_on').execute();
    for (const r of rows) {
      const list = out.get(r.profile_id) ?? [];
      list.push(fromJson<ProfileDevice>(r.device));
      out.set(r.profile_id, list);
    }
    return out;
  }

  async function emitDevices(uow: Uow, apiSpaceId: string, profileId: string): Promise<void> {
    const rows = await uow.tx.selectFrom('profile_devices').select('device').where('api_space_id', '=', apiSpaceId).where('profile_id', '=', profileId).orderBy('created_on').execute();
    const s = await repo.loadOne(uow.tx, apiSpaceId, profileId);
    await ctx.events.append(uow, {
      apiSpaceId, accountId: await writer.accountOf(apiSpaceId, uow.tx), name: 'profile.devicesUpdated',
      payload: { id: profileId, devices: rows.map((r) => fromJson(r.device)) }, meta: { revision: s?.revision ?? 0, profileId },
    });
  }

  /** Creates or merges without an ETag check (contract `ensure`/`merge`). */
  async function upsert(apiSpaceId: string, profileId: string, fields: Record<string, unknown>, actor: string, uow: Uow | undefined, system: boolean, mergeExisting: boolean) {
    validId(profileId);
    const failures: ValidationFailure[] = [];
    const data = cleanInput(fields, failures);
    if (failures.length) throw errors.validation(failures);
    return inUow(uow, async (u) => {
      const cur = await repo.loadOne(u.tx, apiSpaceId, profileId, true);
      if (cur && (!mergeExisting || cur.deletedOn)) return { state: cur, created: false };
      if (!cur) {
        const s = writer.fresh(profileId, finishData(profileId, data, failures), actor, system);
        if (failures.length) throw errors.validation(failures);
        if (await writer.insert(u, apiSpaceId, s)) return { state: s, created: true };
        return { state: (await repo.loadOne(u.tx, apiSpaceId, profileId))!, created: false };
      }
      const next = writer.bump(cur, actor, { data: writer.applyItem(cur.data, { id: profileId, data, mode: 'merge' }, failures) });
      if (failures.length) throw errors.validation(failures);
      await writer.save(u, apiSpaceId, cur, next, ['profile.update']);
      return { state: next, created: false };
    });
  }

  const directory: ProfileDirectory = {
    async get(apiSpaceId, profileId) {
      const s = await repo.loadOne(db, apiSpaceId, profileId);
      return s && !s.deletedOn ? read(s) : undefined;
    },
    async resolveForMessaging(apiSpaceId, profileId) {
      const s = await repo.loadOne(db, apiSpaceId, profileId);
      if (!s || s.deletedOn) return undefined;
      const primaryId = s.rels?.primary;
      const primary = primaryId ? await repo.loadOne(db, apiSpaceId, primaryId) : undefined;
      return { profile: toDocument(s), ...(primary && !primary.deletedOn ? { primary: toDocument(primary) } : {}) };
    },
    async findByIdentifier(apiSpaceId, field, value) {
      let conds;
      // E-mail matches case-insensitively: the folded form is in `lv` for addresses with upper-case
      // letters and in `sv` for those already lower-case (repo `folded`).
      if (field === 'email') conds = [sql`f.lv = ${value.toLowerCase()}`, sql`f.sv = ${value.toLowerCase()} AND f.t = 's'`];
      else if (field === 'phoneNumber') conds = [sql`f.t = 's' AND f.sv = ${phoneDigits(value) ?? value}`];
      else conds = [sql`f.t = 's' AND f.sv = ${value}`];
      const sub = sql.join(conds.map((cond) => sql`SELECT f.profile_id FROM profile_fields f WHERE ${fieldsOf(apiSpaceId)} AND f.path = ${field} AND ${cond}`), sql` UNION ALL `);
      const rows = await sql<ProfileRow>`SELECT p.* FROM profiles p WHERE p.api_space_id = ${apiSpaceId} AND p.deleted_on IS NULL AND p.id IN (${sub}) ORDER BY p.created_on, p.id LIMIT 1`.execute(db);
      return rows.rows[0] ? toDocument(stateFromRow(rows.rows[0])) : undefined;
    },
    async ensure(apiSpaceId, profileId, init, actor, uow) {
      // In its own transaction, a create lost to a concurrent one (409) is read again: then the
      // profile exists, which is all `ensure` promises. In the caller's, the caller retries.
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await upsert(apiSpaceId, profileId, init, actor, uow, false, false);
          return { profile: toDocument(r.state), created: r.created };
        } catch (err) {
          if (uow || !(err instanceof AppError && err.status === 409) || attempt >= 2) throw err;
        }
      }
    },
    async ensureSystemProfile(apiSpaceId, profileId, actor) {
      await upsert(apiSpaceId, profileId, {}, actor, undefined, true, false);
    },
    async merge(apiSpaceId, profileId, fields, actor, uow) {
      return read((await upsert(apiSpaceId, profileId, fields, actor, uow, false, true)).state);
    },
    isOptedIn: optIn.isOptedIn,
    setOptIn: optIn.setOptIn,
    async touchActivity(apiSpaceId, profileId, at) {
      await repo.touch(db, apiSpaceId, profileId, iso(at ?? clock.now()));
    },
    async childrenOf(apiSpaceId, profileId) {
      const s = await repo.loadOne(db, apiSpaceId, profileId);
      return [...(s?.rels?.links ?? [])];
    },
    async devices(apiSpaceId, profileId) {
      return (await devicesOf(apiSpaceId, [profileId])).get(profileId) ?? [];
    },
    async upsertDevice(apiSpaceId, profileId, device, actor, uow) {
      void actor;
      await inUow(uow, async (uow) => {
        const prev = await uow.tx.selectFrom('profile_devices').selectAll().where('api_space_id', '=', apiSpaceId).where('profile_id', '=', profileId).where('device_id', '=', device.deviceId).executeTakeFirst();
        const createdOn = prev?.created_on ?? iso(clock.now());
        const value = JSON.stringify({ ...device, _createdOn: device._createdOn ?? createdOn });
        if (prev) await uow.tx.updateTable('profile_devices').set({ device: value }).where('api_space_id', '=', apiSpaceId).where('profile_id', '=', profileId).where('device_id', '=', device.deviceId).execute();
        else await uow.tx.insertInto('profile_devices').values({ api_space_id: apiSpaceId, profile_id: profileId, device_id: device.deviceId, device: value, created_on: createdOn }).execute();
        await emitDevices(uow, apiSpaceId, profileId);
      });
    },
    onDeviceRemoved(fn) {
      deviceRemovedHooks.push(fn);
    },
    setSessionLister(fn) {
      sessionLister = fn;
    },
    onDeleted(fn) {
      deletedHooks.push(fn);
    },
  };

  return {
    ...directory,
    repo,
    writer,
    /** Planner statistics of the profile tables (storage/statistics.ts); imports refresh them. */
    statistics,
    /** Waits for background work (a running ANALYZE) before the database closes. */
    close: () => statistics.close(),
    optIn,

    async read(actor: Actor, apiSpaceId: string, id: string, includeDeleted = false): Promise<ProfileRead> {
      const s = await repo.loadOne(db, apiSpaceId, id);
      if (!s || (s.deletedOn && (!includeDeleted || actor.kind === 'session'))) throw errors.notFound(`Profile ${id}`);
      return read(s);
    },

    async create(actor: Actor, apiSpaceId: string, body: Record<string, unknown>): Promise<ProfileRead> {
      const id = body.id === undefined || body.id === null ? ctx.ids.uuid() : body.id;
      const problem = profileIdProblem(id);
      if (problem) throw errors.invalidField('id', problem);
      const system = body._systemProfile === true && (actor.kind === 'admin' || actor.kind === 'user');
      const failures: ValidationFailure[] = [];
      const data = finishData(id as string, cleanInput(body, failures), failures);
      if (failures.length) throw errors.validation(failures);
      const s = writer.fresh(id as string, data, actor.actor, system);
      await ctx.transaction(async (uow) => {
        if (!(await writer.insert(uow, apiSpaceId, s))) {
          const existing = await repo.loadOne(uow.tx, apiSpaceId, s.id);
          throw errors.conflict(existing?.deletedOn ? `Profile ${s.id} exists but is deleted; restore it with PUT ?undelete=true` : `Profile ${s.id} already exists`, 'AlreadyExists');
        }
      });
      return read(s);
    },

    async replace(actor: Actor, apiSpaceId: string, id: string, body: Record<string, unknown> | undefined, opts: WriteOptions & { undelete?: boolean }): Promise<ProfileRead> {
      validId(id);
      assertWritable(actor, id);
      if (body !== undefined && body.id !== undefined && body.id !== id) throw errors.invalidField('id', 'Must equal the profile id in the path');
      if (body === undefined && !opts.undelete) throw errors.invalidField('body', 'A body is required');
      const failures: ValidationFailure[] = [];
      const data = body === undefined ? undefined : cleanInput(body, failures);
      if (failures.length) throw errors.validation(failures);
      return ctx.transaction(async (uow) => {
        const cur = await repo.loadOne(uow.tx, apiSpaceId, id, true);
        if (!cur || (cur.deletedOn && !opts.undelete)) throw errors.notFound(`Profile ${id}`);
        checkIfMatch(opts.ifMatch, etagOf(cur));
        const names: string[] = [];
        let next = cur;
        if (cur.deletedOn) {
          next = writer.bump(cur, actor.actor, { deletedOn: null, deletedBy: null });
          names.push('profile.undelete');
        }
        if (data !== undefined) {
          const replaced = finishData(id, data, failures);
          if (failures.length) throw errors.validation(failures);
          next = { ...(next === cur ? writer.bump(cur, actor.actor) : next), data: replaced };
          names.push('profile.update');
        }
        await writer.save(uow, apiSpaceId, cur, next, names);
        return read(next);
      });
    },

    async patch(actor: Actor, apiSpaceId: string, id: string, body: Record<string, unknown>, opts: WriteOptions & { allowCreate?: boolean; deletes?: string[] }): Promise<ProfileRead & { created: boolean }> {
      validId(id);
      assertWritable(actor, id);
      if (body.id !== undefined && body.id !== id) throw errors.invalidField('id', 'Must equal the profile id in the path');
      const failures: ValidationFailure[] = [];
      const data = cleanInput(body, failures);
      if (failures.length) throw errors.validation(failures);
      return ctx.transaction(async (uow) => {
        const cur = await repo.loadOne(uow.tx, apiSpaceId, id, true);
        if (!cur || cur.deletedOn) {
          if (!opts.allowCreate || cur) throw errors.notFound(`Profile ${id}`);
          checkIfMatch(opts.ifMatch, undefined);
          const s = writer.fresh(id, writer.applyItem(undefined, { id, data, mode: 'merge', deletes: opts.deletes }, failures), actor.actor);
          if (failures.length) throw errors.validation(failures);
          if (!(await writer.insert(uow, apiSpaceId, s))) throw errors.conflict(`Profile ${id} was created by another request`);
          return { ...read(s), created: true };
        }
        checkIfMatch(opts.ifMatch, etagOf(cur));
        const next = writer.bump(cur, actor.actor, { data: writer.applyItem(cur.data, { id, data, mode: 'merge', deletes: opts.deletes }, failures) });
        if (failures.length) throw errors.validation(failures);
        await writer.save(uow, apiSpaceId, cur, next, ['profile.update']);
        return { ...read(next), created: false };
      });
    },

    async remove(actor: Actor, apiSpaceId: string, id: string, opts: WriteOptions & { forget?: boolean }): Promise<void> {
      validId(id);
      await ctx.transaction(async (uow) => {
        const cur = await repo.loadOne(uow.tx, apiSpaceId, id, true);
        if (!cur || (cur.deletedOn && !opts.forget)) throw errors.notFound(`Profile ${id}`);
        checkIfMatch(opts.ifMatch, etagOf(cur));
        const now = iso(clock.now());
        if (opts.forget) {
          await unlinkAll(uow, apiSpaceId, cur, actor.actor);
          await repo.remove(uow.tx, apiSpaceId, id);
          await uow.tx.deleteFrom('profile_import_rows').where('profile_id', '=', id)
            .where('import_id', 'in', (eb) => eb.selectFrom('profile_imports').select('id').where('api_space_id', '=', apiSpaceId)).execute();
          await writer.emit(uow, apiSpaceId, 'profile.delete', { ...cur, revision: cur.revision + 1 }, { date: now, by: actor.actor, id, forget: true });
        } else {
          const next = writer.bump(cur, actor.actor, { deletedOn: now, deletedBy: actor.actor });
          await repo.updateMany(uow.tx, apiSpaceId, [{ prev: cur, next }]);
          await writer.emit(uow, apiSpaceId, 'profile.delete', next, { date: now, by: actor.actor, id });
        }
      });
      for (const hook of deletedHooks) await hook(apiSpaceId, id, !!opts.forget);
    },

    async bulkUpsert(actor: Actor, apiSpaceId: string, items: unknown[]): Promise<Array<ItemResult | { index: number; result: 'failed'; message: string }>> {
      const out: Array<ItemResult | { index: number; result: 'failed'; message: string } | undefined> = new Array(items.length);
      const valid: Array<{ index: number; item: Exclude<ReturnType<typeof writer.itemFrom>, string> }> = [];
      items.forEach((raw, index) => {
        const item = writer.itemFrom(raw, 'merge');
        if (typeof item === 'string') out[index] = { index, result: 'failed', message: item };
        else valid.push({ index, item });
      });
      const lanes = ctx.handle.dialect === 'postgres' ? Math.min(BULK_LANES, Math.ceil(valid.length / BULK_LANE_MIN)) : 1;
      const done = await inLanes(valid, lanes, (v) => v.item.id, (part) => ctx.transaction((uow) => writer.applyMany(uow, apiSpaceId, actor.actor, part.map((v) => v.item))), (err, part) => {
        if (!(err instanceof AppError)) throw err;
        return part.map((v): ItemResult => ({ id: v.item.id, result: 'failed', message: err.message }));
      });
      for (const { part, results } of done) part.forEach((v, i) => (out[v.index] = results[i]!));
      return out as Array<ItemResult | { index: number; result: 'failed'; message: string }>;
    },

    async bulkDelete(actor: Actor, apiSpaceId: string, ids: string[]): Promise<Array<{ id: string; result: 'deleted' | 'notFound' }>> {
      const unique = [...new Set(ids)];
      const deleted = new Set<string>();
      await ctx.transaction(async (uow) => {
        const found = await repo.load(uow.tx, apiSpaceId, unique, true);
        const now = iso(clock.now());
        const accountId = await writer.accountOf(apiSpaceId, uow.tx);
        const updates = [...found.values()].filter((s) => !s.deletedOn).map((cur) => ({ prev: cur, next: writer.bump(cur, actor.actor, { deletedOn: now, deletedBy: actor.actor }) }));
        if (!(await repo.updateMany(uow.tx, apiSpaceId, updates))) throw errors.conflict('Profiles were changed by another request at the same time');
        for (const u of updates) deleted.add(u.next.id);
        await writer.emitMany(uow, apiSpaceId, updates.map((u) => ({ name: 'profile.delete', state: u.next, payload: { date: now, by: actor.actor, id: u.next.id } })), accountId);
      });
      for (const id of deleted) for (const hook of deletedHooks) await hook(apiSpaceId, id, false);
      return ids.map((id) => ({ id, result: deleted.has(id) ? 'deleted' : 'notFound' }));
    },

    /** `GET /profiles` and audience members: the page, the total and the visible documents. */
    async query(actor: Actor | undefined, apiSpaceId: string, parsed: ParsedQuery): Promise<{ items: ProfileDocument[]; total: number }> {
      const c = parsed.controls;
      const scope = { includeDeleted: c.includeDeleted && actor?.kind !== 'session', includeSystem: c.includeSystem };
      const where = whereClause(apiSpaceId, parsed.filters, scope);
      const rows = await sql<ProfileRow>`SELECT p.* FROM profiles p WHERE ${where} ORDER BY ${orderClause(apiSpaceId, c.sort)} LIMIT ${c.limit} OFFSET ${c.skip}`.execute(db);
      // A partial page tells the total without counting (selective filters, last pages).
      const partial = rows.rows.length < c.limit && (rows.rows.length > 0 || c.skip === 0);
      const total = partial ? c.skip + rows.rows.length : Number((await sql<{ c: number }>`SELECT count(*) AS c FROM profiles p WHERE ${where}`.execute(db)).rows[0]?.c ?? 0);
      const states = rows.rows.map(stateFromRow);
      const ids = states.map((s) => s.id);
      const devices = c.includeDevices ? await devicesOf(apiSpaceId, ids) : undefined;
      const sessions = c.includeSessions ? await sessionLister?.(apiSpaceId, ids) : undefined;
      const items = states.map((s) => {
        const doc = project(toDocument(s), c.fields);
        if (devices) doc._devices = devices.get(s.id) ?? [];
        if (c.includeSessions) doc._sessions = sessions?.get(s.id) ?? [];
        return doc;
      });
      return { items, total };
    },

    async schemaSummary(apiSpaceId: string, filters: readonly Filter[]) {
      const where = whereClause(apiSpaceId, filters, {});
      const rows = await sql<{ id: string; data: unknown }>`SELECT p.id, p.data FROM profiles p WHERE ${where} ORDER BY p.updated_on DESC, p.id LIMIT 1000`.execute(db);
      return schemaSummary(rows.rows.map((r) => fromJson<Record<string, unknown>>(r.data)));
    },

    async link(actor: Actor, apiSpaceId: string, childId: string, primaryId: string, answerFor: string): Promise<ProfileRead> {
      validId(childId);
      validId(primaryId, 'linkedId');
      if (childId === primaryId) throw errors.invalidField('linkedId', 'A profile cannot be linked to itself');
      return ctx.transaction(async (uow) => {
        const child = await live(uow.tx, apiSpaceId, childId, true);
        const primary = await live(uow.tx, apiSpaceId, primaryId, true);
        if (child.rels?.links?.length) throw errors.conflict(`Profile ${childId} has linked profiles and cannot become a child`, 'InvalidState');
        if (primary.rels?.primary) throw errors.conflict(`Profile ${primaryId} is a child and cannot become a primary`, 'InvalidState');
        if (child.rels?.primary === primaryId) return read(answerFor === childId ? child : primary);
        if (child.rels?.primary) {
          const old = await repo.loadOne(uow.tx, apiSpaceId, child.rels.primary, true);
          if (old) await writer.save(uow, apiSpaceId, old, writer.bump(old, actor.actor, { rels: relsWithout(old, childId) }), ['profile.update']);
        }
        const nextChild = writer.bump(child, actor.actor, { rels: { primary: primaryId } });
        const nextPrimary = writer.bump(primary, actor.actor, { rels: { links: [...(primary.rels?.links ?? []), childId] } });
        await writer.save(uow, apiSpaceId, child, nextChild, ['profile.update']);
        await writer.save(uow, apiSpaceId, primary, nextPrimary, ['profile.update']);
        return read(answerFor === childId ? nextChild : nextPrimary);
      });
    },

    async unlink(actor: Actor, apiSpaceId: string, childId: string, primaryId: string, answerFor: string): Promise<ProfileRead> {
      validId(childId);
      validId(primaryId, 'linkedId');
      return ctx.transaction(async (uow) => {
        const child = await live(uow.tx, apiSpaceId, childId, true);
        const primary = await live(uow.tx, apiSpaceId, primaryId, true);
        if (child.rels?.primary !== primaryId) throw errors.notFound('Link');
        const nextChild = writer.bump(child, actor.actor, { rels: null });
        const nextPrimary = writer.bump(primary, actor.actor, { rels: relsWithout(primary, childId) });
        await writer.save(uow, apiSpaceId, child, nextChild, ['profile.update']);
        await writer.save(uow, apiSpaceId, primary, nextPrimary, ['profile.update']);
        return read(answerFor === childId ? nextChild : nextPrimary);
      });
    },

    async removeDevice(apiSpaceId: string, profileId: string, deviceId: string): Promise<void> {
      await ctx.transaction(async (uow) => {
        const res = await uow.tx.deleteFrom('profile_devices').where('api_space_id', '=', apiSpaceId).where('profile_id', '=', profileId).where('device_id', '=', deviceId).executeTakeFirst();
        if (Number(res.numDeletedRows) !== 1) throw errors.notFound(`Device ${deviceId}`);
        await emitDevices(uow, apiSpaceId, profileId);
      });
      for (const hook of deviceRemovedHooks) await hook(apiSpaceId, profileId, deviceId);
    },

    async pushValidation(apiSpaceId: string, ids: string[]) {
      const devices = await devicesOf(apiSpaceId, [...new Set(ids)]);
      return ids.map((id) => {
        const list = (devices.get(id) ?? []).filter((d) => d.push?.fcm || d.push?.apns);
        return {
          id,
          pushDevicesCount: list.length,
          fcm: [...new Set(list.flatMap((d) => (d.push?.fcm ? [d.push.fcm.package] : [])))],
          apns: [...new Set(list.flatMap((d) => (d.push?.apns ? [`${d.push.apns.bundleId}.${d.push.apns.environment}`] : [])))],
        };
      });
    },
  };

  function relsWithout(s: ProfileState, childId: string): ProfileState['rels'] {
    const links = (s.rels?.links ?? []).filter((x) => x !== childId);
    return links.length ? { links } : null;
  }

  /** Before a profile is forgotten: its primary and children lose the link. */
  async function unlinkAll(uow: Uow, apiSpaceId: string, s: ProfileState, actor: string): Promise<void> {
    const others = [...(s.rels?.primary ? [s.rels.primary] : []), ...(s.rels?.links ?? [])];
    for (const otherId of others) {
      const o = await repo.loadOne(uow.tx, apiSpaceId, otherId, true);
      if (!o) continue;
      const rels = o.rels?.primary === s.id ? null : relsWithout(o, s.id);
      await writer.save(uow, apiSpaceId, o, writer.bump(o, actor, { rels }), ['profile.update']);
    }
  }
}

export type ProfilesService = ReturnType<typeof createProfilesService>;
