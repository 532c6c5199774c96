import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import { errors } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a JSON body buffer: empty → undefined (the SDK sends empty JSON bodies on GET/DELETE). */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw errors.invalidJson('The request body is not valid UTF-8');
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw errors.invalidJson();
  }
}

/**
 * Query strings (conventions.md §2.3): `+` stays a literal plus, repeated keys become arrays,
 * a trailing `&` or empty pair is ignored. Malformed percent escapes are kept as written.
 */
export function parseQueryString(qs: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const pair of qs.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const k = decode(eq < 0 ? pair : pair.slice(0, eq));
    const v = eq < 0 ? '' : decode(pair.slice(eq + 1));
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Bodies on these methods are ignored whatever their type or content (conventions.md §2.1). */
const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/** Registers JSON parsing for JSON media types; any other type on a JSON route answers 415. */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  const json = (req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
    if (BODYLESS.has(req.method)) return done(null, undefined);
    try {
      done(null, parseJsonBody(body));
    } catch (err) {
      done(err as Error);
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, json);
  app.addContentTypeParser(/^application\/[a-z0-9.+-]*\+json$/i, { parseAs: 'buffer' }, json);
  // Everything else: no content type → JSON; a body of another type → 415 unless a module
  // registers its own parser in its scope (content upload, imports, provider callbacks).
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    const type = req.headers['content-type'];
    if (!type || (body as Buffer).length === 0 || BODYLESS.has(req.method)) return json(req, body as Buffer, done);
    done(errors.unsupportedMediaType(String(type).split(';')[0]!.trim()));
  });
}

const ALLOW_HEADERS = 'authorization, content-type, cache-control, pragma, if-modified-since, if-match, content-filename, idempotency-key, x-request-id';
const EXPOSE_HEADERS = 'ETag, Last-Modified, Location, X-Request-Id, X-Total-Count, Retry-After, Idempotent-Replayed';

interface QueryPlan {
  arrays: string[];
  booleans: string[];
}
const plans = new WeakMap<object, QueryPlan>();

const typesOf = (schema: Record<string, unknown>): string[] => {
  const own = schema.type === undefined ? [] : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
  const alts = [...((schema.anyOf as unknown[]) ?? []), ...((schema.oneOf as unknown[]) ?? [])] as Array<Record<string, unknown>>;
  return [...own, ...alts.flatMap(typesOf)];
};

/** Which query keys of a route's querystring schema are arrays and which are booleans. */
function planFor(schema: object): QueryPlan {
  let plan = plans.get(schema);
  if (!plan) {
    plan = { arrays: [], booleans: [] };
    const props = ((schema as { properties?: Record<string, Record<string, unknown>> }).properties) ?? {};
    for (const [key, prop] of Object.entries(props)) {
      const types = typesOf(prop);
      if (types.includes('array')) plan.arrays.push(key);
      else if (types.includes('boolean')) plan.booleans.push(key);
    }
    plans.set(schema, plan);
  }
  return plan;
}

/**
 * Query values the schema alone cannot express (conventions.md §2.3): array parameters accept
 * repeated keys and comma-separated values, also mixed; booleans accept `true`/`false` in any case
 * and `1`/`0` (anything else is left for validation to reject).
 */
export function normaliseQuery(schema: object | undefined, query: Record<string, unknown>): void {
  if (!schema) return;
  const plan = planFor(schema);
  for (const key of plan.arrays) {
    const v = query[key];
    if (v === undefined) continue;
    query[key] = (Array.isArray(v) ? v : [v]).flatMap((x) => (typeof x === 'string' ? x.split(',') : [x]));
  }
  for (const key of plan.booleans) {
    const v = query[key];
    if (typeof v !== 'string') continue;
    if (/^(true|1)$/i.test(v)) query[key] = true;
    else if (/^(false|0)$/i.test(v)) query[key] = false;
  }
}

/** CORS (conventions.md §2.4) and the common response headers (§2.5); query normalisation. */
export function registerTransportHeaders(app: FastifyInstance, config: Config): void {
  // Callback-style hooks: they run on every request, and async hooks cost a promise each.
  app.addHook('preValidation', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    // U+0000 can be part of no id or value we store (PostgreSQL text rejects it outright).
    for (const [part, values] of [['path', request.params], ['query', request.query]] as const) {
      for (const key in (values ?? {}) as Record<string, unknown>) {
        const value = (values as Record<string, unknown>)[key];
        if ((Array.isArray(value) ? value : [value]).some((v) => typeof v === 'string' && v.includes('\u0000'))) {
          return done(errors.invalidField(`${part}.${key}`, 'Must not contain NUL characters'));
        }
      }
    }
    const schema = (request.routeOptions.schema as { querystring?: object } | undefined)?.querystring;
    if (schema && request.query && typeof request.query === 'object') normaliseQuery(schema, request.query as Record<string, unknown>);
    done();
  });
  const any = config.corsAllowedOrigins.includes('*');
  const allowed = new Set(config.corsAllowedOrigins);
  const originFor = (origin: string | undefined): string | undefined => {
    if (any) return origin ?? '*';
    return origin && allowed.has(origin) ? origin : undefined;
  };
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const origin = originFor(request.headers.origin);
    if (origin) {
      reply.header('Access-Control-Allow-Origin', origin);
      reply.header('Access-Control-Expose-Headers', EXPOSE_HEADERS);
      if (origin !== '*') reply.header('Vary', 'Origin');
    }
    reply.header('X-Request-Id', String(request.id));
    if (request.method === 'OPTIONS') {
      // Answered here: no route, auth or rate limit applies to a preflight.
      reply
        .header('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
        .header('Access-Control-Allow-Headers', ALLOW_HEADERS)
        .header('Access-Control-Max-Age', '600')
        .code(204)
        .send();
      return;
    }
    done();
  });
  app.addHook('onSend', (_request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void) => {
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
    done(null, payload);
  });
}

/** X-Request-Id: echo a client's (1–128 printable ASCII), otherwise a fresh UUID. */
export function requestIdFrom(header: string | string[] | undefined, fresh: () => string): string {
  const v = Array.isArray(header) ? header[0] : header;
  return v && /^[\x21-\x7e]{1,128}$/.test(v) ? v : fresh();
}
