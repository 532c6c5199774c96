import { sql, type RawBuilder } from 'kysely';
import { AppError, errors, type ValidationFailure } from '../../http/errors.js';

/**
 * The `mongo-querystring` filter syntax of profiles.md §2.2, compiled to SQL over the field index
 * (`profile_fields`). Every atom becomes `p.id [NOT] IN (SELECT profile_id … WHERE path = ? AND …)`,
 * so the same SQL runs, with the same results, on SQLite and PostgreSQL.
 */

interface Typed {
  text: string;
  num?: number;
  bool?: boolean;
  /** Quoted ('…'): text only. */
  quoted: boolean;
}

export type Atom =
  | { op: 'eq' | 'ne'; values: Typed[] }
  | { op: 'exists' | 'missing' }
  | { op: 'gt' | 'gte' | 'lt' | 'lte'; value: Typed }
  | { op: 'prefix' | 'suffix' | 'contains'; text: string };

export interface Filter {
  path: string;
  atom: Atom;
}

export interface ProfileQueryControls {
  limit: number;
  skip: number;
  fields?: string[];
  includeDeleted: boolean;
  includeSystem: boolean;
  includeDevices: boolean;
  includeSessions: boolean;
  schemaOnly: boolean;
  sort: { path: string; desc: boolean };
}

export interface ParsedQuery {
  filters: Filter[];
  controls: ProfileQueryControls;
}

const NUMBER_RE = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const CONTROLS = new Set(['$limit', '$skip', '$fields', '$includedeleted', '$includesystem', '$includedevices', '$includesessions', '$schemaonly', '$sort']);

function typed(raw: string): Typed {
  if (raw.length >= 2 && raw.startsWith("'") && raw.endsWith("'")) return { text: raw.slice(1, -1), quoted: true };
  const t: Typed = { text: raw, quoted: false };
  if (NUMBER_RE.test(raw) && Number.isFinite(Number(raw))) t.num = Number(raw);
  if (raw === 'true' || raw === 'false') t.bool = raw === 'true';
  return t;
}

export function validPath(path: string): boolean {
  return path.length > 0 && path.length <= 512 && path.split('.').every((s) => s.length > 0 && s.length <= 128);
}

function atomFor(value: string, inList: boolean): Atom {
  if (inList) return value.startsWith('!') ? { op: 'ne', values: [typed(value.slice(1))] } : { op: 'eq', values: [typed(value)] };
  if (value === '') return { op: 'exists' };
  if (value === '!') return { op: 'missing' };
  if (value.startsWith('!')) return { op: 'ne', values: [typed(value.slice(1))] };
  if (value.startsWith('>=')) return { op: 'gte', value: typed(value.slice(2)) };
  if (value.startsWith('<=')) return { op: 'lte', value: typed(value.slice(2)) };
  if (value.startsWith('>')) return { op: 'gt', value: typed(value.slice(1)) };
  if (value.startsWith('<')) return { op: 'lt', value: typed(value.slice(1)) };
  if (value.startsWith('^')) return { op: 'prefix', text: value.slice(1) };
  if (value.startsWith('$')) return { op: 'suffix', text: value.slice(1) };
  if (value.startsWith('~')) return { op: 'contains', text: value.slice(1) };
  return { op: 'eq', values: [typed(value)] };
}

function bool(name: string, v: string, failures: ValidationFailure[]): boolean {
  const s = v.toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0' || s === '') return false;
  failures.push({ paramName: `query.${name}`, message: 'Must be true or false' });
  return false;
}

function int(name: string, v: string, min: number, max: number, failures: ValidationFailure[]): number | undefined {
  if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    failures.push({ paramName: `query.${name}`, message: `Must be an integer from ${min} to ${max}` });
    return undefined;
  }
  return Number(v);
}

/**
 * Parses a query object (repeated keys as arrays). `allowControls: false` rejects `$` parameters
 * (audience queries, export filters).
 */
