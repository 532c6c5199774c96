/**
 * Merge fields (one-api.md §2.5.1): `{{profile.<path>}}`, `{{metadata.<path>}}`, `{{body}}`,
 * `{{title}}`, `{{profileId}}`. Single pass, values are not re-scanned, unknown tokens stay as
 * written, missing values become "", objects/numbers/booleans their compact JSON.
 */
export interface MergeContext {
  profile?: Record<string, unknown>;
  profileId?: string;
  body?: string;
  title?: string;
  metadata?: unknown;
  /** Further plain names (custom channels: userId, messageId, conversationId). */
  extra?: Record<string, string | undefined>;
}

const TOKEN = /\{\{\s*([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*)\s*\}\}/g;

function at(root: unknown, path: string[]): unknown {
  let cur = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Substitutes the tokens of one string; `escape` is applied to substituted values only. */
export function mergeString(s: string, ctx: MergeContext, escape?: (v: string) => string): string {
  if (!s.includes('{{')) return s;
  return s.replace(TOKEN, (whole, name: string) => {
    const [head, ...path] = name.split('.');
    let value: unknown;
    if (head === 'profile' && path.length) value = at(ctx.profile, path);
    else if (head === 'metadata' && path.length) value = at(ctx.metadata, path);
    else if (path.length) return whole;
    else if (name === 'body') value = ctx.body;
    else if (name === 'title') value = ctx.title;
    else if (name === 'profileId') value = ctx.profileId;
    else if (ctx.extra && name in ctx.extra) value = ctx.extra[name];
    else return whole;
    const out = text(value);
    return escape ? escape(out) : out;
  });
}

/** Substitutes every string value at any depth (custom bodies, options, metadata). */
export function mergeDeep<T>(value: T, ctx: MergeContext): T {
  if (typeof value === 'string') return mergeString(value, ctx) as T;
  if (Array.isArray(value)) return value.map((v) => mergeDeep(v, ctx)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = mergeDeep(v, ctx);
    return out as T;
  }
  return value;
}
