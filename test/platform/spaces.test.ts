import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';

eachDatabase('API spaces and access tokens', (dialect) => {
  const s = useServer(dialect);

  it('creates, reads, updates with If-Match and deletes a space', async () => {
    const created = await s().request({ method: 'POST', url: '/apispaces', payload: { name: 'Shop' } });
    assert.equal(created.statusCode, 201);
    const space = created.json();
    assert.match(space.id, /^[0-9a-f-]{36}$/);
    assert.equal(space.name, 'Shop');
    const etag = created.headers.etag as string;
    assert.ok(etag.startsWith('"'));
    const got = await s().request({ method: 'GET', url: `/apispaces/${space.id.toUpperCase().replace(/-/g, '')}` });
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers.etag, etag);
    const stale = await s().request({ method: 'PUT', url: `/apispaces/${space.id}`, headers: { 'if-match': '"0-nope"' }, payload: { name: 'X' } });
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.json().code, 'PreconditionFailed');
    const put = await s().request({ method: 'PUT', url: `/apispaces/${space.id}`, headers: { 'if-match': etag }, payload: { name: 'Shop 2' } });
    assert.equal(put.statusCode, 200);
    assert.equal(put.json().name, 'Shop 2');
    const del = await s().request({ method: 'DELETE', url: `/apispaces/${space.id}`, headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space.id}` })).statusCode, 404);
  });

  it('keeps a token of space A out of space B', async () => {
    const a = await s().createSpace('A');
    const b = await s().createSpace('B');
    const token = await s().createToken(a, ['apis:ro', 'prof:ra']);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}`, token })).statusCode, 200);
    const other = await s().request({ method: 'GET', url: `/apispaces/${b}`, token });
    assert.equal(other.statusCode, 403);
    assert.equal(other.json().code, 'Forbidden');
    const list = await s().request({ method: 'GET', url: '/apispaces', token });
    assert.deepEqual(list.json().map((x: { id: string }) => x.id), [a]);
  });

  it('revokes access tokens', async () => {
    const a = await s().createSpace('R');
    const created = await s().request({ method: 'POST', url: `/apispaces/${a}/accesstokens`, payload: { name: 'ci', profileId: 'bot', template: 'oneapi-all' } });
    assert.equal(created.statusCode, 201);
    const { id, token } = created.json();
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}`, token })).statusCode, 403);
    const revoke = await s().request({ method: 'DELETE', url: `/apispaces/${a}/accesstokens/${id}` });
    assert.equal(revoke.statusCode, 204);
    const after = await s().request({ method: 'GET', url: `/apispaces/${a}`, token });
    assert.equal(after.statusCode, 401);
    const record = await s().request({ method: 'GET', url: `/apispaces/${a}/accesstokens/${id}` });
    assert.equal(record.json().revoked, true);
  });

  it('stores the auth configuration with a masked secret', async () => {
    const a = await s().createSpace('Auth');
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/auth` })).statusCode, 404);
    const put = await s().request({ method: 'PUT', url: `/apispaces/${a}/auth`, payload: { issuer: 'https://idp', audience: 'app', sharedSecret: 'a-very-secret-value-c0d3' } });
    assert.equal(put.statusCode, 200);
    assert.equal(put.json().sharedSecret, '********c0d3');
    assert.equal(put.json().idClaim, 'sub');
    const got = await s().request({ method: 'GET', url: `/apispaces/${a}/auth` });
    assert.deepEqual(got.json(), put.json());
  });
});