export function parseProfileQuery(query: Record<string, string | string[] | undefined>, allowControls = true): ParsedQuery {
  const failures: ValidationFailure[] = [];
  const controls: ProfileQueryControls = {
    limit: 100, skip: 0, includeDeleted: false, includeSystem: false, includeDevices: false, includeSessions: false, schemaOnly: false, sort: { path: 'id', desc: false },
  };
  const filters: Filter[] = [];
  for (const [rawKey, rawValue] of Object.entries(query)) {
    if (rawValue === undefined) continue;
    const values = Array.isArray(rawValue) ? rawValue : [rawValue];
    if (rawKey.startsWith('$')) {
      const key = rawKey.toLowerCase();
      if (!allowControls || !CONTROLS.has(key)) {
        failures.push({ paramName: `query.${rawKey}`, message: allowControls ? 'Unknown control parameter' : 'Control parameters are not allowed here' });
        continue;
      }
      const v = values[values.length - 1]!;
      switch (key) {
        case '$limit': controls.limit = int(rawKey, v, 1, 1000, failures) ?? 100; break;
        case '$skip': controls.skip = int(rawKey, v, 0, Number.MAX_SAFE_INTEGER, failures) ?? 0; break;
        case '$fields': {
          const fields = values.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
          if (fields.some((f) => !validPath(f))) failures.push({ paramName: `query.${rawKey}`, message: 'Must be a comma-separated list of property paths' });
          controls.fields = fields;
          break;
        }
        case '$includedeleted': controls.includeDeleted = bool(rawKey, v, failures); break;
        case '$includesystem': controls.includeSystem = bool(rawKey, v, failures); break;
        case '$includedevices': controls.includeDevices = bool(rawKey, v, failures); break;
        case '$includesessions': controls.includeSessions = bool(rawKey, v, failures); break;
        case '$schemaonly': controls.schemaOnly = bool(rawKey, v, failures); break;
        case '$sort': {
          const desc = v.startsWith('-');
          const path = desc ? v.slice(1) : v.replace(/^\+/, '');
          if (!validPath(path)) failures.push({ paramName: `query.${rawKey}`, message: 'Must be a property path, optionally prefixed with "-"' });
          controls.sort = { path, desc };
          break;
        }
      }
      continue;
    }
    const inList = rawKey.endsWith('[]');
    const path = inList ? rawKey.slice(0, -2) : rawKey;
    if (!validPath(path)) {
      failures.push({ paramName: `query.${rawKey}`, message: 'Not a valid property path' });
      continue;
    }
    if (path === 'near' && values.some((v) => /^-?[\d.]+,-?[\d.]+/.test(v))) {
      failures.push({ paramName: `query.${rawKey}`, message: 'Geo queries are not supported' });
      continue;
    }
    // Plain values of one key form an "in" list; negated list items a "none of" list;
    // operator values are ANDed.
    const eq: Typed[] = [];
    const ne: Typed[] = [];
    for (const raw of values) {
      // Stored phone numbers are international digits: accept the forms people type.
      const v = path === 'phoneNumber' ? raw.replace(/^(!?)\+/, '$1').replace(/(\d)[\s().-]+(?=\d)/g, '$1') : raw;
      const atom = atomFor(v, inList);
      if (atom.op === 'eq') eq.push(...atom.values);
      else if (atom.op === 'ne' && inList) ne.push(...atom.values);
      else filters.push({ path, atom });
    }
    if (eq.length) filters.push({ path, atom: { op: 'eq', values: eq } });
    if (ne.length) filters.push({ path, atom: { op: 'ne', values: ne } });
  }
  if (failures.length) throw errors.validation(failures);
  return { filters, controls };
}

/** Parses a filter string (`a=1&b=^x`) as used by audiences and exports. */
export function parseFilterString(qs: string, paramName: string): Filter[] {
  const out: Record<string, string[]> = {};
  for (const pair of qs.replace(/^\?/, '').split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const dec = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    };
    const k = dec(eq < 0 ? pair : pair.slice(0, eq));
    (out[k] ??= []).push(eq < 0 ? '' : dec(pair.slice(eq + 1)));
  }
  try {
    return parseProfileQuery(out, false).filters;
  } catch (err) {
    if (err instanceof AppError && err.validationFailures) {
      throw errors.validation(err.validationFailures.map((f) => ({ paramName, message: `${f.paramName.replace(/^query\./, '')}: ${f.message}` })));
    }
    throw err;
  }
}

