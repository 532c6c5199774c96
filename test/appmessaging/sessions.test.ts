import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { configureAuth, customerJwt, sdkDecode, startSession } from './helpers.js';

eachDatabase('App Messaging sessions', (dialect) => {
  const s = useServer(dialect);
  let space = '';
  const url = (p: string) => `/apispaces/${space}${p}`;

  it('answers a challenge and starts a session the SDK can decode', async () => {
    space = await s().createSpace('am');
    await configureAuth(s(), space);
    const start = await s().request({ method: 'GET', url: url('/sessions/start'), token: null, headers: { 'content-type': 'application/json' } });
    assert.equal(start.statusCode, 200);
    const challenge = start.json();
    assert.equal(challenge.provider, 'jsonWebToken');
    assert.match(challenge.nonce, /^[0-9a-f]{32}$/);
    assert.ok(challenge.authenticationId && challenge.expiresOn);

    const { token, session } = await startSession(s(), space, 'Zoë>?~');
    assert.equal(token.split('.').length, 3);
    assert.ok(!/[-_]/.test(token.split('.')[1]!), 'payload segment is atob-safe');
    const claims = sdkDecode(token);
    assert.equal(claims.apiSpaceId, space);
    assert.equal(claims.profileId, 'Zoë>?~');
    assert.ok(Number(claims.exp) > Date.now() / 1000);
    assert.equal(session.profileId, 'Zoë>?~');
    assert.equal(session.isActive, true);

    const got = await s().request({ method: 'GET', url: url(`/sessions/${session.id}`), token, headers: { 'content-type': 'application/json' } });
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().createdOn, got.json().startedOn);
  });

  it('keeps the space id form of the path in the token', async () => {
    const upper = space.toUpperCase();
    const start = await s().request({ method: 'GET', url: `/apispaces/${upper}/sessions/start`, token: null });
    const { authenticationId, nonce } = start.json();
    const res = await s().request({ method: 'POST', url: `/apispaces/${upper}/sessions`, token: null,
      payload: { authenticationId, authenticationToken: await customerJwt({ sub: 'upper', nonce }), deviceId: 'd', platform: 'javascript' } });
    assert.equal(res.statusCode, 201);
    assert.equal(sdkDecode(res.json().token).apiSpaceId, upper);
  });

  it('rejects bad JWTs, reused challenges and unknown spaces', async () => {
    const attempt = async (claims: Record<string, unknown>, opts: { secret?: string; alg?: string } = {}, reuse?: { authenticationId: string; nonce: string }) => {
      const c: { authenticationId: string; nonce: string } = reuse ?? (await s().request({ method: 'GET', url: url('/sessions/start'), token: null })).json();
      const jwt = await customerJwt({ sub: 'mallory', nonce: c.nonce, ...claims }, opts);
      return s().request({ method: 'POST', url: url('/sessions'), token: null, payload: { authenticationId: c.authenticationId, authenticationToken: jwt, deviceId: 'd', platform: 'javascript' } });
    };
    for (const [claims, opts] of [
      [{ nonce: 'wrong' }, {}], [{ iss: 'https://other' }, {}], [{ aud: 'other' }, {}], [{ exp: Math.floor(Date.now() / 1000) - 120 }, {}],
      [{}, { secret: 'another-secret-0123456789abcdef' }], [{ sub: '' }, {}], [{ sub: 'a/b' }, {}],
    ] as Array<[Record<string, unknown>, { secret?: string }]>) {
      const res = await attempt(claims, opts);
      assert.equal(res.statusCode, 403, JSON.stringify(claims));
      assert.equal(res.json().code, 'InvalidJwt');
      assert.equal(res.json().message, 'Invalid JWT');
    }
    const c = (await s().request({ method: 'GET', url: url('/sessions/start'), token: null })).json();
    assert.equal((await attempt({}, {}, c)).statusCode, 201);
    const again = await attempt({}, {}, c);
    assert.equal(again.statusCode, 403);
    assert.equal(again.json().code, 'InvalidAuthentication');
    // a number id claim becomes its decimal text; an array audience containing ours passes
    const num = await attempt({ sub: 42, aud: ['x', 'switchboard-app'] });
    assert.equal(num.statusCode, 201);
    assert.equal(num.json().session.profileId, '42');
    const missing = await s().request({ method: 'POST', url: url('/sessions'), token: null, payload: { authenticationId: 'x' } });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().code, 'ValidationFailed');
    const unknown = await s().request({ method: 'GET', url: '/apispaces/00000000-0000-4000-8000-000000000000/sessions/start', token: null });
    assert.equal(unknown.statusCode, 404);
  });

  it('answers AuthNotConfigured for a space without auth configuration', async () => {
    const bare = await s().createSpace('bare');
    const c = (await s().request({ method: 'GET', url: `/apispaces/${bare}/sessions/start`, token: null })).json();
    const res = await s().request({ method: 'POST', url: `/apispaces/${bare}/sessions`, token: null,
      payload: { authenticationId: c.authenticationId, authenticationToken: await customerJwt({ sub: 'x', nonce: c.nonce }), deviceId: 'd', platform: 'javascript' } });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().code, 'AuthNotConfigured');
  });

  it('ends a session: its token gets 401, other readers see isActive false', async () => {
    const { token, session } = await startSession(s(), space, 'ender');
    const other = await startSession(s(), space, 'ender');
    const foreign = await s().request({ method: 'GET', url: url(`/sessions/${other.session.id}`), token });
    assert.equal(foreign.statusCode, 403);
    const del = await s().request({ method: 'DELETE', url: url(`/sessions/${session.id}`), token, headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 204);
    const after = await s().request({ method: 'GET', url: url(`/sessions/${session.id}`), token });
    assert.equal(after.statusCode, 401);
    const admin = await s().request({ method: 'GET', url: url(`/sessions/${session.id}`) });
    assert.equal(admin.json().isActive, false);
    assert.equal((await s().request({ method: 'DELETE', url: url(`/sessions/${session.id}`) })).statusCode, 204);
    // the other session of the same profile and device is unaffected
    assert.equal((await s().request({ method: 'GET', url: url(`/sessions/${other.session.id}`), token: other.token })).statusCode, 200);
  });

  it('registers and removes push details', async () => {
    const { token, session } = await startSession(s(), space, 'pusher');
    const both = await s().request({ method: 'PUT', url: url(`/sessions/${session.id}/push`), token,
      payload: { fcm: { package: 'p', registrationId: 'r' }, apns: { bundleId: 'b', environment: 'production', token: 't' } } });
    assert.equal(both.statusCode, 400);
    const put = await s().request({ method: 'PUT', url: url(`/sessions/${session.id}/push`), token, payload: { fcm: { package: 'com.example', registrationId: 'reg-1' } } });
    assert.equal(put.statusCode, 204);
    // the same push token registered by another user's session moves there
    const other = await startSession(s(), space, 'pusher2');
    await s().request({ method: 'PUT', url: url(`/sessions/${other.session.id}/push`), token: other.token, payload: { fcm: { package: 'com.example', registrationId: 'reg-1' } } });
    assert.equal((await s().request({ method: 'GET', url: url(`/sessions/${session.id}`), token })).json().push, undefined);
    const devices = await s().container.services.profiles.devices(space, 'pusher');
    assert.equal(devices.find((d) => d.deviceId === session.deviceId)?.push, undefined);
    await s().request({ method: 'PUT', url: url(`/sessions/${session.id}/push`), token, payload: { fcm: { package: 'com.example', registrationId: 'reg-1' } } });
    assert.deepEqual((await s().request({ method: 'GET', url: url(`/sessions/${session.id}`), token })).json().push, { fcm: { package: 'com.example', registrationId: 'reg-1' } });
    const del = await s().request({ method: 'DELETE', url: url(`/sessions/${session.id}/push`), token, headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: url(`/sessions/${session.id}`), token })).json().push, undefined);
  });

  it('mints anonymous tokens that pass the session flow', async () => {
    const c = (await s().request({ method: 'GET', url: url('/sessions/start'), token: null })).json();
    const anon = await s().request({ method: 'GET', url: url(`/sessions/tokens/anon?id=visitor-1&nonce=${c.nonce}`), token: null });
    assert.equal(anon.statusCode, 200);
    const res = await s().request({ method: 'POST', url: url('/sessions'), token: null, payload: { authenticationId: c.authenticationId, authenticationToken: anon.json().token, deviceId: 'w', platform: 'javascript' } });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json().session.profileId, 'anon_visitor-1');
    assert.equal((await s().request({ method: 'GET', url: url('/sessions/tokens/anon?id=x'), token: null })).statusCode, 400);
    await configureAuth(s(), space, { allowAnonymous: false });
    const off = await s().request({ method: 'GET', url: url(`/sessions/tokens/anon?id=v&nonce=${c.nonce}`), token: null });
    assert.equal(off.json().code, 'AnonymousSessionsDisabled');
    await configureAuth(s(), space);
  });

  it('creates the profile on first sign-in, ends its sessions on deletion and refuses it afterwards', async () => {
    const first = await startSession(s(), space, 'newcomer');
    const profile = await s().request({ method: 'GET', url: url('/profiles/newcomer') });
    assert.equal(profile.statusCode, 200);
    assert.equal(profile.json().id, 'newcomer');
    assert.equal((await s().request({ method: 'DELETE', url: url('/profiles/newcomer') })).statusCode, 204);
    let status = 0;
    for (let i = 0; i < 40 && status !== 401; i++) {
      status = (await s().request({ method: 'GET', url: url(`/sessions/${first.session.id}`), token: first.token })).statusCode;
      if (status !== 401) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(status, 401);
    await assert.rejects(startSession(s(), space, 'newcomer'), /403.*ProfileDeleted/);
  });

  it('expires sessions through the sweep', async () => {
    const { token, session } = await startSession(s(), space, 'sleeper');
    await s().container.platform.db.updateTable('am_sessions').set({ expires_at: Date.now() - 1000 }).where('id', '=', session.id).execute();
    s().container.services.spaces.invalidate(space); // cold caches: the sweep must not read outside its transaction
    const n = await s().container.services.appMessaging.sessions.sweep();
    assert.ok(n >= 1);
    assert.equal((await s().request({ method: 'GET', url: url(`/sessions/${session.id}`), token })).statusCode, 401);
  });
});
