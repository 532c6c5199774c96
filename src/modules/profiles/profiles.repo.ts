import { isDeepStrictEqual } from 'node:util';
import { CompiledQuery, sql, type Generated } from 'kysely';
import type { DialectName, Executor, Tx } from '../../storage/db.js';
import { isDeadlock, isUniqueViolation, toJson } from '../../storage/dialect.js';
import { insertText, pgArray, unnestFrom, unnestInsert } from '../../storage/raw.js';
import { dataJson, etagOf, stateFromRow, type ProfileState } from './profiles.document.js';

export interface ProfileRow {
  api_space_id: string;
  id: string;
  data: unknown;
  opt_in: unknown;
  rels: unknown;
  system: number;
  revision: number;
  etag: string;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
  last_activity_on: string | null;
  deleted_on: string | null;
  deleted_by: string | null;
}

export interface ProfileFieldRow {
  /** The space's key in `profile_space_keys`. */
  space_key: number;
  profile_id: string;
  /** Position in the profile's flattened values (primary key with the profile). */
  seq: number;
  path: string;
  t: string;
  sv: string | null;
  lv: string | null;
  nv: number | null;
}

export interface ProfileSpaceKeyRow {
  space_key: Generated<number>;
  api_space_id: string;
}

export interface ProfileDeviceRow {
  api_space_id: string;
  profile_id: string;
  device_id: string;
  device: unknown;
  created_on: string;
}

export interface AudienceRow {
  api_space_id: string;
  id: string;
  name: string;
  description: string | null;
  query: string;
  revision: number;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
}

export interface ProfileImportRow {
  api_space_id: string;
  id: string;
  status: string;
  mode: string;
  filename: string | null;
  row_count: number;
  valid_row_count: number;
  invalid_rows: unknown;
  duplicates: unknown;
  duplicate_count: number;
  existing_count: number;
  processed_count: number;
  created_count: number;
  updated_count: number;
  failed_count: number;
  cursor: number;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
  completed_on: string | null;
}

export interface ProfileImportDataRow {
  import_id: string;
  row_no: number;
  profile_id: string;
  data: unknown;
}

declare module '../../storage/schema.js' {
  interface Database {
    profiles: ProfileRow;
    profile_fields: ProfileFieldRow;
    profile_space_keys: ProfileSpaceKeyRow;
    profile_devices: ProfileDeviceRow;
    audiences: AudienceRow;
    profile_imports: ProfileImportRow;
    profile_import_rows: ProfileImportDataRow;
  }
}

type FieldValue = Omit<ProfileFieldRow, 'space_key' | 'profile_id' | 'seq'>;

/**
 * The case-folded form of a string, or null when folding does not change it: `lv` is stored only
 * for strings with upper-case letters, and case-insensitive operators read `sv` for the others
 * (docs/adr/0003-profile-storage.md, "lv only when it differs"). Most indexed strings (e-mail
 * addresses, ids, codes, tiers) are already lower-case, so this keeps them out of the `lv` index.
 */
export function folded(v: string): string | null {
  const lower = v.toLowerCase();
  return lower === v ? null : lower;
}

type FieldSink = (path: string, t: string, sv: string | null, lv: string | null, nv: number | null) => void;

/**
 * Emits the rows of one value; returns how many. Objects and arrays get a row (`o`/`a`) only when
 * nothing below them has one (empty ones): a non-empty container is found through its children's
 * paths (query.ts, "exists").
 */
function visitValue(path: string, v: unknown, emit: FieldSink): number {
  if (v === null) emit(path, 'z', null, null, null);
  else if (typeof v === 'string') emit(path, 's', v, folded(v), null);
  else if (typeof v === 'number') emit(path, 'n', null, null, v);
  else if (typeof v === 'boolean') emit(path, 'b', v ? 'true' : 'false', null, null);
  else if (Array.isArray(v)) {
    let n = 0;
    for (const e of v) {
      if (Array.isArray(e)) {
        emit(path, 'a', null, null, null);
        n++;
      } else n += visitValue(path, e, emit);
    }
    if (n === 0) emit(path, 'a', null, null, null);
    return n || 1;
  } else if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    let n = 0;
    for (const k of Object.keys(o)) n += visitValue(`${path}.${k}`, o[k], emit);
    if (n === 0) emit(path, 'o', null, null, null);
    return n || 1;
  } else return 0;
  return 1;
}

