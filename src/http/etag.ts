import { hash } from 'node:crypto';
import { errors } from './errors.js';

/** Object keys as JSON strings: the same few names recur in every document (bounded: user keys vary). */
const quotedKeys = new Map<string, string>();
const QUOTED_KEYS_MAX = 10_000;
function quoted(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (quotedKeys.size < QUOTED_KEYS_MAX) quotedKeys.set(key, q);
  }
  return q;
}

/**
 * JSON with object keys sorted (arrays keep their order), so key order does not change it: a
 * document read back from PostgreSQL's jsonb has its keys in another order than it was written
 * in, and a request body's keys may come in any order.
 */
export function canonicalJson(value: unknown): string {
  // Written as loops with string concatenation: every ETag of every write computes this. Keys
  // already in order (most documents are built that way) are not sorted again.
  if (typeof value !== 'object' || value === null) return JSON.stringify(value ?? null);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const toJSON = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON === 'function') return canonicalJson(toJSON.call(value));
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  // `>` compares strings by UTF-16 code units, as `sort()` does.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let out = '{';
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    out += (out.length > 1 ? ',' : '') + quoted(k) + ':' + canonicalJson(v);
  }
  return `${out}}`;
}

/**
 * Strong ETag `"<revision hex>-<16 base64url chars of SHA-256(representation)>"` (conventions.md §8),
 * over the canonical JSON: the ETag a write answers with is the one later reads compute, on both
 * databases. Pass the representation without volatile fields such as `_lastActivityOn`.
 */
export function etagFor(revision: number, representation: unknown): string {
  return etagForJson(revision, canonicalJson(representation));
}

/** `etagFor` of a representation already serialised. */
export function etagForJson(revision: number, json: string): string {
  return `"${revision.toString(16)}-${hash('sha256', json, 'base64url').slice(0, 16)}"`;
}

/**
 * Checks an `If-Match` header against the current ETag: absent → unconditional; `*` matches any
 * existing resource; otherwise one of the comma-separated strong tags must equal it (412 if not).
 */
export function checkIfMatch(header: string | string[] | undefined, current: string | undefined): void {
  if (header === undefined) return;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value.trim() === '') return;
  if (current === undefined) throw errors.preconditionFailed('The resource does not exist');
  if (value.trim() === '*') return;
  const tags = value.match(/(W\/)?"[^"]*"/g) ?? [];
  if (!tags.some((t) => !t.startsWith('W/') && t === current)) throw errors.preconditionFailed();
}
