/**
 * Merge fields of custom-channel request templates (channels.md §11): `{{userId}}`, `{{body}}`,
 * `{{title}}`, `{{messageId}}`, `{{profileId}}`, `{{conversationId}}`, `{{profile.<path>}}`,
 * `{{metadata.<path>}}`. Single pass; unknown tokens stay as written.
 */

export type Escaping = 'json' | 'form' | 'url' | 'header' | 'none';

export interface MergeValues {
  userId?: unknown;
  body?: unknown;
  title?: unknown;
  messageId?: unknown;
  profileId?: unknown;
  conversationId?: unknown;
  profile?: unknown;
  metadata?: unknown;
}

const TOKEN = /\{\{\s*([A-Za-z][A-Za-z0-9_]*(?:\.[^{}\s]+)?)\s*\}\}/g;
const SIMPLE = new Set(['userId', 'body', 'title', 'messageId', 'profileId', 'conversationId']);

/** A value at a dot path (`address.city`, `items.0.name`). */
export function valueAt(root: unknown, path: string): unknown {
  let cur = root;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** Missing → empty; objects and arrays → compact JSON; numbers and booleans → their JSON text. */
export function textOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** Escapes one substituted value for where it lands. */
export function escapeFor(escaping: Escaping, text: string): string {
  switch (escaping) {
    case 'json':
      // JSON string escaping without the surrounding quotes; also U+2028/9 for JS-embedding safety.
      return JSON.stringify(text).slice(1, -1).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
    case 'form':
    case 'url':
      return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    case 'header':
      // A header value must never carry a line break (header injection).
      return text.replace(/[\r\n\0]+/g, ' ');
    default:
      return text;
  }
}

/** Substitutes the merge fields of `template`, escaping each value for `escaping`. */
export function renderTemplate(template: string, values: MergeValues, escaping: Escaping): string {
  return template.replace(TOKEN, (whole, name: string) => {
    let value: unknown;
    if (SIMPLE.has(name)) value = values[name as keyof MergeValues];
    else if (name.startsWith('profile.')) value = valueAt(values.profile, name.slice(8));
    else if (name.startsWith('metadata.')) value = valueAt(values.metadata, name.slice(9));
    else return whole;
    return escapeFor(escaping, textOf(value));
  });
}

/** How a body template's values are escaped for a request content type. */
export function escapingForContentType(contentType: string): Escaping {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json') || type === 'text/json') return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  return 'none';
}