/**
 * Calls `emit` for every index row of a document: every path that exists gets a row, and array
 * elements are indexed under the array's own path (a filter on an array matches any element, as
 * in MongoDB). Containers get a row only when empty: "exists" also looks under `path.`, a range
 * in byte order (`path` is BINARY on SQLite and COLLATE "C" on PostgreSQL — query.ts). No
 * intermediate objects: bulk writes push straight into their parameter arrays.
 */
export function visitFields(id: string, data: Record<string, unknown>, emit: FieldSink): void {
  // The id itself is the primary key of `profiles`, which filters on `id` read; the index only
  // needs its case-folded form, for ids with upper-case letters (query.ts `idSubqueries`).
  const lv = folded(id);
  if (lv !== null) emit('id', 's', id, lv, null);
  for (const k of Object.keys(data)) visitValue(k, data[k], emit);
}

/** The index rows of a document as objects (see visitFields). */
export function flatten(id: string, data: Record<string, unknown>): FieldValue[] {
  const out: FieldValue[] = [];
  visitFields(id, data, (path, t, sv, lv, nv) => out.push({ path, t, sv, lv, nv }));
  return out;
}

const isFilledObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0;

/**
 * The index rows that change when the value at `path` goes from `a` to `b` (undefined: absent):
 * the paths whose rows go (each with every path under it) and, through `emit`, the rows to add.
 * Two non-empty objects are compared member by member (neither has a row of its own, see
 * visitValue); any other change replaces the path's rows whole.
 */
function diffValue(path: string, a: unknown, b: unknown, drop: string[], emit: FieldSink): void {
  if (a === b) return;
  if (a === undefined) {
    visitValue(path, b, emit);
    return;
  }
  if (b === undefined) {
    drop.push(path);
    return;
  }
  if (isFilledObject(a) && isFilledObject(b)) {
    diffMembers(path, a, b, drop, emit);
    return;
  }
  if (isDeepStrictEqual(a, b)) return;
  drop.push(path);
  visitValue(path, b, emit);
}

/**
 * The index rows a document change makes stale and new (see visitFields), from the members of
 * `a` and `b` under `prefix` (the documents' top level when undefined): comparing the two
 * documents, not reading the stored rows, so a merge that changes one field reads nothing and
 * writes that field's rows only. The id never changes, nor its row.
 */
function diffMembers(prefix: string | undefined, a: Record<string, unknown>, b: Record<string, unknown>, drop: string[], emit: FieldSink): void {
  const at = (k: string) => (prefix === undefined ? k : `${prefix}.${k}`);
  for (const k of Object.keys(a)) diffValue(at(k), a[k], b[k], drop, emit);
  for (const k of Object.keys(b)) if (!(k in a)) visitValue(at(k), b[k], emit);
}

const PROFILE_CHUNK = 500;

const PROFILE_COLUMNS = ['api_space_id', 'id', 'data', 'opt_in', 'rels', 'system', 'revision', 'etag', 'created_on', 'created_by', 'updated_on', 'updated_by', 'last_activity_on', 'deleted_on', 'deleted_by'] as const;
const UPDATE_COLUMNS = ['data', 'opt_in', 'rels', 'system', 'revision', 'etag', 'updated_on', 'updated_by', 'deleted_on', 'deleted_by'] as const;
/** PostgreSQL types of the VALUES columns (id, previous revision, then UPDATE_COLUMNS). */
const UPDATE_CASTS = ['::text', '::integer', '::jsonb', '::jsonb', '::jsonb', '::integer', '::integer', '::text', '::text', '::text', '::text', '::text'];
const FIELD_COLUMNS = ['space_key', 'profile_id', 'seq', 'path', 't', 'sv', 'lv', 'nv'] as const;
/** PostgreSQL element types of the profile columns sent as arrays, other than text (JSON travels as text). */
const PG_ARRAY_TYPES: Record<string, string> = { system: 'integer', revision: 'integer', prev_revision: 'integer' };
/** A batched update's rows: the key, the revision read, then the columns written. */
const UPDATE_KEYED = ['id', 'prev_revision', ...UPDATE_COLUMNS] as const;
const JSON_COLUMNS = new Set(['data', 'opt_in', 'rels']);

