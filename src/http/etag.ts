import { createHash } from 'node:crypto';
import { errors } from './errors.js';

/**
 * JSON with object keys sorted (arrays keep their order), so key order does not change it: a
 * document read back from PostgreSQL's jsonb has its keys in another order than it was written
 * in, and a request body's keys may come in any order.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const toJSON = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') return canonicalJson(toJSON.call(value));
    const keys = Object.keys(value as object).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
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
  return `"${revision.toString(16)}-${createHash('sha256').update(json).digest('base64url').slice(0, 16)}"`;
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
