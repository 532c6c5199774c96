import { SignJWT } from 'jose';
import type { TestServer } from '../helpers/harness.js';

export const ISSUER = 'https://idp.example.com';
export const AUDIENCE = 'switchboard-app';
export const SECRET = 'customer-shared-secret-0123456789';

/** Stores the space's auth configuration (the customer's identity provider settings). */
export async function configureAuth(s: TestServer, space: string, extra: Record<string, unknown> = {}): Promise<void> {
  const res = await s.request({ method: 'PUT', url: `/apispaces/${space}/auth`, payload: { issuer: ISSUER, audience: AUDIENCE, sharedSecret: SECRET, ...extra } });
  if (res.statusCode !== 200) throw new Error(`auth config: ${res.statusCode} ${res.body}`);
}

/** A JWT as the customer's identity provider would issue it. */
export function customerJwt(claims: Record<string, unknown>, opts: { secret?: string; alg?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

export interface StartedSession {
  token: string;
  session: { id: string; profileId: string; deviceId: string; isActive: boolean };
}

/** Runs the challenge flow for a profile and returns `{token, session}`. */
export async function startSession(s: TestServer, space: string, profileId: string, deviceId = `dev-${profileId}`): Promise<StartedSession> {
  const start = await s.request({ method: 'GET', url: `/apispaces/${space}/sessions/start`, token: null });
  if (start.statusCode !== 200) throw new Error(`start: ${start.statusCode} ${start.body}`);
  const { authenticationId, nonce } = start.json();
  const jwt = await customerJwt({ sub: profileId, nonce });
  const res = await s.request({
    method: 'POST', url: `/apispaces/${space}/sessions`, token: null,
    payload: { authenticationId, authenticationToken: jwt, deviceId, platform: 'javascript', platformVersion: 'Unknown', sdkType: 'native', sdkVersion: '1.3.0.46' },
  });
  if (res.statusCode !== 201) throw new Error(`session: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** Decodes a JWT payload the way the SDK does (atob + JSON.parse). */
export function sdkDecode(token: string): Record<string, unknown> {
  return JSON.parse(atob(token.split('.')[1]!));
}