/**
 * Rows per multi-row INSERT on SQLite. Fixed sizes, so each full chunk is the same SQL text: the
 * connection's statement cache prepares it once and later chunks only bind and run (a remainder
 * chunk is one more cached text per size). Kept well under SQLite's 32,766 variables.
 */
const SQLITE_FIELD_ROWS = 500;
const SQLITE_PROFILE_ROWS = 100;

/**
 * Multi-row INSERTs compiled by hand on SQLite (the query builder's per-value work dominated bulk
 * writes): callers push each row's values with `add` and the batch runs a statement whenever
 * `rowsPer` rows are pending; `end` runs the remainder.
 */
function sqliteInserter(ex: Executor, table: string, columns: readonly string[], rowsPer: number) {
  const width = columns.length;
  let params: unknown[] = [];
  const run = async (rows: number) => {
    const p = params;
    params = [];
    await ex.executeQuery(CompiledQuery.raw(insertText('sqlite', table, columns, rows), p));
  };
  return {
    params: () => params,
    /** Call after pushing one row's values onto `params()`. */
    full: () => params.length === rowsPer * width,
    flush: () => run(rowsPer),
    end: async () => {
      if (params.length) await run(params.length / width);
    },
  };
}

export function toRow(apiSpaceId: string, s: ProfileState): ProfileRow {
  return {
    api_space_id: apiSpaceId,
    id: s.id,
    data: dataJson(s.data),
    opt_in: s.optIn ? toJson(s.optIn) : null,
    rels: s.rels ? toJson(s.rels) : null,
    system: s.system ? 1 : 0,
    revision: s.revision,
    etag: etagOf(s),
    created_on: s.createdOn,
    created_by: s.createdBy,
    updated_on: s.updatedOn,
    updated_by: s.updatedBy,
    last_activity_on: s.lastActivityOn,
    deleted_on: s.deletedOn,
    deleted_by: s.deletedBy,
  };
}

