/**
 * OAuth 1.0a request signing (RFC 5849 §3.4, HMAC-SHA1) for the X API's user context: the
 * `twitterDm` provider signs each request with the app's consumer key and the account's access
 * token. A JSON body is not part of the signature (only form-encoded bodies are, §3.4.1.3.1), so
 * callers pass form parameters, if any, in `params`.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** RFC 3986 percent-encoding as RFC 5849 §3.6 requires: everything but unreserved characters. */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The base string URI (§3.4.1.2): lower-case scheme and host, the port only when not the default, no query. */
function baseUri(url: URL): string {
  const scheme = url.protocol.toLowerCase();
  const defaultPort = (scheme === 'http:' && url.port === '80') || (scheme === 'https:' && url.port === '443');
  const port = url.port && !defaultPort ? `:${url.port}` : '';
  return `${scheme}//${url.hostname.toLowerCase()}${port}${url.pathname || '/'}`;
}

/**
 * The signature base string (§3.4.1): method, base URI and the normalised parameters (query,
 * form `params` and `oauth_*` ones, encoded, sorted by name then value, §3.4.1.3.2).
 */
export function signatureBaseString(method: string, url: string, oauthParams: Record<string, string>, params: ReadonlyArray<[string, string]> = []): string {
  const u = new URL(url);
  const all: Array<[string, string]> = [];
  for (const [k, v] of u.searchParams) all.push([percentEncode(k), percentEncode(v)]);
  for (const [k, v] of params) all.push([percentEncode(k), percentEncode(v)]);
  for (const [k, v] of Object.entries(oauthParams)) if (k !== 'oauth_signature') all.push([percentEncode(k), percentEncode(v)]);
  all.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  const normalised = all.map(([k, v]) => `${k}=${v}`).join('&');
  return [method.toUpperCase(), percentEncode(baseUri(u)), percentEncode(normalised)].join('&');
}

export interface OAuth1Request {
  method: string;
  /** The full request URL; its query parameters are signed. */
  url: string;
  consumerKey: string;
  consumerSecret: string;
  token: string;
  tokenSecret: string;
  /** Form-encoded body parameters, which RFC 5849 signs too (never a JSON body). */
  params?: ReadonlyArray<[string, string]>;
  /** Fixed only by tests; default 32 random hex characters. */
  nonce?: string;
  /** Epoch seconds; default now. */
  timestamp?: number;
}

/** The `Authorization` header value (`OAuth oauth_consumer_key="…", …, oauth_signature="…"`) for one request. */
export function oauth1Header(req: OAuth1Request): string {
  const oauth: Record<string, string> = {
    oauth_consumer_key: req.consumerKey,
    oauth_nonce: req.nonce ?? randomBytes(16).toString('hex'),
    oauth_signature_method: 'HMAC-SHA1',
    oauth_timestamp: String(req.timestamp ?? Math.floor(Date.now() / 1000)),
    oauth_token: req.token,
    oauth_version: '1.0',
  };
  const base = signatureBaseString(req.method, req.url, oauth, req.params);
  const key = `${percentEncode(req.consumerSecret)}&${percentEncode(req.tokenSecret)}`;
  oauth.oauth_signature = createHmac('sha1', key).update(base).digest('base64');
  return `OAuth ${Object.entries(oauth).map(([k, v]) => `${percentEncode(k)}="${percentEncode(v)}"`).join(', ')}`;
}
