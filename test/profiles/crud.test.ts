import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { profileModules } from './helpers.js';

eachDatabase('profiles: documents, ETags, delete/undelete', (dialect) => {
  const s = useServer(dialect, profileModules);
  let space = '';
  const url = (p = '') => `/apispaces/${space}/profiles${p}`;

  it('creates a profile: reserved fields dropped, phone normalised, ETag and audit fields', async () => {
    space = await s().createSpace();
    const res = await s().request({ method: 'POST', url: url(), payload: { id: 'jane', name: 'Jane', phoneNumber: '+44 7400 123456', _secret: 1, nested: { _x: 1, y: 2 } } });
    assert.equal(res.statusCode, 201, res.body);
    const p = res.json();
    assert.equal(p.phoneNumber, '447400123456');
    assert.equal(p.phoneNumberCountryCode, 'GB');
    assert.equal(p._secret, undefined);
    assert.deepEqual(p.nested, { y: 2 });
    assert.equal(p._createdBy, 'interactive:admin');
    assert.match(res.headers.etag as string, /^"0-[A-Za-z0-9_-]{16}"$/);
    assert.equal(res.headers.location, `/apispaces/${space}/profiles/jane`);
    // The UK way of writing the trunk prefix after the country code.
    const trunk = (await s().request({ method: 'POST', url: url(), payload: { id: 'trunk', phoneNumber: '+44 (0)7400 123456' } })).json();
    assert.equal(trunk.phoneNumber, '447400123456');
    assert.equal(trunk.phoneNumberCountryCode, 'GB');
    const dup = await s().request({ method: 'POST', url: url(), payload: { id: 'jane' } });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().code, 'AlreadyExists');
    const bad = await s().request({ method: 'POST', url: url(), payload: { id: 'Bulk' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().validationFailures[0].paramName, 'id');
    const dotted = await s().request({ method: 'POST', url: url(), payload: { id: 'x', 'a.b': 1 } });
    assert.equal(dotted.statusCode, 400);
    const big = await s().request({ method: 'POST', url: url(), payload: { id: 'big', blob: 'x'.repeat(70_000) } });
    assert.equal(big.statusCode, 400);
  });

  it('honours If-Match: stale → 412, fresh → 200 with a new ETag', async () => {
    const got = await s().request({ method: 'GET', url: url('/jane') });
    assert.equal(got.statusCode, 200);
    const etag = got.headers.etag as string;
    assert.ok(got.headers['last-modified']);
    const stale = await s().request({ method: 'PUT', url: url('/jane'), headers: { 'if-match': '"0-AAAAAAAAAAAAAAAA"' }, payload: { name: 'X' } });
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.json().code, 'PreconditionFailed');
    const put = await s().request({ method: 'PUT', url: url('/jane'), headers: { 'If-Match': etag }, payload: { id: 'jane', name: 'Jane D', email: 'jane@example.com' } });
    assert.equal(put.statusCode, 200, put.body);
    assert.notEqual(put.headers.etag, etag);
    assert.match(put.headers.etag as string, /^"1-/);
    assert.equal(put.json().phoneNumber, undefined);
    const again = await s().request({ method: 'PATCH', url: url('/jane'), headers: { 'if-match': etag }, payload: { a: 1 } });
    assert.equal(again.statusCode, 412);
    const patch = await s().request({ method: 'PATCH', url: url('/jane?deletes=email'), headers: { 'if-match': put.headers.etag as string }, payload: { loyalty: { tier: 'gold' } } });
    assert.equal(patch.statusCode, 200);
    assert.deepEqual(patch.json().loyalty, { tier: 'gold' });
    assert.equal(patch.json().email, undefined);
    assert.equal(patch.json().name, 'Jane D');
    const nested = await s().request({ method: 'PATCH', url: url('/jane?deletes=loyalty.tier,nope.x'), payload: { keep: 1 } });
    assert.deepEqual(nested.json().loyalty, {});
    assert.equal((await s().request({ method: 'GET', url: url('?loyalty.tier=gold') })).json().length, 0);
    const star = await s().request({ method: 'PATCH', url: url('/jane'), headers: { 'if-match': '*' }, payload: { b: null } });
    assert.equal(star.statusCode, 200);
    assert.equal(star.json().b, null);
    const mismatch = await s().request({ method: 'PUT', url: url('/jane'), payload: { id: 'other' } });
    assert.equal(mismatch.statusCode, 400);
  });

  it('keeps the ETag a write answered with, whatever order the database keeps the keys in', async () => {
    // PostgreSQL's jsonb stores keys shorter-first: a read gives them back in another order than
    // they were written in. The ETag of a write must still be the one reads show and If-Match takes.
    const created = await s().request({ method: 'POST', url: url(), payload: { id: 'keys', email: 'k@example.com', tier: 'gold', nested: { longer: 1, b: 2 } } });
    assert.equal(created.statusCode, 201, created.body);
    const got = await s().request({ method: 'GET', url: url('/keys') });
    assert.equal(got.headers.etag, created.headers.etag);
    const patched = await s().request({ method: 'PATCH', url: url('/keys'), headers: { 'if-match': created.headers.etag as string }, payload: { zz: 1, a: 2 } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal((await s().request({ method: 'GET', url: url('/keys') })).headers.etag, patched.headers.etag);
    const put = await s().request({ method: 'PUT', url: url('/keys'), headers: { 'if-match': patched.headers.etag as string }, payload: { id: 'keys', name: 'K', email: 'k@example.com' } });
    assert.equal(put.statusCode, 200, put.body);
    const list = await s().request({ method: 'GET', url: url('?id=keys') });
    assert.equal(list.statusCode, 200);
    assert.equal((await s().request({ method: 'GET', url: url('/keys') })).headers.etag, put.headers.etag);
  });

  it('PATCH allowcreate creates; without it 404', async () => {
    assert.equal((await s().request({ method: 'PATCH', url: url('/newbie'), payload: { a: 1 } })).statusCode, 404);
    const c = await s().request({ method: 'PATCH', url: url('/newbie?allowcreate=true'), payload: { a: 1 } });
    assert.equal(c.statusCode, 200);
    assert.match(c.headers.etag as string, /^"0-/);
  });

  it('soft-deletes, hides, and undeletes via PUT', async () => {
    await s().request({ method: 'POST', url: url(), payload: { id: 'sam', name: 'Sam' } });
    const del = await s().request({ method: 'DELETE', url: url('/sam'), headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: url('/sam') })).statusCode, 404);
    const withDeleted = await s().request({ method: 'GET', url: url('/sam?includeDeleted=true') });
    assert.equal(withDeleted.json()._deleted, true);
    assert.equal((await s().request({ method: 'PUT', url: url('/sam'), payload: { name: 'S' } })).statusCode, 404);
    assert.equal((await s().request({ method: 'POST', url: url(), payload: { id: 'sam' } })).statusCode, 409);
    const q = await s().request({ method: 'GET', url: url('?id=sam') });
    assert.deepEqual(q.json(), []);
    const undel = await s().request({ method: 'PUT', url: url('/sam?undelete=true') });
    assert.equal(undel.statusCode, 200, undel.body);
    assert.equal(undel.json().name, 'Sam');
    assert.equal(undel.json()._deleted, undefined);
    assert.equal((await s().request({ method: 'GET', url: url('?id=sam') })).json().length, 1);
    assert.equal((await s().request({ method: 'DELETE', url: url('/ghost') })).statusCode, 404);
    const forget = await s().request({ method: 'DELETE', url: url('/sam?forget=true') });
    assert.equal(forget.statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: url('/sam?includeDeleted=true') })).statusCode, 404);
    const names = await s().container.platform.db.selectFrom('events').select('name').where('api_space_id', '=', space).execute();
    assert.ok(names.some((e) => e.name === 'profile.undelete'));
    assert.ok(names.filter((e) => e.name === 'profile.delete').length >= 2);
  });

  it('lets a session token write only its own profile and an access token need prof:wa', async () => {
    const reader = await s().createToken(space, ['prof:ra']);
    assert.equal((await s().request({ method: 'GET', url: url('/jane'), token: reader })).statusCode, 200);
    assert.equal((await s().request({ method: 'PATCH', url: url('/jane'), token: reader, payload: { a: 1 } })).statusCode, 403);
    // The token's identity exists as a system profile, hidden from queries.
    const sys = await s().request({ method: 'GET', url: url('/test-bot') });
    assert.equal(sys.json()._systemProfile, true);
    assert.equal((await s().request({ method: 'GET', url: url('?id=test-bot') })).json().length, 0);
    assert.equal((await s().request({ method: 'GET', url: url('?id=test-bot&$includeSystem=true') })).json().length, 1);
  });

  it('lets a session read any profile but write only its own', async () => {
    const { credentials, platform } = s().container;
    credentials.setSessionCheck(async () => true);
    const account = (await platform.db.selectFrom('api_spaces').select('account_id').where('id', '=', space).executeTakeFirstOrThrow()).account_id;
    const token = credentials.issue({
      tokenType: 'session', jti: 'sess-1', sessionId: 'sess-1', sub: 'alice', profileId: 'alice', apiSpaceId: space, accountId: account,
      iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600,
    });
    const own = await s().request({ method: 'PATCH', url: url('/alice?allowcreate=true'), token, payload: { name: 'Alice' } });
    assert.equal(own.statusCode, 200, own.body);
    assert.equal(own.json()._createdBy, 'session:alice');
    const put = await s().request({ method: 'PUT', url: url('/alice'), token, headers: { 'if-match': own.headers.etag as string }, payload: { id: 'alice', name: 'Al' } });
    assert.equal(put.statusCode, 200);
    assert.equal((await s().request({ method: 'GET', url: url('/jane'), token })).statusCode, 200);
    assert.equal((await s().request({ method: 'GET', url: url('?name=Al'), token })).json()[0].id, 'alice');
    const other = await s().request({ method: 'PATCH', url: url('/jane'), token, payload: { hacked: true } });
    assert.equal(other.statusCode, 403);
    assert.equal((await s().request({ method: 'DELETE', url: url('/alice'), token })).statusCode, 403);
    assert.equal((await s().request({ method: 'POST', url: url(), token, payload: { id: 'x2' } })).statusCode, 403);
  });

  it('answers 409 when a concurrent write won the race, and runs delete hooks', async () => {
    const profiles = s().container.services.profiles;
    await s().request({ method: 'POST', url: url(), payload: { id: 'racer', v: 0 } });
    const base = await profiles.repo.loadOne(s().container.platform.db, space, 'racer');
    assert.ok(base);
    await s().container.platform.transaction((uow) => profiles.writer.save(uow, space, base, profiles.writer.bump(base, 'system', { data: { v: 1 } }), ['profile.update']));
    await assert.rejects(
      s().container.platform.transaction((uow) => profiles.writer.save(uow, space, base, profiles.writer.bump(base, 'system', { data: { v: 2 } }), ['profile.update'])),
      (err: { status?: number }) => err.status === 409,
    );
    assert.equal((await s().request({ method: 'GET', url: url('/racer') })).json().v, 1);
    const seen: string[] = [];
    profiles.onDeleted(async (_sp, id, forget) => void seen.push(`${id}:${forget}`));
    await s().request({ method: 'DELETE', url: url('/racer') });
    await s().request({ method: 'DELETE', url: url('/racer?forget=true') });
    assert.deepEqual(seen, ['racer:false', 'racer:true']);
  });
});