export function createProfilesRepo(dialect: DialectName) {
  const forUpdate = dialect === 'postgres';

  // A space's key never changes once committed, so it is cached; a key this process allocated in
  // a transaction that has not committed yet is not (a rollback would take it back). The index
  // rows of a space reference its key; queries read it through a subquery (query.ts `fieldsOf`).
  const keys = new Map<string, number>();
  const allocated = new WeakMap<Executor, Set<string>>();
  async function spaceKey(ex: Executor, apiSpaceId: string, create: true): Promise<number>;
  async function spaceKey(ex: Executor, apiSpaceId: string, create: false): Promise<number | undefined>;
  async function spaceKey(ex: Executor, apiSpaceId: string, create: boolean): Promise<number | undefined> {
    const hit = keys.get(apiSpaceId);
    if (hit !== undefined) return hit;
    const find = async () => (await ex.selectFrom('profile_space_keys').select('space_key').where('api_space_id', '=', apiSpaceId).executeTakeFirst())?.space_key;
    let key = await find();
    if (key !== undefined) {
      if (!allocated.get(ex)?.has(apiSpaceId)) keys.set(apiSpaceId, key);
      return key;
    }
    if (!create) return undefined;
    // Concurrent first writes to a space: PostgreSQL makes the second wait for the first's commit
    // and skip; SQLite runs one write transaction at a time.
    await ex.insertInto('profile_space_keys').values({ api_space_id: apiSpaceId }).onConflict((oc) => oc.column('api_space_id').doNothing()).execute();
    key = await find();
    if (key === undefined) throw new Error(`No key for space ${apiSpaceId}`);
    let mine = allocated.get(ex);
    if (!mine) allocated.set(ex, (mine = new Set()));
    mine.add(apiSpaceId);
    return key;
  }

  /**
   * Before writing the new rows of changed profiles: deletes the rows of the paths that changed
   * (diffMembers) and returns the rows to insert, numbered in the positions freed or after the
   * highest `seq` the profile still holds. Rows an earlier version wrote for a path (a non-empty
   * container's own row, an `id` row) match queries as the current ones do, and go when the value
   * at their path is replaced or removed.
   */
  async function changedRows(tx: Executor, spaceKey: number, changes: ReadonlyArray<{ prev: ProfileState; next: ProfileState }>): Promise<Map<string, Array<FieldValue & { seq: number }>>> {
    const dropIds: string[] = [];
    const dropPaths: string[] = [];
    const adds = new Map<string, FieldValue[]>();
    const drop: string[] = [];
    for (const { prev, next } of changes) {
      const add: FieldValue[] = [];
      drop.length = 0;
      diffMembers(undefined, prev.data, next.data, drop, (path, t, sv, lv, nv) => add.push({ path, t, sv, lv, nv }));
      for (const path of drop) {
        dropIds.push(next.id);
        dropPaths.push(path);
      }
      if (add.length) adds.set(next.id, add);
    }
    // A path's rows and those under it: `path.` up to `path/`, a range in byte order (query.ts).
    // The positions freed are read back: new rows of the same profile take them first.
    const freed = new Map<string, number[]>();
    const collectFreed = (rows: Array<{ profile_id: string; seq: number }>) => {
      for (const r of rows) {
        const list = freed.get(r.profile_id);
        if (list) list.push(r.seq);
        else freed.set(r.profile_id, [r.seq]);
      }
    };
    if (dialect === 'postgres') {
      if (dropIds.length) {
        collectFreed((await tx.executeQuery<{ profile_id: string; seq: number }>(CompiledQuery.raw(
          // `profile_id = ANY($4)` bounds the scan by the batch (see updateMany).
          `DELETE FROM profile_fields f USING unnest($2::text[], $3::text[]) AS d(profile_id, path) WHERE f.space_key = $1 AND f.profile_id = ANY($4::text[]) AND f.profile_id = d.profile_id AND (f.path = d.path OR (f.path >= d.path || '.' AND f.path < d.path || '/')) RETURNING f.profile_id, f.seq`,
          [spaceKey, pgArray(dropIds), pgArray(dropPaths), pgArray([...new Set(dropIds)])],
        ))).rows);
      }
    } else {
      for (let i = 0; i < dropIds.length; i++) {
        const path = dropPaths[i]!;
        collectFreed((await tx.executeQuery<{ profile_id: string; seq: number }>(CompiledQuery.raw('DELETE FROM profile_fields WHERE space_key = ? AND profile_id = ? AND (path = ? OR (path >= ? AND path < ?)) RETURNING profile_id, seq', [spaceKey, dropIds[i], path, `${path}.`, `${path}/`]))).rows);
      }
    }
    // New rows take the freed positions; a profile with more new rows than that numbers them all
    // after its highest remaining row, written as -1, -2 …: the INSERT resolves
    // them on PostgreSQL, a read per 500 profiles does on SQLite.
    const inserts = new Map<string, Array<FieldValue & { seq: number }>>();
    const after: string[] = [];
    // Member by member, not `{ ...r, seq }` (see events/log.ts on spreads followed by new keys).
    const at = (r: FieldValue, seq: number) => ({ path: r.path, t: r.t, sv: r.sv, lv: r.lv, nv: r.nv, seq });
    for (const [id, add] of adds) {
      const free = freed.get(id) ?? [];
      if (add.length <= free.length) inserts.set(id, add.map((r, i) => at(r, free[i]!)));
      else {
        inserts.set(id, add.map((r, i) => at(r, -1 - i)));
        after.push(id);
      }
    }
    if (dialect === 'sqlite') {
      for (let i = 0; i < after.length; i += PROFILE_CHUNK) {
        const part = after.slice(i, i + PROFILE_CHUNK);
        const highest = await tx.executeQuery<{ profile_id: string; m: number }>(CompiledQuery.raw(
          `SELECT profile_id, max(seq) AS m FROM profile_fields WHERE space_key = ? AND profile_id IN (${part.map(() => '?').join(',')}) GROUP BY profile_id`, [spaceKey, ...part],
        ));
        const top = new Map(highest.rows.map((r) => [r.profile_id, r.m]));
        for (const id of part) for (const r of inserts.get(id)!) r.seq = (top.get(id) ?? -1) - r.seq;
      }
    }
    return inserts;
  }

  type RowSink = (seq: number, path: string, t: string, sv: string | null, lv: string | null, nv: number | null) => void;

  /** Index rows of new profiles (they have none yet). */
  async function indexNew(tx: Executor, apiSpaceId: string, states: readonly ProfileState[]): Promise<void> {
    if (!states.length) return;
    await insertRows(tx, await spaceKey(tx, apiSpaceId, true), states, (s, push) => {
      let seq = 0;
      visitFields(s.id, s.data, (path, t, sv, lv, nv) => push(seq++, path, t, sv, lv, nv));
    });
  }

  /** Index rows of existing profiles: those that changed between two versions (changedRows). */
  async function indexChanges(tx: Executor, apiSpaceId: string, changes: ReadonlyArray<{ prev: ProfileState; next: ProfileState }>): Promise<void> {
    const changed = changes.filter((c) => c.prev.data !== c.next.data);
    if (!changed.length) return;
    const key = await spaceKey(tx, apiSpaceId, true);
    const rows = await changedRows(tx, key, changed);
    await insertRows(tx, key, changed.map((c) => c.next).filter((s) => rows.has(s.id)), (s, push) => {
      for (const r of rows.get(s.id)!) push(r.seq, r.path, r.t, r.sv, r.lv, r.nv);
    });
  }

  /** Inserts the index rows `rowsOf` gives for each of `states`. */
  async function insertRows(tx: Executor, key: number, states: readonly ProfileState[], rowsOf: (s: ProfileState, push: RowSink) => void): Promise<void> {
    if (!states.length) return;
    if (dialect === 'postgres') {
      // One INSERT … SELECT FROM unnest(arrays) per 50k rows: 7 array parameters instead of 8 per
      // row, so PostgreSQL parses and plans a short statement instead of a 28k-parameter VALUES list.
      const cols: unknown[][] = [[], [], [], [], [], [], []];
      const flush = async () => {
        if (!cols[0]!.length) return;
        await tx.executeQuery(CompiledQuery.raw(
          // A negative seq counts from the profile's highest row (changedRows); the subquery reads
          // the rows as they were before this statement.
          `INSERT INTO profile_fields (space_key,profile_id,seq,path,t,sv,lv,nv) SELECT $1, d.profile_id, CASE WHEN d.seq >= 0 THEN d.seq ELSE COALESCE((SELECT max(f.seq) FROM profile_fields f WHERE f.space_key = $1 AND f.profile_id = d.profile_id), -1) - d.seq END, d.path, d.t, d.sv, d.lv, d.nv FROM unnest($2::text[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[]) AS d(profile_id, seq, path, t, sv, lv, nv)`,
          [key, ...cols.map(pgArray)],
        ));
        for (const c of cols) c.length = 0;
      };
      const [ids, seqs, paths, ts, svs, lvs, nvs] = cols as [unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[]];
      let id = '';
      const push: RowSink = (seq, path, t, sv, lv, nv) => {
        ids.push(id); seqs.push(seq); paths.push(path); ts.push(t); svs.push(sv); lvs.push(lv); nvs.push(nv);
      };
      for (const s of states) {
        id = s.id;
        rowsOf(s, push);
        if (ids.length >= 50_000) await flush();
      }
      await flush();
      return;
    }
    const ins = sqliteInserter(tx, 'profile_fields', FIELD_COLUMNS, SQLITE_FIELD_ROWS);
    // Rows are collected per profile and moved into statements between profiles (the row
    // producers are synchronous).
    let id = '';
    const pending: unknown[] = [];
    const push: RowSink = (seq, path, t, sv, lv, nv) => {
      pending.push(key, id, seq, path, t, sv, lv, nv);
    };
    for (const s of states) {
      id = s.id;
      pending.length = 0;
      rowsOf(s, push);
      for (let k = 0; k < pending.length; k += 8) {
        const params = ins.params();
        for (let c = 0; c < 8; c++) params.push(pending[k + c]);
        if (ins.full()) await ins.flush();
      }
    }
    await ins.end();
  }

  /** Inserts new profiles and their index rows. */
  async function insertMany(tx: Tx, apiSpaceId: string, states: ProfileState[]): Promise<void> {
    if (dialect === 'postgres') {
      // Column arrays through unnest (see insertRows): one short statement per batch.
      if (states.length) {
        const rows = states.map((s) => toRow(apiSpaceId, s));
        await tx.executeQuery(unnestInsert('profiles', PROFILE_COLUMNS, rows, { types: PG_ARRAY_TYPES, json: JSON_COLUMNS }));
      }
      await indexNew(tx, apiSpaceId, states);
      return;
    }
    const ins = sqliteInserter(tx, 'profiles', PROFILE_COLUMNS, SQLITE_PROFILE_ROWS);
    for (const s of states) {
      ins.params().push(
        apiSpaceId, s.id, dataJson(s.data), s.optIn ? toJson(s.optIn) : null, s.rels ? toJson(s.rels) : null, s.system ? 1 : 0, s.revision, etagOf(s),
        s.createdOn, s.createdBy, s.updatedOn, s.updatedBy, s.lastActivityOn, s.deletedOn, s.deletedBy,
      );
      if (ins.full()) await ins.flush();
    }
    await ins.end();
    await indexNew(tx, apiSpaceId, states);
  }

  return {
    /** Rows by id (locked for update on PostgreSQL when `lock`). */
    async load(ex: Executor, apiSpaceId: string, ids: readonly string[], lock = false): Promise<Map<string, ProfileState>> {
      const out = new Map<string, ProfileState>();
      if (dialect === 'postgres') {
        // One array parameter instead of an IN list of hundreds: PostgreSQL parses and plans a
        // short statement (the IN form cost ~12 ms per 500 ids).
        if (!ids.length) return out;
        const res = await ex.executeQuery<ProfileRow>(CompiledQuery.raw(
          `SELECT * FROM profiles WHERE api_space_id = $1 AND id = ANY($2::text[])${lock ? ' FOR UPDATE' : ''}`,
          [apiSpaceId, pgArray(ids)],
        ));
        for (const r of res.rows) out.set(r.id, stateFromRow(r));
        return out;
      }
      for (let i = 0; i < ids.length; i += PROFILE_CHUNK) {
        let q = ex.selectFrom('profiles').selectAll().where('api_space_id', '=', apiSpaceId).where('id', 'in', ids.slice(i, i + PROFILE_CHUNK));
        if (lock && forUpdate) q = q.forUpdate();
        for (const r of await q.execute()) out.set(r.id, stateFromRow(r));
      }
      return out;
    },

    async loadOne(ex: Executor, apiSpaceId: string, id: string, lock = false): Promise<ProfileState | undefined> {
      let q = ex.selectFrom('profiles').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id);
      if (lock && forUpdate) q = q.forUpdate();
      const r = await q.executeTakeFirst();
      return r ? stateFromRow(r) : undefined;
    },

    insertMany,

    /**
     * PostgreSQL only: inserts `states` (distinct ids) as `insertMany` does when none of the ids
     * is taken, and answers true; answers false, having written nothing, when one is (by a
     * committed row, or by another transaction's insert that this one waits for and that commits)
     * or when inserting them deadlocked with another transaction inserting some of them in another
     * order. The insert runs under a savepoint, rolled back then so that the transaction goes on
     * (and the other one with it). Lets a batch of new profiles skip the locked read of its ids
     * (the writer's `applyMany`).
     */
    async insertAllNew(tx: Tx, apiSpaceId: string, states: ProfileState[]): Promise<boolean> {
      if (dialect !== 'postgres') throw new Error('insertAllNew is PostgreSQL only');
      await tx.executeQuery(CompiledQuery.raw('SAVEPOINT profiles_new'));
      try {
        await insertMany(tx, apiSpaceId, states);
      } catch (err) {
        if (!isUniqueViolation(err) && !isDeadlock(err)) throw err;
        await tx.executeQuery(CompiledQuery.raw('ROLLBACK TO SAVEPOINT profiles_new'));
        await tx.executeQuery(CompiledQuery.raw('RELEASE SAVEPOINT profiles_new'));
        return false;
      }
      await tx.executeQuery(CompiledQuery.raw('RELEASE SAVEPOINT profiles_new'));
      return true;
    },

    /**
     * Writes new versions of existing profiles: each update is guarded by the revision of `prev`,
     * the version it was made from; a lost race answers false (the caller turns it into 409).
     */
    async updateMany(tx: Tx, apiSpaceId: string, states: ReadonlyArray<{ prev: ProfileState; next: ProfileState }>): Promise<boolean> {
      const pg = dialect === 'postgres';
      if (pg && states.length > 1) {
        // One UPDATE … FROM unnest(column arrays) for the whole batch (see insertMany).
        const rows = states.map(({ prev, next }) => ({ prev_revision: prev.revision, ...toRow(apiSpaceId, next) }));
        const from = unnestFrom(UPDATE_KEYED, rows, 'v', PG_ARRAY_TYPES, 2);
        const set = UPDATE_COLUMNS.map((c) => `${c} = v.${c}${JSON_COLUMNS.has(c) ? '::jsonb' : ''}`).join(', ');
        const res = await tx.executeQuery(CompiledQuery.raw(
          // `id = ANY($2)` (the ids' array) bounds the scan of profiles by the batch whatever the
          // planner estimates: just after a bulk load its statistics still describe a small table, and
          // it then hashed every profile of the space for each batch.
          `UPDATE profiles SET ${set} FROM ${from.sql} WHERE profiles.api_space_id = $1 AND profiles.id = ANY($2::text[]) AND profiles.id = v.id AND profiles.revision = v.prev_revision`,
          [apiSpaceId, ...from.params],
        ));
        if (Number(res.numAffectedRows ?? 0) !== states.length) return false;
        await indexChanges(tx, apiSpaceId, states);
        return true;
      }
      // One UPDATE … FROM (VALUES …) per 500 profiles; VALUES columns are column1…N on both dialects.
      for (let i = 0; i < states.length; i += PROFILE_CHUNK) {
        const chunk = states.slice(i, i + PROFILE_CHUNK);
        const params: unknown[] = [apiSpaceId];
        const tuples = chunk.map(({ prev, next }) => {
          const row = toRow(apiSpaceId, next);
          const values: unknown[] = [next.id, prev.revision, ...UPDATE_COLUMNS.map((c) => row[c])];
          const base = params.length;
          params.push(...values);
          return `(${values.map((_, k) => (pg ? `$${base + k + 1}${UPDATE_CASTS[k]}` : '?')).join(',')})`;
        });
        const set = UPDATE_COLUMNS.map((c, k) => `${c} = v.column${k + 3}`).join(', ');
        const text = `UPDATE profiles SET ${set} FROM (VALUES ${tuples.join(',')}) AS v WHERE profiles.api_space_id = ${pg ? '$1' : '?'} AND profiles.id = v.column1 AND profiles.revision = v.column2`;
        // SQLite binds positionally: the space id comes first in the text, so it leads the params.
        const res = await tx.executeQuery(CompiledQuery.raw(text, pg ? params : [...params.slice(1), apiSpaceId]));
        if (Number(res.numAffectedRows ?? 0) !== chunk.length) return false;
      }
      await indexChanges(tx, apiSpaceId, states);
      return true;
    },

    async remove(tx: Tx, apiSpaceId: string, id: string): Promise<void> {
      const key = await spaceKey(tx, apiSpaceId, false);
      if (key !== undefined) await tx.deleteFrom('profile_fields').where('space_key', '=', key).where('profile_id', '=', id).execute();
      await tx.deleteFrom('profile_devices').where('api_space_id', '=', apiSpaceId).where('profile_id', '=', id).execute();
      await tx.deleteFrom('profiles').where('api_space_id', '=', apiSpaceId).where('id', '=', id).execute();
    },

    async touch(ex: Executor, apiSpaceId: string, id: string, at: string): Promise<void> {
      await ex.updateTable('profiles').set({ last_activity_on: at }).where('api_space_id', '=', apiSpaceId).where('id', '=', id).execute();
    },

    async count(ex: Executor, apiSpaceId: string): Promise<number> {
      const r = await sql<{ c: number }>`SELECT count(*) AS c FROM profiles WHERE api_space_id = ${apiSpaceId}`.execute(ex);
      return Number(r.rows[0]?.c ?? 0);
    },
  };
}

export type ProfilesRepo = ReturnType<typeof createProfilesRepo>;
