import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { EVENT_CATALOGUE } from '../../src/events/catalogue.js';

const hook = (extra: Record<string, unknown> = {}) => ({ name: 'crm_system', url: 'https://hooks.example.com/in', ...extra });

eachDatabase('webhook configuration API', (dialect) => {
  const s = useServer(dialect, { start: false });

  it('creates with defaults, reads, lists, replaces with If-Match and soft-deletes', async () => {
    const space = await s().createSpace();
    const base = `/apispaces/${space}/webhooks`;
    const created = await s().request({ method: 'POST', url: base, payload: hook({ secret: 'Kq3v9Zt7Lm2Xw8Rb5Np1', subscriptions: [{ type: 'profile.*' }] }) });
    assert.equal(created.statusCode, 201, created.body);
    const w = created.json();
    assert.match(w.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual({ batch: w.batch, maxBatchSize: w.maxBatchSize, batchTimeout: w.batchTimeout, secret: w.secret }, { batch: false, maxBatchSize: 100, batchTimeout: 60, secret: 'Kq3v9Zt7Lm2Xw8Rb5Np1' });
    assert.deepEqual(w.subscriptions, [{ type: 'profile.*', filters: [] }]);
    assert.equal(created.headers.location, `${base}/${w.id}`);
    const etag = created.headers.etag as string;
    assert.match(etag, /^"1-/);
    assert.equal(created.headers['last-modified'], w._updatedOn);

    const got = await s().request({ method: 'GET', url: `${base}/${w.id}` });
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers.etag, etag);
    const list = await s().request({ method: 'GET', url: base });
    assert.deepEqual(list.json().map((x: { id: string }) => x.id), [w.id]);
    assert.equal(list.headers.etag, etag);

    const stale = await s().request({ method: 'PUT', url: `${base}/${w.id}`, headers: { 'if-match': '"1-nope"' }, payload: hook() });
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.json().code, 'PreconditionFailed');
    const put = await s().request({ method: 'PUT', url: `${base}/${w.id}`, headers: { 'if-match': etag }, payload: hook({ name: 'renamed', batch: true, maxBatchSize: 5, batchTimeout: 2 }) });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json().name, 'renamed');
    assert.equal(put.json().secret, undefined, 'PUT is a full replacement');
    assert.deepEqual(put.json().subscriptions, []);
    assert.notEqual(put.headers.etag, etag);

    const del = await s().request({ method: 'DELETE', url: `${base}/${w.id}`, headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: `${base}/${w.id}` })).statusCode, 404);
    assert.equal((await s().request({ method: 'DELETE', url: `${base}/${w.id}` })).statusCode, 404);
    const deleted = await s().request({ method: 'GET', url: `${base}/${w.id}?includeDeleted=true` });
    assert.equal(deleted.statusCode, 200);
    assert.equal(deleted.json()._deleted, true);
    assert.equal((await s().request({ method: 'GET', url: base })).json().length, 0);
    assert.equal((await s().request({ method: 'GET', url: `${base}?includeDeleted=true` })).json().length, 1);
  });

  it('validates names, URLs, subscription types, filters and numbers', async () => {
    const space = await s().createSpace();
    const base = `/apispaces/${space}/webhooks`;
    const bad = async (payload: unknown, paramName: string) => {
      const res = await s().request({ method: 'POST', url: base, payload: payload as object });
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload)} → ${res.body}`);
      assert.equal(res.json().code, 'ValidationFailed');
      assert.ok(res.json().validationFailures.some((f: { paramName: string }) => f.paramName === paramName), res.body);
    };
    await bad({ url: 'https://x.example.com' }, 'name');
    await bad(hook({ name: '' }), 'name');
    await bad(hook({ name: 'x'.repeat(101) }), 'name');
    await bad(hook({ url: 'ftp://x.example.com/a' }), 'url');
    await bad(hook({ url: 'not a url' }), 'url');
    await bad(hook({ subscriptions: [{ type: 'message.bogus' }] }), 'subscriptions[0].type');
    await bad(hook({ subscriptions: [{ type: 'nothing.*' }] }), 'subscriptions[0].type');
    await bad(hook({ subscriptions: [{ type: 'profile.update', filters: [{ name: 'channel', value: 'sms' }] }] }), 'subscriptions[0].filters[0].name');
    await bad(hook({ subscriptions: [{ type: 'message.sent', filters: [{ name: 'teamId', value: 'x' }] }] }), 'subscriptions[0].filters[0].name');
    await bad(hook({ maxBatchSize: 501 }), 'maxBatchSize');
    await bad(hook({ maxBatchSize: 0 }), 'maxBatchSize');
    await bad(hook({ batchTimeout: 61 }), 'batchTimeout');
    await bad(hook({ subscriptions: Array.from({ length: 101 }, () => ({ type: 'message.sent' })) }), 'subscriptions');
    const noBody = await s().request({ method: 'POST', url: base, headers: { 'content-type': 'application/json' } });
    assert.equal(noBody.statusCode, 400);
    const bad400 = await s().request({ method: 'POST', url: base, headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    assert.equal(bad400.statusCode, 400);
    assert.equal(bad400.json().code, 'InvalidJson');
    const ok = await s().request({ method: 'POST', url: base, payload: hook({ subscriptions: [
      { type: 'message.*', filters: [{ name: 'channel', value: 'sms' }] },
      { type: 'chatMessage.sent', filters: [{ name: 'direction', value: 'inbound' }, { name: 'teamId', value: 'Support' }] },
      { type: 'conversationMessage.*', filters: [{ name: 'scope', value: 'a2p' }] },
      { type: 'presence.away', filters: [{ name: 'profileId', value: 42 }] },
    ] }) });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal(ok.json().subscriptions[3].filters[0].value, '42');
    assert.equal((await s().request({ method: 'GET', url: `${base}/not-a-webhook` })).statusCode, 404);
    assert.equal((await s().request({ method: 'PUT', url: `${base}/00000000-0000-4000-8000-000000000000`, payload: hook() })).statusCode, 404);
  });

  it('lists available events (with schemas on request) and templates on both paths', async () => {
    const space = await s().createSpace();
    const res = await s().request({ method: 'GET', url: `/apispaces/${space}/webhooks/availableevents` });
    assert.equal(res.statusCode, 200);
    const types = res.json().map((e: { type: string }) => e.type);
    assert.deepEqual(types, EVENT_CATALOGUE.map((e) => e.type));
    for (const name of ['message.inbound', 'interaction.click', 'profile.devicesUpdated', 'facebook.optin', 'conversation.participantUpdated',
      'conversationMessage.read', 'session.delete', 'chat.channelUpdated', 'chatMessage.sent', 'presence.offline']) assert.ok((types as string[]).includes(name), name);
    const delivered = res.json().find((e: { type: string }) => e.type === 'message.delivered');
    assert.deepEqual(delivered.filters, [{ name: 'channel', path: 'details.channel', required: false, description: 'Channel of the message, for example sms' }]);
    assert.equal(delivered.schema, undefined);
    const withSchemas = await s().request({ method: 'GET', url: `/apispaces/${space}/webhooks/availableevents?includeSchemas=true` });
    assert.equal(withSchemas.json()[0].schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    const t1 = await s().request({ method: 'GET', url: `/apispaces/${space}/webhooks/availabletemplates` });
    const t2 = await s().request({ method: 'GET', url: `/apispaces/${space}/accesstokens/availabletemplates` });
    assert.equal(t1.statusCode, 200);
    assert.deepEqual(t1.json(), t2.json());
    assert.deepEqual(t1.json().map((t: { name: string }) => t.name), ['Message events', 'Message and Profile events', 'App Messaging events', 'Chat events']);
  });

  it('checks webhook:r, webhook:w and webhook:d', async () => {
    const space = await s().createSpace();
    const base = `/apispaces/${space}/webhooks`;
    const reader = await s().createToken(space, ['webhook:r']);
    const writer = await s().createToken(space, ['webhook:r', 'webhook:w']);
    const other = await s().createToken(space, ['prof:ra']);
    assert.equal((await s().request({ method: 'GET', url: base, token: other })).statusCode, 403);
    assert.equal((await s().request({ method: 'GET', url: `${base}/availableevents`, token: other })).statusCode, 403);
    assert.equal((await s().request({ method: 'GET', url: base, token: reader })).statusCode, 200);
    assert.equal((await s().request({ method: 'POST', url: base, token: reader, payload: hook() })).statusCode, 403);
    const created = await s().request({ method: 'POST', url: base, token: writer, payload: hook() });
    assert.equal(created.statusCode, 201);
    assert.match(created.json()._createdBy, /^access:/);
    assert.equal((await s().request({ method: 'DELETE', url: `${base}/${created.json().id}`, token: writer })).statusCode, 403);
    assert.equal((await s().request({ method: 'GET', url: base, token: null })).statusCode, 401);
  });
});

eachDatabase('webhook target safety', (dialect) => {
  const s = useServer(dialect, { start: false, env: { ALLOW_HTTP_WEBHOOKS: 'false', ALLOW_PRIVATE_WEBHOOK_TARGETS: 'false' } });

  it('refuses http and private targets unless allowed', async () => {
    const space = await s().createSpace();
    const base = `/apispaces/${space}/webhooks`;
    for (const url of ['http://hooks.example.com/in', 'https://127.0.0.1/in', 'https://10.1.2.3/in', 'https://[::1]/in', 'https://192.168.0.10:8443/x', 'https://localhost/in', 'https://169.254.169.254/latest']) {
      const res = await s().request({ method: 'POST', url: base, payload: hook({ url }) });
      assert.equal(res.statusCode, 400, url);
      assert.equal(res.json().validationFailures[0].paramName, 'url');
    }
    assert.equal((await s().request({ method: 'POST', url: base, payload: hook({ url: 'https://93.184.216.34/in' }) })).statusCode, 201);
  });
});
