/**
 * Server configuration: the only module that reads the environment (conventions.md §12).
 * Parsed once at boot into a frozen object and injected everywhere else.
 */
import { availableParallelism } from 'node:os';

export interface Config {
  readonly port: number;
  readonly host: string;
  /** `postgres://…` selects PostgreSQL; anything else is a SQLite file path (`:memory:` allowed). */
  readonly databaseUrl: string;
  readonly dataDir: string;
  readonly publicBaseUrl: string;
  /** `kid:secret` pairs; the first signs, all verify. Empty → generated and kept in `dataDir`. */
  readonly tokenSigningKeys: readonly SigningKey[];
  /** Key material for encrypting secrets at rest. Empty → generated and kept in `dataDir`. */
  readonly installationSecret: string;
  readonly adminTokens: readonly string[];
  readonly redisUrl: string | undefined;
  readonly logLevel: string;
  readonly rateLimitPerCredential: number;
  readonly rateLimitPerSpace: number;
  readonly rateLimitSessionStartPerIp: number;
  /** Fastify `trustProxy`: false, true, or the proxies' addresses/CIDRs (client IP from X-Forwarded-For). */
  readonly trustProxy: boolean | string;
  readonly allowHttpWebhooks: boolean;
  readonly allowPrivateWebhookTargets: boolean;
  readonly allowPrivateChannelTargets: boolean;
  readonly bootstrapAccountId: number;
  readonly bootstrapAdminUsername: string;
  readonly bootstrapAdminPassword: string;
  readonly sessionTtlSeconds: number;
  readonly authChallengeTtlSeconds: number;
  readonly anonTokenTtlSeconds: number;
  readonly corsAllowedOrigins: readonly string[];
  readonly cpaasAliasEnabled: boolean;
  readonly webhookTimeoutSeconds: number;
  readonly defaultCurrency: string;
  readonly pnvOfflineStatus: string;
  /** Serve the optional legacy `POST /webapi/sms` endpoint (sms.md §9). */
  readonly legacySmsEnabled: boolean;
  /** Run the job workers in this process (off for API-only processes). */
  readonly workersEnabled: boolean;
  /** Run the workers on a worker thread of this process instead of its main thread (src/worker-thread.ts). */
  readonly workerThread: boolean;
  /** Nice value of the workers' thread (Linux): answering requests comes before dispatching when both want a core. */
  readonly workerThreadNice: number;
  readonly workerConcurrency: number;
  /** PostgreSQL connections per process. */
  readonly databasePoolSize: number;
  /** Upload MIME allow-list (`type/subtype` or `type/*`); undefined: the built-in list. */
  readonly contentTypes?: readonly string[];
  /** Origin for APNs instead of Apple's (both environments): a relay, or a test peer. */
  readonly apnsUrl?: string;
  /** Origin for FCM HTTP v1 instead of `https://fcm.googleapis.com`. */
  readonly fcmUrl?: string;
  /** Origin for the Meta Graph API (WhatsApp Cloud API) instead of `https://graph.facebook.com`. */
  readonly graphApiUrl?: string;
  /** Origin for the X API (twitterDm) instead of `https://api.x.com`. */
  readonly xApiUrl?: string;
  /** Origin for Google RCS Business Messaging instead of `https://rcsbusinessmessaging.googleapis.com`. */
  readonly rcsApiUrl?: string;
  /** Seconds between `GET /2/dm_events` polls of a twitterDm channel configured to poll. */
  readonly xPollIntervalSeconds: number;
}

export interface SigningKey {
  readonly kid: string;
  readonly secret: string;
}

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {}

function int(env: Env, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer in ${min}..${max}, got "${raw}"`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return def;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name} must be a boolean (1/true/yes or 0/false/no), got "${env[name]}"`);
}

