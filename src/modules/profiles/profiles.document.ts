import { phoneCountry, phoneDigits } from '../../lib/phone.js';
import type { ValidationFailure } from '../../http/errors.js';
import { clientIdProblem } from '../../lib/ids.js';
import { etagForJson } from '../../http/etag.js';
import type { ProfileDocument } from './profiles.contract.js';
import type { ProfileRow } from './profiles.repo.js';
import { fromJson } from '../../storage/dialect.js';

export const MAX_PROFILE_BYTES = 64 * 1024;
const RESERVED_IDS = ['bulk', 'optin'];

export type ProfileData = Record<string, unknown>;

export function profileIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'Must be a string';
  return clientIdProblem(id, RESERVED_IDS);
}

/** Drops `_` properties at any depth and checks names (no `.`, at most 128 characters). */
function clean(value: unknown, path: string, failures: ValidationFailure[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => clean(v, `${path}[${i}]`, failures));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (k.startsWith('_')) continue;
    if (k.includes('.')) failures.push({ paramName: path ? `${path}.${k}` : k, message: 'Property names must not contain "."' });
    else if (k.length > 128 || k.length === 0) failures.push({ paramName: path ? `${path}.${k}` : k, message: 'Property names must be 1 to 128 characters' });
    else {
      const v = obj[k];
      // Scalars need no path (it only names failures inside containers).
      out[k] = v === null || typeof v !== 'object' ? v : clean(v, path ? `${path}.${k}` : k, failures);
    }
  }
  return out;
}

/** International digits without `+` and the ISO country, or a failure message. */
export function normalisePhone(value: unknown): { digits: string; country?: string } | string {
  const raw = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
  if (typeof raw !== 'string') return 'Must be a string of international digits';
  const digits = phoneDigits(raw);
  return digits ? { digits, country: phoneCountry(digits) } : 'Not a valid international phone number';
}

/**
 * Cleans client input into stored custom data: reserved names dropped, `id` removed (it is a
 * column), `phoneNumber` normalised with `phoneNumberCountryCode` derived.
 */
export function cleanInput(body: Record<string, unknown>, failures: ValidationFailure[]): ProfileData {
  const data = clean(body, '', failures) as ProfileData;
  delete data.id;
  delete data.phoneNumberCountryCode;
  return data;
}

/** Derives `phoneNumberCountryCode` from `phoneNumber` after a merge; checks the size. */
export function finishData(id: string, data: ProfileData, failures: ValidationFailure[]): ProfileData {
  if (data.phoneNumber === undefined || data.phoneNumber === null) {
    delete data.phoneNumberCountryCode;
  } else {
    const p = normalisePhone(data.phoneNumber);
    if (typeof p === 'string') failures.push({ paramName: 'phoneNumber', message: p });
    else {
      data.phoneNumber = p.digits;
      if (p.country) data.phoneNumberCountryCode = p.country;
      else delete data.phoneNumberCountryCode;
    }
  }
  // The size of `{ id, ...data }` serialised: the same members as `data` plus `"id":…` (member
  // order does not change the length). The data's JSON is kept for the row and the ETag.
  const json = JSON.stringify(data);
  dataJsons.set(data, json);
  const size = Buffer.byteLength(json) + Buffer.byteLength(JSON.stringify(id)) + (json.length > 2 ? 6 : 5);
  if (size > MAX_PROFILE_BYTES) {
    failures.push({ paramName: 'body', message: `A profile must not exceed ${MAX_PROFILE_BYTES} bytes serialised` });
  }
  return data;
}

// Stored data objects are never mutated once built (changes copy what they change, see
// deletePath), so their JSON can be kept: computed once for the size check, the row and the ETag.
const dataJsons = new WeakMap<ProfileData, string>();
/** `JSON.stringify(data)`, computed once per data object. */
export function dataJson(data: ProfileData): string {
  let json = dataJsons.get(data);
  if (json === undefined) dataJsons.set(data, (json = JSON.stringify(data)));
  return json;
}

/** Removes a dot path from data (the `deletes` query of PATCH), copying the objects it changes. */
export function deletePath(data: ProfileData, path: string): void {
  const parts = path.split('.');
  let cur: Record<string, unknown> = data;
  for (let i = 0; i < parts.length - 1; i++) {
    const child = cur[parts[i]!];
    if (child === null || typeof child !== 'object' || Array.isArray(child)) return;
    cur = cur[parts[i]!] = { ...(child as Record<string, unknown>) };
  }
  delete cur[parts[parts.length - 1]!];
}

export interface ProfileState {
  id: string;
  data: ProfileData;
  optIn: Record<string, boolean> | null;
  rels: { primary?: string; links?: string[] } | null;
  system: boolean;
  revision: number;
  createdOn: string;
  createdBy: string;
  updatedOn: string;
  updatedBy: string;
  lastActivityOn: string | null;
  deletedOn: string | null;
  deletedBy: string | null;
}