const esc = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The smallest string greater than every string starting with `p` (code-point order). */
function prefixUpperBound(p: string): string | undefined {
  const cps = [...p];
  while (cps.length) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      let next = last + 1;
      if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
      return cps.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

/** Alternatives for one typed value; each is a separate indexed lookup (an OR would defeat the index). */
function eqConds(v: Typed): RawBuilder<unknown>[] {
  const parts = [sql`f.sv = ${v.text} AND f.t = 's'`];
  if (!v.quoted && v.num !== undefined) parts.push(sql`f.nv = ${v.num}`);
  if (!v.quoted && v.bool !== undefined) parts.push(sql`f.sv = ${String(v.bool)} AND f.t = 'b'`);
  return parts;
}

function cmpCond(op: 'gt' | 'gte' | 'lt' | 'lte', v: Typed): RawBuilder<unknown> {
  const o = sql.raw({ gt: '>', gte: '>=', lt: '<', lte: '<=' }[op]);
  if (!v.quoted && v.num !== undefined) return sql`f.nv ${o} ${v.num}`;
  return sql`f.sv ${o} ${v.text} AND f.t = 's'`;
}

/** `cond` on `sv`, restricted to strings when a boolean's stored text could satisfy it. */
function textOnly(cond: RawBuilder<unknown>, boolCouldMatch: (word: string) => boolean): RawBuilder<unknown> {
  return boolCouldMatch('true') || boolCouldMatch('false') ? sql`${cond} AND f.t = 's'` : cond;
}

function likeConds(pattern: string, boolCouldMatch: (word: string) => boolean): RawBuilder<unknown>[] {
  return [
    sql`f.lv IS NOT NULL AND f.lv LIKE ${pattern} ESCAPE '\\'`,
    textOnly(sql`f.sv IS NOT NULL AND f.sv LIKE ${pattern} ESCAPE '\\'`, boolCouldMatch),
  ];
}

function atomConds(atom: Atom): { conds: RawBuilder<unknown>[]; negate: boolean } {
  switch (atom.op) {
    case 'eq': return { conds: atom.values.flatMap(eqConds), negate: false };
    case 'ne': return { conds: atom.values.flatMap(eqConds), negate: true };
    case 'exists': return { conds: [sql`1 = 1`], negate: false };
    case 'missing': return { conds: [sql`1 = 1`], negate: true };
    case 'gt': case 'gte': case 'lt': case 'lte': return { conds: [cmpCond(atom.op, atom.value)], negate: false };
    // Case-insensitive operators: `lv` holds the folded form of strings that have upper-case
    // letters only; strings already lower-case are matched on `sv` (repo `folded`). Each is its own
    // covering index lookup. A string that matches on `sv` also matches on `lv` whenever it has one
    // (folding keeps the lower-case characters it matched; SQLite's ASCII-insensitive LIKE only
    // adds such strings), so the `sv` branch never adds a wrong match; `t = 's'` (booleans store
    // "true"/"false" in `sv`) is added only when the operand could match one of those words.
    case 'prefix': {
      const p = atom.text.toLowerCase();
      const upper = prefixUpperBound(p);
      if (!p) return { conds: [sql`f.t = 's'`], negate: false };
      const range = (col: 'lv' | 'sv') => (upper === undefined ? sql`f.${sql.raw(col)} >= ${p}` : sql`f.${sql.raw(col)} >= ${p} AND f.${sql.raw(col)} < ${upper}`);
      return { conds: [range('lv'), textOnly(range('sv'), (w) => w.startsWith(p))], negate: false };
    }
    case 'suffix': {
      const t = atom.text.toLowerCase();
      return { conds: likeConds(`%${esc(t)}`, (w) => w.endsWith(t)), negate: false };
    }
    case 'contains': {
      const t = atom.text.toLowerCase();
      return { conds: likeConds(`%${esc(t)}%`, (w) => w.includes(t)), negate: false };
    }
  }
}

/**
 * Subqueries for a filter on `id`. The index has no `sv` row for the id (the primary key of
 * `profiles` already orders it the same way: `COLLATE "C"` / BINARY), only an `lv` row when the id
 * has upper-case letters (repo `visitFields`). So what other paths read from `sv` reads `p2.id`
 * here and the case-insensitive operators' `lv` branch stays on the index. The id is always a
 * string: number and boolean alternatives never match it, and it always exists.
 */
function idSubqueries(apiSpaceId: string, atom: Atom): { subs: RawBuilder<unknown>[]; negate: boolean } {
  const byId = (cond?: RawBuilder<unknown>) => (cond
    ? sql`SELECT p2.id FROM profiles p2 WHERE p2.api_space_id = ${apiSpaceId} AND ${cond}`
    : sql`SELECT p2.id FROM profiles p2 WHERE p2.api_space_id = ${apiSpaceId}`);
  const byLv = (cond: RawBuilder<unknown>) => sql`SELECT f.profile_id FROM profile_fields f WHERE ${fieldsOf(apiSpaceId)} AND f.path = 'id' AND ${cond}`;
  const none = sql`SELECT p2.id FROM profiles p2 WHERE 1 = 0`;
  switch (atom.op) {
    case 'eq': case 'ne': return { subs: atom.values.map((v) => byId(sql`p2.id = ${v.text}`)), negate: atom.op === 'ne' };
    case 'exists': return { subs: [byId()], negate: false };
    case 'missing': return { subs: [byId()], negate: true };
    case 'gt': case 'gte': case 'lt': case 'lte': {
      const v = atom.value;
      if (!v.quoted && v.num !== undefined) return { subs: [none], negate: false };
      return { subs: [byId(sql`p2.id ${sql.raw({ gt: '>', gte: '>=', lt: '<', lte: '<=' }[atom.op])} ${v.text}`)], negate: false };
    }
    case 'prefix': {
      const p = atom.text.toLowerCase();
      if (!p) return { subs: [byId()], negate: false };
      const upper = prefixUpperBound(p);
      const range = (col: string) => (upper === undefined ? sql`${sql.raw(col)} >= ${p}` : sql`${sql.raw(col)} >= ${p} AND ${sql.raw(col)} < ${upper}`);
      return { subs: [byLv(range('f.lv')), byId(range('p2.id'))], negate: false };
    }
    case 'suffix': case 'contains': {
      const t = esc(atom.text.toLowerCase());
      const pattern = atom.op === 'suffix' ? `%${t}` : `%${t}%`;
      return { subs: [byLv(sql`f.lv IS NOT NULL AND f.lv LIKE ${pattern} ESCAPE '\\'`), byId(sql`p2.id LIKE ${pattern} ESCAPE '\\'`)], negate: false };
    }
  }
}

/**
 * Restricts `profile_fields f` to a space: its rows carry the space's integer key
 * (`profile_space_keys`), read here by a subquery that both databases evaluate once per statement
 * and use as an index bound. A space without a key has no index rows: the subquery is NULL and
 * matches none.
 */
export function fieldsOf(apiSpaceId: string): RawBuilder<unknown> {
  return sql`f.space_key = (SELECT k.space_key FROM profile_space_keys k WHERE k.api_space_id = ${apiSpaceId})`;
}

export interface ScopeOptions {
  includeDeleted?: boolean;
  includeSystem?: boolean;
}

/** The WHERE clause over `profiles p` for a space, its filters and the visibility flags. */
export function whereClause(apiSpaceId: string, filters: readonly Filter[], scope: ScopeOptions): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [sql`p.api_space_id = ${apiSpaceId}`];
  if (!scope.includeDeleted) parts.push(sql`p.deleted_on IS NULL`);
  if (!scope.includeSystem) parts.push(sql`p.system = 0`);
  for (const { path, atom } of filters) {
    let subs: RawBuilder<unknown>[];
    let negate: boolean;
    if (path === 'id') ({ subs, negate } = idSubqueries(apiSpaceId, atom));
    else {
      const a = atomConds(atom);
      subs = a.conds.map((cond) => sql`SELECT f.profile_id FROM profile_fields f WHERE ${fieldsOf(apiSpaceId)} AND f.path = ${path} AND ${cond}`);
      // The index has rows for empty containers only: a non-empty one exists through its
      // children, whose paths start with `path.` — the range `path >= 'p.' AND path < 'p/'` in
      // byte order (BINARY on SQLite, COLLATE "C" on PostgreSQL; repo `visitFields`).
      if (atom.op === 'exists' || atom.op === 'missing') {
        subs.push(sql`SELECT f.profile_id FROM profile_fields f WHERE ${fieldsOf(apiSpaceId)} AND f.path >= ${`${path}.`} AND f.path < ${`${path}/`}`);
      }
      negate = a.negate;
    }
    const sub = sql.join(subs, sql` UNION ALL `);
    parts.push(negate ? sql`p.id NOT IN (${sub})` : sql`p.id IN (${sub})`);
  }
  return sql.join(parts, sql` AND `);
}