/** true, false, or `auto` (the default): true when the machine has more than one core. */
function auto(env: Env, name: string, cores: number): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '' || raw === 'auto') return cores > 1;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name} must be auto or a boolean (1/true/yes or 0/false/no), got "${env[name]}"`);
}

function list(env: Env, name: string, def: string[] = []): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

/** `TRUST_PROXY`: a boolean, or a comma-separated list of proxy addresses/CIDRs. */
function trustProxy(env: Env): boolean | string {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw) return false;
  if (/^(1|true|yes|0|false|no)$/i.test(raw)) return bool(env, 'TRUST_PROXY', false);
  return raw.split(',').map((s) => s.trim()).filter(Boolean).join(',');
}

export function parseSigningKeys(raw: string): SigningKey[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((pair, i) => {
      const at = pair.indexOf(':');
      const key = at > 0 ? { kid: pair.slice(0, at), secret: pair.slice(at + 1) } : { kid: `k${i + 1}`, secret: pair };
      if (key.secret.length < 32) throw new ConfigError('TOKEN_SIGNING_KEYS secrets must be at least 32 characters');
      return key;
    });
}

/** An http(s) origin setting (scheme, host, port; no path). */
function origin(env: Env, name: string): string {
  const raw = env[name]!.trim();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name}: "${raw}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${name}: must be an http or https URL`);
  return url.origin;
}

/** `CONTENT_TYPES`: comma-separated `type/subtype` or `type/*`, lower-cased. */
function contentTypes(raw: string): string[] {
  const out = raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = out.find((t) => !/^[a-z0-9][\w.+-]*\/(\*|[a-z0-9][\w.+-]*)$/.test(t));
  if (bad) throw new ConfigError(`CONTENT_TYPES: "${bad}" is not a MIME type (type/subtype or type/*)`);
  return out;
}

/**
 * Builds the configuration from an environment map (defaults of conventions.md §12). `cores`: the
 * machine's (`os.availableParallelism()`), for the settings whose default depends on it.
 */