export function stateFromRow(r: ProfileRow): ProfileState {
  const s: ProfileState = {
    id: r.id,
    data: fromJson<ProfileData>(r.data),
    optIn: r.opt_in == null ? null : fromJson(r.opt_in),
    rels: r.rels == null ? null : fromJson(r.rels),
    system: r.system === 1,
    revision: r.revision,
    createdOn: r.created_on,
    createdBy: r.created_by,
    updatedOn: r.updated_on,
    updatedBy: r.updated_by,
    lastActivityOn: r.last_activity_on,
    deletedOn: r.deleted_on,
    deletedBy: r.deleted_by,
  };
  // The ETag stored with the row is the one its write answered with. Recomputing it from the
  // document read back would differ on PostgreSQL, whose jsonb returns keys in its own order
  // (shorter first), so a client's If-Match from a write would fail (412).
  if (typeof r.etag === 'string' && r.etag) etags.set(s, r.etag);
  return s;
}

/** The representation without `_lastActivityOn` (what the ETag hashes). */
export function representation(s: ProfileState): ProfileDocument {
  const doc: ProfileDocument = { id: s.id, ...s.data };
  if (s.optIn && Object.keys(s.optIn).length) doc._optIn = s.optIn;
  if (s.rels && (s.rels.primary || s.rels.links?.length)) doc._rels = s.rels;
  doc._createdOn = s.createdOn;
  doc._createdBy = s.createdBy;
  doc._updatedOn = s.updatedOn;
  doc._updatedBy = s.updatedBy;
  if (s.system) doc._systemProfile = true;
  if (s.deletedOn) {
    doc._deleted = true;
    doc._deletedOn = s.deletedOn;
    doc._deletedBy = s.deletedBy;
  }
  return doc;
}

/** An array index ("0", "17"): JavaScript orders such keys first in an object, whatever the insertion order. */
const INDEX_KEY = /^(0|[1-9]\d{0,9})$/;

/**
 * `JSON.stringify(representation(s))`, reusing the data's JSON: `{"id":…` + the data's members +
 * the `_` members in the order `representation` adds them. When the data's first key is an array
 * index the spread would move it before `id`, so that (rare) case is serialised as an object.
 * Built once per state (states are never mutated): the ETag and the event payload share it.
 */
export function representationJson(s: ProfileState): string {
  let json = representationJsons.get(s);
  if (json === undefined) representationJsons.set(s, (json = buildRepresentationJson(s)));
  return json;
}
const representationJsons = new WeakMap<ProfileState, string>();

function buildRepresentationJson(s: ProfileState): string {
  const data = dataJson(s.data);
  let first: string | undefined;
  for (const k in s.data) {
    first = k;
    break;
  }
  if ((first !== undefined && INDEX_KEY.test(first)) || (s.deletedOn && s.deletedBy === undefined)) return JSON.stringify(representation(s));
  let out = `{"id":${JSON.stringify(s.id)}${data.length > 2 ? `,${data.slice(1, -1)}` : ''}`;
  if (s.optIn && Object.keys(s.optIn).length) out += `,"_optIn":${JSON.stringify(s.optIn)}`;
  if (s.rels && (s.rels.primary || s.rels.links?.length)) out += `,"_rels":${JSON.stringify(s.rels)}`;
  out += `,"_createdOn":${JSON.stringify(s.createdOn)},"_createdBy":${JSON.stringify(s.createdBy)},"_updatedOn":${JSON.stringify(s.updatedOn)},"_updatedBy":${JSON.stringify(s.updatedBy)}`;
  if (s.system) out += ',"_systemProfile":true';
  if (s.deletedOn) out += `,"_deleted":true,"_deletedOn":${JSON.stringify(s.deletedOn)},"_deletedBy":${JSON.stringify(s.deletedBy)}`;
  return `${out}}`;
}

// States are never mutated once built (changes make new ones), so their ETag can be cached; a
// state read from a row starts with the row's stored ETag (stateFromRow).
const etags = new WeakMap<ProfileState, string>();
/**
 * The strong ETag: `etagForJson(revision, JSON of representation(s))`, hashing the representation's
 * JSON built once (in the document's own key order, not canonical JSON: it is computed once per
 * write and stored; reads take the stored one, see stateFromRow).
 */
export function etagOf(s: ProfileState): string {
  let e = etags.get(s);
  if (e === undefined) etags.set(s, (e = etagForJson(s.revision, representationJson(s))));
  return e;
}

/** `JSON.stringify(toDocument(s))`, from the representation's JSON (built once, see representationJson). */
export function documentJson(s: ProfileState): string {
  const json = representationJson(s);
  return s.lastActivityOn ? `${json.slice(0, -1)},"_lastActivityOn":${JSON.stringify(s.lastActivityOn)}}` : json;
}

/** The full document as the API shows it. */
export function toDocument(s: ProfileState): ProfileDocument {
  const doc = representation(s);
  if (s.lastActivityOn) doc._lastActivityOn = s.lastActivityOn;
  return doc;
}

/** Keeps `id` and the named dot paths ($fields). */
export function project(doc: ProfileDocument, fields: readonly string[] | undefined): ProfileDocument {
  if (!fields) return doc;
  const out: ProfileDocument = { id: doc.id };
  for (const f of fields) {
    const parts = f.split('.');
    let cur: unknown = doc;
    for (const p of parts) cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>)[p] : undefined;
    if (cur === undefined) continue;
    let target: Record<string, unknown> = out;
    parts.forEach((p, i) => {
      if (i === parts.length - 1) target[p] = cur;
      else target = (target[p] ??= {}) as Record<string, unknown>;
    });
  }
  return out;
}
