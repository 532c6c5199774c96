import { randomUUID } from 'node:crypto';

/** Id source injected where the server names things (tests may make them predictable). */
export interface Ids {
  uuid(): string;
}

export const randomIds: Ids = { uuid: () => randomUUID() };

/**
 * A UUID v4 (`uuid`) whose first 48 bits are replaced by the epoch-ms time, like a UUIDv7: ids
 * of rows written together sort together. Random v4 keys scatter inserts across the whole
 * primary-key index (one page write per row, and an order of magnitude slower once the table
 * outgrows the page cache); time-led keys append.
 */
export function timeOrderedUuid(now: number, uuid: string): string {
  const t = Math.max(0, Math.floor(now)).toString(16).padStart(12, '0').slice(-12);
  return `${t.slice(0, 8)}-${t.slice(8, 12)}${uuid.slice(13)}`;
}

const UUID_RE = /^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/;
const HEX32_RE = /^[a-f0-9]{32}$/;

/**
 * Normalises an API space id from a path: upper-case hex and the 32-hex form resolve to the
 * canonical lowercase hyphenated UUID (conventions.md §5). Undefined when it is not an id.
 */
export function normaliseSpaceId(raw: string): string | undefined {
  const s = raw.toLowerCase();
  if (UUID_RE.test(s)) return s;
  if (HEX32_RE.test(s)) return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  return undefined;
}

/**
 * Client-chosen ids (profiles, conversations): 1–256 characters, no control characters, no `/`,
 * not only white space (conventions.md §5). Returns a reason when invalid.
 */
export function clientIdProblem(id: string, reserved: readonly string[] = []): string | undefined {
  if (id.length < 1 || id.length > 256) return 'Must be 1 to 256 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) return 'Must not contain control characters';
  if (id.includes('/')) return 'Must not contain "/"';
  if (id.trim() === '') return 'Must not be only white space';
  if (reserved.includes(id.toLowerCase())) return `"${id}" is a reserved word`;
  return undefined;
}
