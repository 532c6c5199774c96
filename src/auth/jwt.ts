import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SigningKey } from '../config/config.js';

/**
 * HS256 compact JWTs for the tokens the server issues. The payload is serialised so that its
 * base64url form never contains `-` or `_`: the vendor SDK decodes it with `atob()`, which rejects
 * both (conventions.md §3.5). Every non-ASCII character and `>`, `?`, `~`, DEL are escaped.
 */
export function encodeClaims(claims: object): string {
  const json = JSON.stringify(claims).replace(/[\u007f-\uffff>?~]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  const segment = Buffer.from(json, 'utf8').toString('base64url');
  if (segment.includes('-') || segment.includes('_')) throw new Error('JWT payload segment is not atob-safe');
  return segment;
}

function hmac(secret: string, input: string): Buffer {
  return createHmac('sha256', secret).update(input).digest();
}

export function signJwt(claims: object, key: SigningKey): string {
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid })).toString('base64url');
  const input = `${header}.${encodeClaims(claims)}`;
  return `${input}.${hmac(key.secret, input).toString('base64url')}`;
}

export type JwtClaims = Record<string, unknown> & { exp?: number; iat?: number; jti?: string; tokenType?: string };

/**
 * Verifies signature (by `kid`, any configured key) and `exp`. Returns the claims, or undefined for
 * anything malformed, unsigned by us, or expired.
 */
export function verifyJwt(token: string, keys: readonly SigningKey[], nowSeconds: number): JwtClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  let header: { alg?: string; kid?: string };
  let claims: JwtClaims;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (header.alg !== 'HS256' || typeof claims !== 'object' || claims === null) return undefined;
  const candidates = header.kid ? keys.filter((k) => k.kid === header.kid) : keys;
  const sig = Buffer.from(s, 'base64url');
  const ok = candidates.some((k) => {
    const expected = hmac(k.secret, `${h}.${p}`);
    return expected.length === sig.length && timingSafeEqual(expected, sig);
  });
  if (!ok) return undefined;
  if (claims.exp !== undefined && (typeof claims.exp !== 'number' || claims.exp <= nowSeconds)) return undefined;
  return claims;
}
