import '../appmessaging/sdk-env.js';
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { configureAuth, customerJwt, startSession } from '../appmessaging/helpers.js';

/* Content upload exactly as the vendor SDK 1.3.0 does it (app-messaging.md §6), plus the
   multipart form a browser's FormData produces, over a listening server. */

eachDatabase('content upload through the vendor SDK', (dialect) => {
  const s = useServer(dialect);
  let base = '';
  let space = '';
  let foundation: any;

  before(async () => {
    base = (await s().app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    space = await s().createSpace('sdk content');
    await configureAuth(s(), space);
  });

  after(async () => {
    await foundation?._networkManager.setWebsocketEnabled(false).catch(() => {});
  });

  it('uploads base64 content with a session token and resolves with {id, url, …}', async () => {
    const sdk = await import('@comapi/sdk-js-foundation');
    const config = new sdk.ComapiConfig()
      .withApiSpace(space).withUrlBase(base).withWebSocketBase(base.replace(/^http/, 'ws'))
      .withLocalStoragePrefix(`${dialect}.content.`).withEnabledNonChatSocket(false).withLogLevel(0)
      .withAuthChallenge(((options: { nonce: string }, answer: (jwt: string | null) => void) => {
        customerJwt({ sub: 'uploader', nonce: options.nonce }).then(answer, () => answer(null));
      }) as never);
    foundation = await sdk.Foundation.initialise(config);
    await foundation.startSession();
    const data = Buffer.from('Hello from the SDK').toString('base64');
    const result = await foundation.services.appMessaging.uploadContent(sdk.ContentData.createFromBase64(data, 'hello.txt', 'text/plain'));
    assert.equal(result.name, 'hello.txt');
    assert.equal(result.type, 'text/plain');
    assert.equal(result.folder, 'content');
    assert.equal(result.size, 18);
    assert.ok(result.url.startsWith('http://localhost:8080/apispaces/'));
    const down = await fetch(`${base}${new URL(result.url).pathname}`);
    assert.equal(down.status, 200);
    assert.equal(await down.text(), 'Hello from the SDK');
  });

  it('accepts a FormData upload with a session token', async () => {
    const { token } = await startSession(s(), space, 'browser-user');
    const fd = new FormData();
    fd.append('file', new Blob([Buffer.from('col1,col2\n1,2\n')], { type: 'text/csv' }), 'data.csv');
    const res = await fetch(`${base}/apispaces/${space}/content`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: fd });
    assert.equal(res.status, 200);
    const body = await res.json() as Record<string, unknown>;
    assert.equal(body.name, 'data.csv');
    assert.equal(body.type, 'text/csv');
    assert.equal(body._createdBy, 'session:browser-user');
  });
});
