/**
 * Batch envelopes. `POST /messages/batch` validates every item and then stores the batch as ONE
 * row (`message_batches`) with one `message.batch` job, in one transaction, before its 202: a
 * 1,000-item batch costs one insert instead of a thousand. The job expands the envelope into
 * message rows and their dispatch jobs (what a single send writes at once) and deletes it, in
 * one transaction. Until then a read that needs one of its messages expands it first
 * (`PendingBatches`), so the API never shows a difference: `GET /messages/{id}` straight after
 * the 202 finds the message.
 *
 * Item ids are derived from the envelope's key (31 characters of a time-led UUID) and the item's
 * index (5 hex digits), so an id names its envelope without a look-up table and keeps the UUID form.
 */
import type { DispatchState } from './lifecycle.js';

export interface MessageBatchRow {
  api_space_id: string;
  id: string;
  doc: unknown;
  submitted_at: number;
}

declare module '../../storage/schema.js' {
  interface Database {
    message_batches: MessageBatchRow;
  }
}

export const BATCH_COLUMNS = ['api_space_id', 'id', 'doc', 'submitted_at'] as const satisfies ReadonlyArray<keyof MessageBatchRow>;

/** A validated message ready to be written: what a single send writes and an envelope holds. */
export interface Prepared {
  id: string;
  stored: Record<string, unknown>;
  /** Deduplicated channel list (from `rules` or the rule set). */
  channels: string[];
  state: DispatchState;
  expiresAt?: number;
  deliverAfter?: number;
}

/**
 * One item as stored: the request as stored (`r`), and only what differs from what `r` implies —
 * the channels when a rule set named them (`c`), Branch settings from a rule set or the request
 * (`f`), expiry (`e`) and a scheduled start (`d`).
 */
export interface PackedItem {
  r: Record<string, unknown>;
  c?: string[];
  f?: Pick<DispatchState, 'fallbackOnFailure' | 'fallbackAfter' | 'successStatus'>;
  e?: number;
  d?: number;
}

/** The stored envelope: who sent it, when, and the items in request order (ids derived). */
export interface Envelope {
  v: 1;
  at: number;
  by: string;
  sender: string | null;
  items: PackedItem[];
}

const channelsOf = (stored: Record<string, unknown>): string[] => (Array.isArray(stored.rules) ? [...new Set(stored.rules as string[])] : []);

export function pack(p: Prepared): PackedItem {
  const out: PackedItem = { r: p.stored };
  const rules = p.stored.rules as string[] | undefined;
  // `channels` is `rules` deduplicated: stored only when it came from elsewhere (a rule set).
  if (!rules || (rules.length !== p.channels.length && channelsOf(p.stored).join() !== p.channels.join())) out.c = p.channels;
  const s = p.state;
  if (s.fallbackOnFailure !== undefined || s.fallbackAfter !== undefined || s.successStatus !== undefined) {
    out.f = { fallbackOnFailure: s.fallbackOnFailure, fallbackAfter: s.fallbackAfter, successStatus: s.successStatus };
  }
  if (p.expiresAt !== undefined) out.e = p.expiresAt;
  if (p.deliverAfter !== undefined) out.d = p.deliverAfter;
  return out;
}

export function unpack(item: PackedItem, id: string): Prepared {
  const channels = item.c ?? channelsOf(item.r);
  return { id, stored: item.r, channels, state: { rules: channels, next: 0, retries: 0, ...item.f }, expiresAt: item.e, deliverAfter: item.d };
}

const KEY_LENGTH = 31;
const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The envelope key of a batch accepted with `messageId` as its first id's source. */
export const batchKey = (uuidLike: string): string => uuidLike.slice(0, KEY_LENGTH);
export const batchItemId = (key: string, index: number): string => key + index.toString(16).padStart(5, '0');
/** The envelope a message id would belong to (any id in the UUID form; most name none). */
export const batchKeyOf = (id: string): string | undefined => (ID_RE.test(id) ? id.slice(0, KEY_LENGTH) : undefined);

/** Reads that may need messages still inside an envelope expand it first. */
export interface PendingBatches {
  /**
   * Expands the envelope `id` would belong to, if it is pending; true when `id` has the form of a
   * batch item, i.e. when a second read may now find it (expanded here or concurrently).
   */
  ensureMessage(apiSpaceId: string, id: string): Promise<boolean>;
  /** `read()`, and when it finds nothing, once more after `ensureMessage` (reads by message id). */
  read<T>(apiSpaceId: string, id: string, read: () => Promise<T | undefined>): Promise<T | undefined>;
  /** Expands every pending envelope of the space (queries by profile, forgetting a profile). */
  ensureSpace(apiSpaceId: string): Promise<void>;
}