export function loadConfig(env: Env = process.env, cores = availableParallelism()): Config {
  const port = int(env, 'PORT', 8080, 0, 65535);
  const dataDir = env.DATA_DIR?.trim() || './data';
  const config: Config = {
    port,
    host: env.HOST?.trim() || '0.0.0.0',
    databaseUrl: env.DATABASE_URL?.trim() || `${dataDir.replace(/\/$/, '')}/switchboard.db`,
    dataDir,
    publicBaseUrl: (env.PUBLIC_BASE_URL?.trim() || `http://localhost:${port}`).replace(/\/$/, ''),
    tokenSigningKeys: env.TOKEN_SIGNING_KEYS ? parseSigningKeys(env.TOKEN_SIGNING_KEYS) : [],
    installationSecret: env.INSTALLATION_SECRET?.trim() ?? '',
    adminTokens: list(env, 'ADMIN_TOKENS'),
    redisUrl: env.REDIS_URL?.trim() || undefined,
    logLevel: env.LOG_LEVEL?.trim() || 'info',
    rateLimitPerCredential: int(env, 'RATE_LIMIT_PER_CREDENTIAL', 0),
    rateLimitPerSpace: int(env, 'RATE_LIMIT_PER_SPACE', 0),
    rateLimitSessionStartPerIp: int(env, 'RATE_LIMIT_SESSION_START_PER_IP', 20),
    trustProxy: trustProxy(env),
    allowHttpWebhooks: bool(env, 'ALLOW_HTTP_WEBHOOKS', false),
    allowPrivateWebhookTargets: bool(env, 'ALLOW_PRIVATE_WEBHOOK_TARGETS', false),
    allowPrivateChannelTargets: bool(env, 'ALLOW_PRIVATE_CHANNEL_TARGETS', false),
    bootstrapAccountId: int(env, 'BOOTSTRAP_ACCOUNT_ID', 1, 1),
    bootstrapAdminUsername: env.BOOTSTRAP_ADMIN_USERNAME?.trim() ?? '',
    bootstrapAdminPassword: env.BOOTSTRAP_ADMIN_PASSWORD ?? '',
    sessionTtlSeconds: int(env, 'SESSION_TTL_SECONDS', 86_400, 1),
    authChallengeTtlSeconds: int(env, 'AUTH_CHALLENGE_TTL_SECONDS', 600, 1),
    anonTokenTtlSeconds: int(env, 'ANON_TOKEN_TTL_SECONDS', 600, 1),
    corsAllowedOrigins: list(env, 'CORS_ALLOWED_ORIGINS', ['*']),
    cpaasAliasEnabled: bool(env, 'CPAAS_ALIAS_ENABLED', false),
    webhookTimeoutSeconds: int(env, 'WEBHOOK_TIMEOUT_SECONDS', 10, 1, 300),
    defaultCurrency: env.DEFAULT_CURRENCY?.trim() || 'GBP',
    pnvOfflineStatus: env.PNV_OFFLINE_STATUS?.trim() || 'On',
    legacySmsEnabled: bool(env, 'LEGACY_SMS_ENABLED', false),
    workersEnabled: bool(env, 'WORKERS_ENABLED', true),
    workerThread: auto(env, 'WORKER_THREAD', cores),
    workerThreadNice: int(env, 'WORKER_THREAD_NICE', 10, 0, 19),
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', 32, 1, 1024),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 20, 2, 500),
    ...(env.CONTENT_TYPES?.trim() ? { contentTypes: contentTypes(env.CONTENT_TYPES) } : {}),
    ...(env.APNS_URL?.trim() ? { apnsUrl: origin(env, 'APNS_URL') } : {}),
    ...(env.FCM_URL?.trim() ? { fcmUrl: origin(env, 'FCM_URL') } : {}),
    ...(env.GRAPH_API_URL?.trim() ? { graphApiUrl: origin(env, 'GRAPH_API_URL') } : {}),
    ...(env.X_API_URL?.trim() ? { xApiUrl: origin(env, 'X_API_URL') } : {}),
    ...(env.RCS_API_URL?.trim() ? { rcsApiUrl: origin(env, 'RCS_API_URL') } : {}),
    xPollIntervalSeconds: int(env, 'X_POLL_INTERVAL_SECONDS', 60, 1, 86_400),
  };
  return Object.freeze(config);
}

