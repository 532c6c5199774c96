import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { moduleDefinitions } from '../../src/modules/index.js';
import { echoModule } from '../fixtures/echo-module.js';

const isErrorBody = (body: Record<string, unknown>, status: number, code: string) => {
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(typeof body.message, 'string');
  assert.equal(typeof body.requestId, 'string');
};

eachDatabase('HTTP transport and errors', (dialect) => {
  const s = useServer(dialect, { modules: [...moduleDefinitions, echoModule], start: false });
  let space: string;
  let items: string;
  before(async () => {
    space = await s().createSpace();
    items = `/apispaces/${space}/echo/Items`;
  });
  const json = { 'content-type': 'application/json' };

  it('malformed JSON → 400 InvalidJson', async () => {
    const res = await s().request({ method: 'POST', url: items, headers: json, payload: '{"name": ' });
    assert.equal(res.statusCode, 400);
    isErrorBody(res.json(), 400, 'InvalidJson');
    assert.match(res.headers['content-type'] as string, /^application\/json; charset=utf-8/);
  });

  it('invalid UTF-8 → 400 InvalidJson', async () => {
    const res = await s().request({ method: 'POST', url: items, headers: json, payload: Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) });
    assert.equal(res.statusCode, 400);
    isErrorBody(res.json(), 400, 'InvalidJson');
  });

  it('wrong types → 400 ValidationFailed with JSON paths', async () => {
    const res = await s().request({ method: 'POST', url: items, payload: { name: {}, count: 'x', to: { phoneNumber: [] }, parts: [{ type: 'a' }, { type: {} }] } });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    isErrorBody(body, 400, 'ValidationFailed');
    const names = body.validationFailures.map((f: { paramName: string }) => f.paramName).sort();
    assert.deepEqual(names, ['count', 'name', 'parts[1].type', 'to.phoneNumber']);
    const missing = await s().request({ method: 'POST', url: items, payload: {} });
    assert.deepEqual(missing.json().validationFailures.map((f: { paramName: string }) => f.paramName), ['name']);
    const query = await s().request({ method: 'GET', url: `${items}/a?limit=abc&flag=maybe` });
    assert.equal(query.statusCode, 400);
    assert.deepEqual(query.json().validationFailures.map((f: { paramName: string }) => f.paramName).sort(), ['query.flag', 'query.limit']);
  });

  it('a body-taking operation without a body → 400 ValidationFailed on "body"', async () => {
    for (const payload of [undefined, '']) {
      const res = await s().request({ method: 'POST', url: items, headers: json, ...(payload === undefined ? {} : { payload }) });
      assert.equal(res.statusCode, 400);
      isErrorBody(res.json(), 400, 'ValidationFailed');
      assert.equal(res.json().validationFailures[0].paramName, 'body');
    }
    const arr = await s().request({ method: 'POST', url: items, payload: [1, 2] });
    assert.equal(arr.statusCode, 400);
    assert.equal(arr.json().code, 'ValidationFailed');
  });

  it('unknown ids → 404; unknown API space → 404', async () => {
    const res = await s().request({ method: 'GET', url: `${items}/missing` });
    assert.equal(res.statusCode, 404);
    isErrorBody(res.json(), 404, 'NotFound');
    const other = await s().request({ method: 'GET', url: `/apispaces/00000000-0000-4000-8000-000000000000/echo/Items/a` });
    assert.equal(other.statusCode, 404);
  });

  it('oversize body → 413 PayloadTooLarge', async () => {
    const res = await s().request({ method: 'POST', url: items, headers: json, payload: JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) }) });
    assert.equal(res.statusCode, 413);
    isErrorBody(res.json(), 413, 'PayloadTooLarge');
  });

  it('unsupported media type → 415; JSON media types and no content type are accepted', async () => {
    const res = await s().request({ method: 'POST', url: items, headers: { 'content-type': 'text/plain' }, payload: 'name=x' });
    assert.equal(res.statusCode, 415);
    isErrorBody(res.json(), 415, 'UnsupportedMediaType');
    const form = await s().request({ method: 'POST', url: items, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=x' });
    assert.equal(form.statusCode, 415);
    for (const type of ['application/json; charset=UTF-8', 'application/vnd.switchboard+json', 'APPLICATION/JSON']) {
      const ok = await s().request({ method: 'POST', url: items, headers: { 'content-type': type }, payload: '{"name":"x"}' });
      assert.equal(ok.statusCode, 201, type);
    }
    const none = await s().request({ method: 'POST', url: items, payload: '{"name":"x"}' });
    assert.equal(none.statusCode, 201);
  });

  it('known path, wrong method → 405 with Allow; unknown path → 404', async () => {
    const res = await s().request({ method: 'PATCH', url: `${items}/abc` });
    assert.equal(res.statusCode, 405);
    isErrorBody(res.json(), 405, 'MethodNotAllowed');
    assert.equal(res.headers.allow, 'GET, DELETE');
    const slash = await s().request({ method: 'PUT', url: `${items.toLowerCase()}/` });
    assert.equal(slash.statusCode, 405);
    assert.equal(slash.headers.allow, 'POST');
    const unknown = await s().request({ method: 'GET', url: '/nothing/here' });
    assert.equal(unknown.statusCode, 404);
    isErrorBody(unknown.json(), 404, 'NotFound');
  });

  it('GET and DELETE with Content-Type: application/json and an empty body work', async () => {
    const get = await s().request({ method: 'GET', url: `${items}/a`, headers: { ...json, 'content-length': '0' } });
    assert.equal(get.statusCode, 200);
    const del = await s().request({ method: 'DELETE', url: `${items}/a`, headers: json });
    assert.equal(del.statusCode, 204);
    const delBody = await s().request({ method: 'DELETE', url: `${items}/a`, headers: json, payload: '' });
    assert.equal(delBody.statusCode, 204);
    const getGarbage = await s().request({ method: 'GET', url: `${items}/a`, headers: json, payload: '{oops' });
    assert.equal(getGarbage.statusCode, 200, 'bodies on GET are ignored');
    const getText = await s().request({ method: 'GET', url: `${items}/a`, headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    assert.equal(getText.statusCode, 200);
    const delText = await s().request({ method: 'DELETE', url: `${items}/a`, headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    assert.equal(delText.statusCode, 204, 'bodies on DELETE are ignored');
  });

  it('CORS preflight and response headers', async () => {
    const pre = await s().request({ method: 'OPTIONS', url: `${items}/a`, token: null, headers: { origin: 'https://app.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization,content-type,if-match' } });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
    assert.match(pre.headers['access-control-allow-headers'] as string, /authorization, content-type, cache-control, pragma, if-modified-since, if-match, content-filename, idempotency-key, x-request-id/);
    assert.equal(pre.headers['access-control-max-age'], '600');
    assert.equal(pre.headers['access-control-allow-credentials'], undefined);
    const unknownPre = await s().request({ method: 'OPTIONS', url: '/apispaces/whatever/else', token: null, headers: { origin: 'https://x.example' } });
    assert.equal(unknownPre.statusCode, 204);
    const get = await s().request({ method: 'GET', url: `${items}/a`, headers: { origin: 'https://app.example' } });
    assert.equal(get.headers['access-control-allow-origin'], 'https://app.example');
    for (const h of ['ETag', 'Last-Modified', 'Location', 'X-Request-Id', 'X-Total-Count', 'Retry-After']) {
      assert.ok((get.headers['access-control-expose-headers'] as string).includes(h), h);
    }
    assert.equal(get.headers['access-control-allow-credentials'], undefined);
    const err = await s().request({ method: 'GET', url: `${items}/a`, token: null, headers: { origin: 'https://app.example' } });
    assert.equal(err.statusCode, 401);
    assert.equal(err.headers['access-control-allow-origin'], 'https://app.example');
  });

  it('X-Request-Id is echoed (and used in error bodies) or generated', async () => {
    const res = await s().request({ method: 'GET', url: `${items}/missing`, headers: { 'x-request-id': 'abc-123' } });
    assert.equal(res.headers['x-request-id'], 'abc-123');
    assert.equal(res.json().requestId, 'abc-123');
    const fresh = await s().request({ method: 'GET', url: `${items}/a`, headers: { 'x-request-id': 'has space' } });
    assert.match(fresh.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
    const long = await s().request({ method: 'GET', url: `${items}/a`, headers: { 'x-request-id': 'x'.repeat(129) } });
    assert.notEqual(long.headers['x-request-id'], 'x'.repeat(129));
  });

  it('routing: trailing slash, case-insensitive static segments, params keep their case, percent-decoded once', async () => {
    const res = await s().request({ method: 'GET', url: `${items.replace('/echo/Items', '/ECHO/items')}/AbC%2520d/` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().params.itemId, 'AbC%20d');
    const upperSpace = await s().request({ method: 'GET', url: `/APISPACES/${space.toUpperCase()}/echo/items/X` });
    assert.equal(upperSpace.statusCode, 200);
  });

  it('query strings: + is literal, %20 a space, repeated and comma-separated arrays, booleans, trailing &', async () => {
    const res = await s().request({ method: 'GET', url: `${items}/a?q=jo+test@example.com&id=a&id=b,c&flag=TRUE&` });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json().query, { q: 'jo+test@example.com', id: ['a', 'b', 'c'], flag: true });
    const single = await s().request({ method: 'GET', url: `${items}/a?id=x%20y&flag=0` });
    assert.deepEqual(single.json().query, { id: ['x y'], flag: false });
    const comma = await s().request({ method: 'GET', url: `${items}/a?id=a,b&flag=1` });
    assert.deepEqual(comma.json().query, { id: ['a', 'b'], flag: true });
    const bad = await s().request({ method: 'GET', url: `${items}/a?flag=yes` });
    assert.equal(bad.statusCode, 400);
  });

  it('Cache-Control: no-store on API responses, errors included; never 304', async () => {
    const res = await s().request({ method: 'GET', url: `${items}/a`, headers: { 'if-modified-since': 'Mon, 26 Jul 1997 05:00:00 GMT', 'cache-control': 'no-cache', pragma: 'no-cache' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const err = await s().request({ method: 'GET', url: '/nothing' });
    assert.equal(err.headers['cache-control'], 'no-store');
  });

  it('HEAD is served for GET routes, with auth', async () => {
    const res = await s().request({ method: 'HEAD', url: `${items}/a` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, '');
    const anon = await s().request({ method: 'HEAD', url: `${items}/a`, token: null });
    assert.equal(anon.statusCode, 401);
    const space404 = await s().request({ method: 'HEAD', url: `/apispaces/${space}` });
    assert.equal(space404.statusCode, 200);
  });

  it('401 without credentials, with the error body and WWW-Authenticate', async () => {
    const res = await s().request({ method: 'GET', url: `${items}/a`, token: null });
    assert.equal(res.statusCode, 401);
    isErrorBody(res.json(), 401, 'Unauthorized');
    const junk = await s().request({ method: 'GET', url: `${items}/a`, token: 'junk' });
    assert.equal(junk.statusCode, 401);
  });

  it('bad percent-encoding, NUL characters and over-long path params → 400 with the error body', async () => {
    for (const url of [`${items}/%E0%A4%A`, `${items}/a%00b`, `${items}/a?q=x%00`, `${items}/${'y'.repeat(2000)}`]) {
      const res = await s().request({ method: 'GET', url, headers: { 'x-request-id': 'bad-url' } });
      assert.equal(res.statusCode, 400, url.slice(0, 80));
      isErrorBody(res.json(), 400, 'ValidationFailed');
      assert.equal(res.headers['x-request-id'], 'bad-url');
    }
  });
});
