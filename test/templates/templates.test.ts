import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';

const parts = [
  { type: 'text/plain', data: 'Hi {{profile.firstName}}, your order is on its way.' },
  { type: 'image/png', url: 'https://cdn.example.com/van.png', channels: ['fbMessenger', 'whatsApp'] },
];

eachDatabase('templates', (dialect) => {
  const s = useServer(dialect);

  it('creates with a derived id, reads, updates with If-Match, soft-deletes', async () => {
    const space = await s().createSpace();
    const base = `/apispaces/${space}/templates`;
    const created = await s().request({ method: 'POST', url: base, payload: { name: 'Order shipped!', description: 'Shipping', messageParts: parts } });
    assert.equal(created.statusCode, 201, created.body);
    const t = created.json();
    assert.equal(t.id, 'Ordershipped');
    assert.deepEqual(t.messageParts, parts);
    assert.equal(t._createdBy, 'interactive:admin');
    assert.equal(created.headers['last-modified'], t._updatedOn);
    const etag = created.headers.etag as string;

    const got = await s().request({ method: 'GET', url: `${base}/Ordershipped` });
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers.etag, etag);
    assert.deepEqual(await s().container.services.templates.get(space, 'Ordershipped'), t);

    const dup = await s().request({ method: 'POST', url: base, payload: { id: 'Ordershipped', name: 'x', messageParts: parts } });
    assert.equal(dup.statusCode, 409);

    const stale = await s().request({ method: 'PUT', url: `${base}/Ordershipped`, headers: { 'if-match': '"1-xxxxxxxxxxxxxxxx"' }, payload: { name: 'n', messageParts: parts } });
    assert.equal(stale.statusCode, 412);
    const put = await s().request({ method: 'PUT', url: `${base}/Ordershipped`, headers: { 'if-match': etag }, payload: { name: 'Renamed', messageParts: [parts[0]] } });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json().name, 'Renamed');
    assert.equal(put.json().description, undefined);
    assert.notEqual(put.headers.etag, etag);

    assert.equal((await s().request({ method: 'DELETE', url: `${base}/Ordershipped`, headers: { 'if-match': etag } })).statusCode, 412);
    assert.equal((await s().request({ method: 'DELETE', url: `${base}/Ordershipped`, headers: { 'content-type': 'application/json' } })).statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: `${base}/Ordershipped` })).statusCode, 404);
    assert.equal(await s().container.services.templates.get(space, 'Ordershipped'), undefined);
    const deleted = await s().request({ method: 'GET', url: `${base}/Ordershipped?includeDeleted=TRUE` });
    assert.equal(deleted.statusCode, 200);
    assert.equal(deleted.json()._deleted, true);
    assert.equal(deleted.json()._deletedBy, 'interactive:admin');
    const empty = await s().request({ method: 'GET', url: base });
    assert.deepEqual(empty.json(), []);
    assert.equal(empty.headers['x-total-count'], '0');
    assert.equal((await s().request({ method: 'GET', url: `${base}?includeDeleted=1` })).json().length, 1);
    assert.equal((await s().request({ method: 'GET', url: `${base}?includeDeleted=maybe` })).statusCode, 400);
    assert.equal((await s().request({ method: 'DELETE', url: `${base}/Ordershipped` })).statusCode, 404);
    // The id can be used again after deletion.
    assert.equal((await s().request({ method: 'POST', url: base, payload: { id: 'Ordershipped', name: 'again', messageParts: parts } })).statusCode, 201);
  });

  it('validates ids, names and parts', async () => {
    const space = await s().createSpace();
    const post = (payload: unknown) => s().request({ method: 'POST', url: `/apispaces/${space}/templates`, payload: payload as object });
    const cases: Array<[unknown, string]> = [
      [{ name: '!!!', messageParts: parts }, 'id'],
      [{ id: 'bad id', name: 'x', messageParts: parts }, 'id'],
      [{ name: 'x' }, 'messageParts'],
      [{ name: 'x', messageParts: [] }, 'messageParts'],
      [{ messageParts: parts }, 'name'],
      [{ name: 'x', messageParts: [{ data: 'x' }] }, 'messageParts[0].type'],
      [{ name: 'x', messageParts: [{ type: 'text/plain', data: 'x', url: 'https://a' }] }, 'messageParts[0]'],
      [{ name: 'x', messageParts: [{ type: 'whatsapp/template', data: {} }] }, 'messageParts[0].channels'],
      // The rules of a send's parts (one-api.md §2.6): a template's parts become them.
      [{ name: 'x', messageParts: [{ type: 'text/*', data: 'x' }] }, 'messageParts[0].type'],
      [{ name: 'x', messageParts: Array.from({ length: 21 }, () => ({ type: 'text/plain', data: 'x' })) }, 'messageParts'],
      [{ name: 'x', messageParts: [{ type: 'image/png', data: 'x', size: -1 }] }, 'messageParts[0].size'],
    ];
    for (const [payload, param] of cases) {
      const res = await post(payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.ok(res.json().validationFailures.some((f: { paramName: string }) => f.paramName === param), `${param}: ${res.body}`);
    }
    assert.equal((await s().request({ method: 'PUT', url: `/apispaces/${space}/templates/none`, payload: { name: 'x', messageParts: parts } })).statusCode, 404);
  });

  it('checks tmpl:r / tmpl:w / tmpl:d', async () => {
    const space = await s().createSpace();
    const reader = await s().createToken(space, ['tmpl:r']);
    const writer = await s().createToken(space, ['tmpl:w']);
    const base = `/apispaces/${space}/templates`;
    assert.equal((await s().request({ method: 'POST', url: base, token: reader, payload: { id: 'a', name: 'a', messageParts: parts } })).statusCode, 403);
    const created = await s().request({ method: 'POST', url: base, token: writer, payload: { id: 'a', name: 'a', messageParts: parts } });
    assert.equal(created.statusCode, 201);
    assert.match(created.json()._createdBy, /^access:/);
    assert.equal((await s().request({ method: 'GET', url: `${base}/a`, token: reader })).statusCode, 200);
    assert.equal((await s().request({ method: 'DELETE', url: `${base}/a`, token: writer })).statusCode, 403);
  });
});
