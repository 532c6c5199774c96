import type { ModuleContext } from '../module.js';
import type { Uow } from '../../storage/uow.js';
import type { Executor } from '../../storage/db.js';
import { iso } from '../../lib/clock.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import { isDeadlock, isUniqueViolation } from '../../storage/dialect.js';
import { cleanInput, deletePath, documentJson, etagOf, finishData, profileIdProblem, toDocument, type ProfileData, type ProfileState } from './profiles.document.js';
import type { ProfilesRepo } from './profiles.repo.js';

export interface MergeItem {
  id: string;
  /** Cleaned custom data (see cleanInput). */
  data: ProfileData;
  mode: 'merge' | 'replace';
  deletes?: readonly string[];
}

export type ItemResult = { id: string; result: 'created' | 'updated' } | { id: string; result: 'failed'; message: string };

/**
 * State transitions shared by every write path (single requests, bulk, import, other modules):
 * new states, revision bumps, the revision-guarded write and the event for each change, all in
 * the caller's unit of work.
 */
export function createProfileWriter(ctx: ModuleContext, repo: ProfilesRepo, grew: (profiles: number) => void = () => {}) {
  const { clock } = ctx;

  // Account ids never change for a space. Read through the caller's transaction: on SQLite a
  // second connection would wait for the one the transaction holds.
  const accounts = new Map<string, number>();
  async function accountOf(apiSpaceId: string, ex: Executor = ctx.db): Promise<number> {
    let id = accounts.get(apiSpaceId);
    if (id === undefined) {
      id = (await ex.selectFrom('api_spaces').select('account_id').where('id', '=', apiSpaceId).executeTakeFirst())?.account_id ?? 0;
      accounts.set(apiSpaceId, id);
    }
    return id;
  }

  function fresh(id: string, data: ProfileData, actor: string, system = false, now = iso(clock.now())): ProfileState {
    return { id, data, optIn: null, rels: null, system, revision: 0, createdOn: now, createdBy: actor, updatedOn: now, updatedBy: actor, lastActivityOn: null, deletedOn: null, deletedBy: null };
  }

  function bump(cur: ProfileState, actor: string, change: Partial<ProfileState> = {}, now = iso(clock.now())): ProfileState {
    return { ...cur, ...change, revision: cur.revision + 1, updatedOn: now, updatedBy: actor };
  }

  async function emit(uow: Uow, apiSpaceId: string, name: string, s: ProfileState, payload?: unknown, accountId?: number): Promise<void> {
    const etag = etagOf(s);
    await ctx.events.append(uow, {
      apiSpaceId,
      accountId: accountId ?? (await accountOf(apiSpaceId, uow.tx)),
      name,
      payload: payload ?? toDocument(s),
      payloadJson: payload === undefined ? documentJson(s) : undefined,
      meta: name === 'profile.delete' ? { revision: s.revision, profileId: s.id } : { revision: s.revision, etag, profileId: s.id },
    });
  }

  /** Appends many profile events with one statement per 500. */
  async function emitMany(uow: Uow, apiSpaceId: string, list: Array<{ name: string; state: ProfileState; payload?: unknown }>, accountId?: number): Promise<void> {
    if (!list.length) return;
    const account = accountId ?? (await accountOf(apiSpaceId, uow.tx));
    await ctx.events.appendMany(uow, list.map(({ name, state, payload }) => ({
      apiSpaceId, accountId: account, name, payload: payload ?? toDocument(state), payloadJson: payload === undefined ? documentJson(state) : undefined,
      meta: name === 'profile.delete' ? { revision: state.revision, profileId: state.id } : { revision: state.revision, etag: etagOf(state), profileId: state.id },
    })));
  }

  /** Writes one changed profile (guarded by the revision of `prev`) and emits its events. */
  async function save(uow: Uow, apiSpaceId: string, prev: ProfileState, next: ProfileState, names: string[]): Promise<void> {
    if (!(await repo.updateMany(uow.tx, apiSpaceId, [{ prev, next }]))) {
      throw errors.conflict(`Profile ${next.id} was changed by another request`);
    }
    for (const n of names) await emit(uow, apiSpaceId, n, next, n === 'profile.undelete' ? { id: next.id } : undefined);
  }

  /** Inserts a new profile; false when the id already exists (any state). */
  async function insert(uow: Uow, apiSpaceId: string, s: ProfileState): Promise<boolean> {
    const existing = await repo.loadOne(uow.tx, apiSpaceId, s.id);
    if (existing) return false;
    try {
      await repo.insertMany(uow.tx, apiSpaceId, [s]);
      uow.afterCommit(() => grew(1));
    } catch (err) {
      if (isUniqueViolation(err)) throw errors.conflict(`Profile ${s.id} was created by another request`);
      throw err;
    }
    await emit(uow, apiSpaceId, 'profile.create', s);
    return true;
  }

  function applyItem(cur: ProfileData | undefined, item: MergeItem, failures: ValidationFailure[]): ProfileData {
    // Shallow: stored states are never mutated (deletePath copies what it changes).
    const next: ProfileData = Object.assign(item.mode === 'replace' || !cur ? {} : { ...cur }, item.data);
    for (const d of item.deletes ?? []) deletePath(next, d);
    return finishData(item.id, next, failures);
  }

  /** The states, results and events of `items` applied in order on top of `existing`; ids absent from it are created. */
  function applyAll(items: readonly MergeItem[], existing: ReadonlyMap<string, ProfileState>, actor: string, now: string) {
    const working = new Map<string, ProfileState>();
    const created = new Set<string>();
    const results: ItemResult[] = [];
    const events: Array<{ name: string; state: ProfileState }> = [];
    for (const item of items) {
      const cur = working.get(item.id) ?? existing.get(item.id);
      if (cur?.deletedOn) {
        results.push({ id: item.id, result: 'failed', message: 'The profile is deleted; undelete it with PUT ?undelete=true' });
        continue;
      }
      const failures: ValidationFailure[] = [];
      const data = applyItem(cur?.data, item, failures);
      if (failures.length) {
        results.push({ id: item.id, result: 'failed', message: failures.map((f) => `${f.paramName}: ${f.message}`).join('; ') });
        continue;
      }
      const next = cur ? bump(cur, actor, { data }, now) : fresh(item.id, data, actor, false, now);
      if (!cur) created.add(item.id);
      working.set(item.id, next);
      events.push({ name: cur ? 'profile.update' : 'profile.create', state: next });
      results.push({ id: item.id, result: cur ? 'updated' : 'created' });
    }
    const inserts = [...created].map((id) => working.get(id)!);
    const updates = [...working.values()].filter((s) => !created.has(s.id)).map((next) => ({ prev: existing.get(next.id)!, next }));
    return { results, events, inserts, updates };
  }

  // PostgreSQL, per space: whether the last batch created profiles only. The next one then tries
  // to insert before reading (applyMany).
  const creating = new Map<string, boolean>();

  /**
   * Applies many merge/replace items in order (ids may repeat: each is applied on top of the
   * previous), creating missing profiles. Set-based: one locked read (or none, below), batched
   * inserts, guarded updates, one event per applied item.
   *
   * On PostgreSQL, after a batch that created profiles only, the next one is first applied as if
   * none of its ids existed; when every id then makes a new profile, they are inserted without the
   * read (`insertAllNew`: one unique-index probe per id, which the insert makes anyway, instead of
   * two). An id already taken rolls that insert back and the batch goes the read-first way. So a
   * bulk load skips the read, and a batch of existing profiles is tried that way only once.
   */
  async function applyMany(uow: Uow, apiSpaceId: string, actor: string, items: MergeItem[]): Promise<ItemResult[]> {
    const accountId = await accountOf(apiSpaceId, uow.tx);
    const ids = [...new Set(items.map((i) => i.id))];
    // One timestamp for the batch (one request or import chunk, one transaction).
    const now = iso(clock.now());
    const pg = ctx.handle.dialect === 'postgres';
    let plan: ReturnType<typeof applyAll> | undefined;
    if (pg && creating.get(apiSpaceId)) {
      const asNew = applyAll(items, new Map(), actor, now);
      if (asNew.inserts.length === ids.length && (await repo.insertAllNew(uow.tx, apiSpaceId, asNew.inserts))) plan = asNew;
    }
    if (!plan) {
      plan = applyAll(items, await repo.load(uow.tx, apiSpaceId, ids, true), actor, now);
      try {
        await repo.insertMany(uow.tx, apiSpaceId, plan.inserts);
      } catch (err) {
        if (isUniqueViolation(err) || isDeadlock(err)) throw errors.conflict('Profiles were created by another request at the same time');
        throw err;
      }
    }
    const created = plan.inserts.length;
    if (created) uow.afterCommit(() => grew(created));
    if (pg) creating.set(apiSpaceId, created === ids.length);
    if (!(await repo.updateMany(uow.tx, apiSpaceId, plan.updates))) throw errors.conflict('Profiles were changed by another request at the same time');
    await emitMany(uow, apiSpaceId, plan.events, accountId);
    return plan.results;
  }

  /** Validates and cleans one raw bulk/import item. */
  function itemFrom(raw: unknown, mode: 'merge' | 'replace'): MergeItem | string {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'Each item must be an object';
    const body = raw as Record<string, unknown>;
    if (body.id === undefined || body.id === null || body.id === '') return 'id is required';
    const problem = profileIdProblem(body.id);
    if (problem) return `id: ${problem}`;
    const failures: ValidationFailure[] = [];
    const data = cleanInput(body, failures);
    if (failures.length) return failures.map((f) => `${f.paramName}: ${f.message}`).join('; ');
    return { id: body.id as string, data, mode };
  }

  return { fresh, bump, emit, emitMany, save, insert, applyItem, applyMany, itemFrom, accountOf };
}

export type ProfileWriter = ReturnType<typeof createProfileWriter>;