const COLUMN_SORTS: Record<string, string> = { _createdOn: 'p.created_on', _updatedOn: 'p.updated_on', _lastActivityOn: 'p.last_activity_on' };

/** ORDER BY for `$sort`: absent < numbers < strings < booleans, ties by id. */
export function orderClause(apiSpaceId: string, sort: { path: string; desc: boolean }): RawBuilder<unknown> {
  const dir = sql.raw(sort.desc ? 'DESC' : 'ASC');
  if (sort.path === 'id') return sql`p.id ${dir}`;
  const col = COLUMN_SORTS[sort.path];
  if (col) return sql`CASE WHEN ${sql.raw(col)} IS NULL THEN 0 ELSE 1 END ${dir}, COALESCE(${sql.raw(col)}, '') ${dir}, p.id ASC`;
  const key = (t: string, col: 'nv' | 'sv') =>
    sql`(SELECT min(f.${sql.raw(col)}) FROM profile_fields f WHERE ${fieldsOf(apiSpaceId)} AND f.profile_id = p.id AND f.path = ${sort.path} AND f.t = ${t})`;
  const rank = sql`CASE WHEN ${key('n', 'nv')} IS NOT NULL THEN 1 WHEN ${key('s', 'sv')} IS NOT NULL THEN 2 WHEN ${key('b', 'sv')} IS NOT NULL THEN 3 ELSE 0 END`;
  return sql`${rank} ${dir}, COALESCE(${key('n', 'nv')}, 0) ${dir}, COALESCE(${key('s', 'sv')}, '') ${dir}, COALESCE(${key('b', 'sv')}, '') ${dir}, p.id ASC`;
}