/** The configuration table shown in README.md, kept next to the parser so they stay in step. */
export const CONFIG_DOCS: ReadonlyArray<readonly [name: string, def: string, meaning: string]> = [
  ['PORT, HOST', '8080, 0.0.0.0', 'listen address'],
  ['DATABASE_URL', './data/switchboard.db', 'a postgres:// or postgresql:// URL selects PostgreSQL; anything else is a SQLite file path'],
  ['DATA_DIR', './data', 'generated keys, content store, other local files'],
  ['PUBLIC_BASE_URL', 'http://localhost:<PORT>', 'base for generated URLs (content url, token iss/aud, tracked links)'],
  ['TOKEN_SIGNING_KEYS', 'generated in DATA_DIR', 'HS256 keys as kid:secret,kid:secret; the first signs, all verify'],
  ['INSTALLATION_SECRET', 'generated in DATA_DIR', 'key material for encrypting stored secrets; set it (and TOKEN_SIGNING_KEYS) when several processes share one PostgreSQL'],
  ['ADMIN_TOKENS', 'empty', 'comma-separated static admin bearer tokens'],
  ['REDIS_URL', 'unset', 'enables Redis pub/sub fan-out between server processes'],
  ['LOG_LEVEL', 'info', 'pino level'],
  ['RATE_LIMIT_PER_CREDENTIAL, RATE_LIMIT_PER_SPACE', '0, 0', 'requests per second (burst 4x); 0 = off'],
  ['RATE_LIMIT_SESSION_START_PER_IP', '20', 'per-IP rate of the unauthenticated session-start endpoints'],
  ['TRUST_PROXY', 'false', 'true, or the reverse proxies\' addresses/CIDRs: take the client IP (per-IP limits, logs) from X-Forwarded-For'],
  ['ALLOW_HTTP_WEBHOOKS, ALLOW_PRIVATE_WEBHOOK_TARGETS', 'false', 'allow http:// and private/loopback webhook targets'],
  ['ALLOW_PRIVATE_CHANNEL_TARGETS', 'false', 'allow custom channels and HTTP gateways to reach private/loopback addresses'],
  ['BOOTSTRAP_ACCOUNT_ID, BOOTSTRAP_ADMIN_USERNAME, BOOTSTRAP_ADMIN_PASSWORD', '1, empty, empty', 'first account and its admin user'],
  ['SESSION_TTL_SECONDS', '86400', 'session token lifetime'],
  ['AUTH_CHALLENGE_TTL_SECONDS', '600', 'validity of a GET /sessions/start challenge'],
  ['ANON_TOKEN_TTL_SECONDS', '600', 'lifetime of anonymous JWTs'],
  ['CORS_ALLOWED_ORIGINS', '*', 'comma-separated allowed origins'],
  ['CPAAS_ALIAS_ENABLED', 'false', 'serve /cpaas/… as an alias of /apispaces/{id}/…'],
  ['WEBHOOK_TIMEOUT_SECONDS', '10', 'webhook request timeout'],
  ['DEFAULT_CURRENCY', 'GBP', 'billing currency'],
  ['PNV_OFFLINE_STATUS', 'On', 'phone validation status reported without a live lookup'],
  ['LEGACY_SMS_ENABLED', 'false', 'serve the legacy POST /webapi/sms endpoint (sms.md §9)'],
  ['WORKERS_ENABLED', 'true', 'run durable job workers in this process'],
  ['WORKER_THREAD', 'auto', 'run those workers on a worker thread with its own database connection (on PostgreSQL, half of DATABASE_POOL_SIZE each), so that serving requests and dispatching use two cores; `auto`: when the machine has more than one core'],
  ['WORKER_THREAD_NICE', '10', 'scheduling priority of the workers\' thread (Linux nice value, 0–19): when the API and the workers want the same core, answering requests comes first and dispatch takes what is left; 0 treats them alike'],
  ['WORKER_CONCURRENCY', '32', 'jobs run at once per process'],
  ['CONTENT_TYPES', 'built-in list', 'MIME types uploads may have (POST /content), comma-separated `type/subtype` or `type/*`; replaces the built-in list (images, audio, video, office documents, PDF, text, CSV, calendar, vCard, JSON, ZIP)'],
  ['APNS_URL, FCM_URL', 'Apple\'s and Google\'s', 'push endpoints (origins) to use instead of APNs (`https://api.push.apple.com`, `https://api.sandbox.push.apple.com`) and FCM (`https://fcm.googleapis.com`): a relay, or a test peer (`http://` speaks HTTP/2 without TLS to APNs)'],
  ['GRAPH_API_URL', 'https://graph.facebook.com', 'Meta Graph API origin for WhatsApp and Messenger (a relay, or a test peer)'],
  ['X_API_URL', 'https://api.x.com', 'X API origin for twitterDm: direct messages, media upload, dm_events polling (a relay, or a test peer)'],
  ['X_POLL_INTERVAL_SECONDS', '60', 'how often a twitterDm channel with `inbound: "poll"` reads GET /2/dm_events'],
  ['RCS_API_URL', 'https://rcsbusinessmessaging.googleapis.com', 'Google RCS Business Messaging origin for rcs (a relay, or a test peer); the OAuth token endpoint is the service account\'s `token_uri`'],
  ['DATABASE_POOL_SIZE', '20', 'PostgreSQL connections per process (split between the two threads with WORKER_THREAD); half of them may commit accepted messages at once (group commit)'],
];
