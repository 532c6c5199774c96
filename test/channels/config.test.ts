import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';

const customSettings = (token = 's3cret-token') => ({
  url: 'https://crm.example.com/api/notes',
  method: 'POST',
  contentType: 'application/json',
  userIdProperty: 'crmId',
  auth: { type: 'bearer', token },
  headers: [{ key: 'X-Source', value: 'switchboard' }],
  bodyTemplate: '{"contact": "{{userId}}", "text": "{{body}}"}',
});

eachDatabase('channel configuration', (dialect) => {
  const s = useServer(dialect);

  it('creates (201), masks secrets, keeps them on "********" and replaces (200) with If-Match', async () => {
    const space = await s().createSpace();
    const url = `/apispaces/${space}/channels/custom_crm`;
    assert.equal((await s().request({ method: 'GET', url })).statusCode, 404);
    const created = await s().request({ method: 'PUT', url, payload: { channelId: 'custom_crm', enabled: true, provider: 'http', settings: customSettings() } });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.headers.location, url);
    const body = created.json();
    assert.equal(body.settings.auth.token, '********');
    assert.equal(body.settings.auth.type, 'bearer');
    assert.equal(body.provider, 'http');
    assert.ok(!created.body.includes('s3cret-token'));
    const etag = created.headers.etag as string;
    assert.match(etag, /^"1-[A-Za-z0-9_-]{16}"$/);

    // Secrets are sealed at rest.
    const row = await s().container.platform.db.selectFrom('channel_configs').selectAll().where('api_space_id', '=', space).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes('s3cret-token'));
    assert.equal(row.secrets?.startsWith('v1:'), true);

    const stale = await s().request({ method: 'PUT', url, headers: { 'if-match': '"9-nope"' }, payload: { provider: 'http', settings: customSettings('********') } });
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.json().code, 'PreconditionFailed');

    const kept = await s().request({ method: 'PUT', url, headers: { 'if-match': etag }, payload: { provider: 'http', enabled: false, settings: customSettings('********') } });
    assert.equal(kept.statusCode, 200, kept.body);
    assert.equal(kept.json().enabled, false);
    assert.notEqual(kept.headers.etag, etag);
    const view = await s().container.services.channels.config(space, 'custom_crm');
    assert.equal(view?.custom, true);
    assert.equal(view?.revision, 2);
    // The stored token survived the masked PUT: the adapter is built with it.
    await s().request({ method: 'PUT', url, payload: { provider: 'http', settings: customSettings('********') } });
    const got = await s().request({ method: 'GET', url });
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers.etag, (await s().request({ method: 'GET', url })).headers.etag);
    assert.equal(got.json().settings.auth.token, '********');

    const list = await s().request({ method: 'GET', url: `/apispaces/${space}/channels` });
    assert.deepEqual(list.json().map((c: { channelId: string }) => c.channelId), ['custom_crm']);

    const del = await s().request({ method: 'DELETE', url, headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url })).statusCode, 404);
    assert.equal((await s().request({ method: 'DELETE', url })).statusCode, 404);
    assert.deepEqual(await s().container.services.channels.adapter(space, 'custom_crm'), { missing: 'unconfigured' });
  });

  it('rejects bad ids, unknown providers, bad settings and "********" with nothing stored', async () => {
    const space = await s().createSpace();
    const put = (id: string, payload: unknown) => s().request({ method: 'PUT', url: `/apispaces/${space}/channels/${id}`, payload: payload as object });
    for (const id of ['facebook', 'SMS', '9abc', 'a', 'has.dot']) {
      const res = await put(id, { provider: 'http', settings: customSettings() });
      assert.equal(res.statusCode, 400, id);
      assert.equal(res.json().validationFailures[0].paramName, 'channelId');
    }
    const unknown = await put('sms', { provider: 'carrier-pigeon', settings: {} });
    assert.equal(unknown.statusCode, 400);
    assert.equal(unknown.json().validationFailures[0].paramName, 'provider');
    const noProvider = await put('mychan', { settings: customSettings() });
    assert.equal(noProvider.statusCode, 400);
    const bad = await put('mychan', { provider: 'http', settings: { url: 'ftp://x', auth: { type: 'basic' }, headers: [{ key: 'Host', value: 'x' }] } });
    assert.equal(bad.statusCode, 400);
    const names = bad.json().validationFailures.map((f: { paramName: string }) => f.paramName);
    for (const n of ['settings.url', 'settings.userIdProperty', 'settings.auth.username', 'settings.auth.password', 'settings.headers[0].key']) assert.ok(names.includes(n), n);
    const masked = await put('mychan', { provider: 'http', settings: customSettings('********') });
    assert.equal(masked.statusCode, 400);
    assert.equal(masked.json().validationFailures[0].paramName, 'settings.auth.token');
    const mismatch = await put('mychan', { channelId: 'other', provider: 'http', settings: customSettings() });
    assert.equal(mismatch.statusCode, 400);
    const notObject = await put('mychan', { provider: 'http', settings: 'x' });
    assert.equal(notObject.statusCode, 400);
    // Internal channels need no provider.
    const push = await put('nativePush', { enabled: true });
    assert.equal(push.statusCode, 201, push.body);
    assert.equal(push.json().provider, 'internal');
    // `internal` resolves to the one provider the server registered for the channel, if any.
    const channels = s().container.services.channels;
    channels.registerProvider({ channel: 'nativePush', provider: 'test-push', secretSettings: [], validateSettings: () => [], create: () => ({ send: async () => ({ kind: 'accepted' }) }) });
    const found = await channels.adapter(space, 'nativePush');
    assert.ok('adapter' in found, JSON.stringify(found));
    assert.deepEqual(await channels.adapter(space, 'appMessaging'), { missing: 'unconfigured' });
  });

  it('closes the old adapter instance when the configuration changes or is deleted', async () => {
    const space = await s().createSpace();
    const channels = s().container.services.channels;
    const built: Array<{ token: unknown; closed: boolean }> = [];
    channels.registerProvider({
      channel: 'rcs', provider: 'test-close', secretSettings: ['clientToken'], validateSettings: () => [],
      create: (ctx) => {
        const inst = { token: ctx.settings.clientToken, closed: false };
        built.push(inst);
        return { send: async () => ({ kind: 'accepted' }), close: async () => void (inst.closed = true) };
      },
    });
    const url = `/apispaces/${space}/channels/rcs`;
    await s().request({ method: 'PUT', url, payload: { provider: 'test-close', settings: { clientToken: 'one' } } });
    await channels.adapter(space, 'rcs');
    await channels.adapter(space, 'rcs');
    assert.equal(built.length, 1);
    assert.equal(built[0]!.token, 'one');
    await s().request({ method: 'PUT', url, payload: { provider: 'test-close', settings: { clientToken: 'two' } } });
    await new Promise((r) => setImmediate(r));
    assert.equal(built[0]!.closed, true);
    await channels.adapter(space, 'rcs');
    assert.equal(built.length, 2);
    assert.equal(built[1]!.token, 'two');
    await s().request({ method: 'DELETE', url });
    await new Promise((r) => setImmediate(r));
    assert.equal(built[1]!.closed, true);
    // Re-created at revision 1 again: a fresh instance, never the old one.
    await s().request({ method: 'PUT', url, payload: { provider: 'test-close', settings: { clientToken: 'three' } } });
    await channels.adapter(space, 'rcs');
    assert.equal(built.at(-1)!.token, 'three');
  });

  it('checks chan:r / chan:w', async () => {
    const space = await s().createSpace();
    const reader = await s().createToken(space, ['chan:r']);
    const url = `/apispaces/${space}/channels/custom_x`;
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/channels`, token: reader })).statusCode, 200);
    const denied = await s().request({ method: 'PUT', url, token: reader, payload: { provider: 'http', settings: customSettings() } });
    assert.equal(denied.statusCode, 403);
    const writer = await s().createToken(space, ['chan:w']);
    assert.equal((await s().request({ method: 'PUT', url, token: writer, payload: { provider: 'http', settings: customSettings() } })).statusCode, 201);
    assert.equal((await s().request({ method: 'GET', url, token: null })).statusCode, 401);
  });
});

eachDatabase('channel configuration without private targets', (dialect) => {
  const s = useServer(dialect, { env: { ALLOW_PRIVATE_CHANNEL_TARGETS: 'false' }, start: false });

  it('refuses custom channels aimed at loopback or private addresses', async () => {
    const space = await s().createSpace();
    for (const url of ['http://127.0.0.1:9000/x', 'http://[::1]/x', 'http://localhost/x', 'http://10.0.0.8/{{userId}}']) {
      const res = await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/crm`, payload: { provider: 'http', settings: { ...customSettings(), url } } });
      assert.equal(res.statusCode, 400, url);
      assert.equal(res.json().validationFailures[0].paramName, 'settings.url');
    }
    const ok = await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/crm`, payload: { provider: 'http', settings: customSettings() } });
    assert.equal(ok.statusCode, 201);
  });
});
