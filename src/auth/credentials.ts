import type { Config, SigningKey } from '../config/config.js';
import type { Db } from '../storage/db.js';
import type { Clock } from '../lib/clock.js';
import type { EventBus } from '../events/bus.js';
import { TtlCache } from '../lib/cache.js';
import { iso } from '../lib/clock.js';
import { secretMatcher } from '../lib/secrets.js';
import { normaliseSpaceId } from '../lib/ids.js';
import { verifyJwt, signJwt, type JwtClaims } from './jwt.js';
import type { Actor } from './actor.js';

/** Checks a session is still live (provided by the App Messaging module; absent → sessions refused). */
export type SessionCheck = (apiSpaceId: string, sessionId: string) => Promise<boolean>;

export interface Credentials {
  /** Resolves an `Authorization` header value to an actor, or undefined (→ 401). */
  authenticate(authorization: string | undefined): Promise<Actor | undefined>;
  /** Resolves an already extracted bearer token (websocket `?token=`). */
  authenticateToken(token: string): Promise<Actor | undefined>;
  issue(claims: Record<string, unknown>): string;
  setSessionCheck(check: SessionCheck): void;
  /** Forget cached validity (after revoking a token or deleting a user), in every process. */
  invalidate(kind: 'access' | 'user' | 'session', id: string): void;
}

const INVALIDATE = 'auth.invalidate';
/** `lastUsedOn` of an access token is written at most this often per token and process. */
export const LAST_USED_RESOLUTION_MS = 60_000;

export function createCredentials(deps: { config: Config; db: Db; clock: Clock; bus: EventBus; signingKeys: readonly SigningKey[] }): Credentials {
  const { config, db, clock, bus, signingKeys } = deps;
  const cache = new TtlCache<string, boolean>(5_000, 50_000, () => clock.now());
  let sessionCheck: SessionCheck | undefined;
  bus.subscribe(INVALIDATE, (m) => cache.delete(String(m)));
  // Tokens whose use was recorded less than a minute ago (bounded; old entries simply expire).
  const recentlyRecorded = new TtlCache<string, true>(LAST_USED_RESOLUTION_MS, 100_000, () => clock.now());

  /** Records `lastUsedOn` (spaces-and-billing.md §6.2) after the response path, not on it. */
  function noteUse(jti: string): void {
    if (recentlyRecorded.get(jti)) return;
    recentlyRecorded.set(jti, true);
    const usedOn = iso(clock.now());
    setImmediate(() => {
      db.updateTable('access_tokens').set({ last_used_on: usedOn }).where('id', '=', jti)
        .where((eb) => eb.or([eb('last_used_on', 'is', null), eb('last_used_on', '<', usedOn)]))
        .execute()
        .catch(() => recentlyRecorded.delete(jti)); // e.g. shutting down: try again on the next use
    });
  }

  async function accessTokenLive(jti: string, spaceId: string): Promise<boolean> {
    const key = `access:${jti}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const row = await db.selectFrom('access_tokens').select(['revoked', 'api_space_id']).where('id', '=', jti).executeTakeFirst();
    const ok = !!row && row.revoked === 0 && row.api_space_id === spaceId;
    cache.set(key, ok);
    return ok;
  }

  async function userLive(username: string, accountId: number, gen: number): Promise<'admin' | 'agent' | undefined> {
    const key = `user:${username}:${gen}`;
    const row = await db
      .selectFrom('users')
      .select(['role', 'token_generation', 'deleted', 'account_id'])
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row || row.deleted || row.account_id !== accountId || row.token_generation !== gen) {
      cache.set(key, false);
      return undefined;
    }
    return row.role;
  }

  // A token's signature is checked at most once a minute per process: verifying (an HMAC and two
  // JSON parses) costs more than the rest of authenticating a request. Expiry is checked every time.
  // An access token's permission set is made once, with the claims it comes from.
  interface Verified { claims: Readonly<JwtClaims>; permissions: ReadonlySet<string> }
  const verified = new TtlCache<string, Verified>(60_000, 10_000, () => clock.now());
  function verify(token: string): Verified | undefined {
    const nowSeconds = Math.floor(clock.now() / 1000);
    const hit = verified.get(token);
    if (hit) return hit.claims.exp !== undefined && hit.claims.exp <= nowSeconds ? undefined : hit;
    const claims = verifyJwt(token, signingKeys, nowSeconds);
    if (!claims) return undefined;
    const entry: Verified = { claims: Object.freeze(claims), permissions: new Set(Array.isArray(claims.permissions) ? claims.permissions.map(String) : []) };
    verified.set(token, entry);
    return entry;
  }

  async function fromClaims(token: string): Promise<Actor | undefined> {
    const found = verify(token);
    if (!found) return undefined;
    const { claims } = found;
    const accountId = Number(claims.accountId);
    if (!Number.isInteger(accountId)) return undefined;
    switch (claims.tokenType) {
      case 'user': {
        const username = String(claims.sub ?? '');
        const role = await userLive(username, accountId, Number(claims.gen ?? 0));
        if (!role) return undefined;
        return { kind: 'user', accountId, role, username, actor: `interactive:${username}` };
      }
      case 'access': {
        const jti = String(claims.jti ?? '');
        const spaceId = normaliseSpaceId(String(claims.apiSpaceId ?? ''));
        if (!spaceId || !(await accessTokenLive(jti, spaceId))) return undefined;
        noteUse(jti);
        return { kind: 'access', accountId, apiSpaceId: spaceId, apiSpaceIdRaw: String(claims.apiSpaceId), profileId: String(claims.profileId ?? ''), permissions: found.permissions, tokenId: jti, actor: `access:${jti}` };
      }
      case 'session': {
        const sessionId = String(claims.sessionId ?? claims.jti ?? '');
        const spaceId = normaliseSpaceId(String(claims.apiSpaceId ?? ''));
        if (!spaceId || !sessionCheck || !(await sessionCheck(spaceId, sessionId))) return undefined;
        const profileId = String(claims.profileId ?? claims.sub ?? '');
        return { kind: 'session', accountId, apiSpaceId: spaceId, apiSpaceIdRaw: String(claims.apiSpaceId), profileId, sessionId, tokenId: sessionId, actor: `session:${profileId}` };
      }
      default:
        return undefined;
    }
  }

  const isAdminToken = secretMatcher(config.adminTokens);

  async function authenticateToken(token: string): Promise<Actor | undefined> {
    if (!token) return undefined;
    if (isAdminToken(token)) return { kind: 'admin', accountId: config.bootstrapAccountId, role: 'admin', username: 'admin', actor: 'interactive:admin' };
    return fromClaims(token);
  }

  return {
    async authenticate(authorization) {
      if (!authorization) return undefined;
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m) return undefined;
      return authenticateToken(m[1]!);
    },
    authenticateToken,
    issue: (claims) => signJwt(claims, signingKeys[0]!),
    setSessionCheck(check) {
      sessionCheck = check;
    },
    invalidate(kind, id) {
      const key = `${kind}:${id}`;
      cache.delete(key);
      bus.publish(INVALIDATE, key);
    },
  };
}
