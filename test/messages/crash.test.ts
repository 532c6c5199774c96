/**
 * Crash safety (ARCHITECTURE.md "Tests, by tier"): a spawned server is killed with SIGKILL while
 * 16 clients send (four of them batches); after a restart on the same database every acknowledged
 * message exists and reaches the receiver. Once with the workers on the main thread, once on a
 * worker thread (WORKER_THREAD).
 */
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, freshLocation, testEnv, dropLocation, ADMIN_TOKEN, type DatabaseLocation } from '../helpers/harness.js';
import { spawnServer } from '../fixtures/spawn.js';
import { receiver } from './helpers.js';

eachDatabase('One API: crash under load', (dialect) => {
  const r = receiver();
  const locations: DatabaseLocation[] = [];
  after(async () => {
    await r.stop();
    for (const location of locations) await dropLocation(location);
  });

  for (const thread of [false, true]) it(`keeps every acknowledged message across kill -9 and delivers it after restart${thread ? ' (workers on a thread)' : ''}`, { timeout: 150_000 }, async () => {
    const location = freshLocation(dialect);
    locations.push(location);
    if (!thread) await r.start();
    const env = testEnv(location, { TEST_LEASE_MS: '1500', LOG_LEVEL: 'silent', ...(thread ? { WORKER_THREAD: 'true' } : {}), ...(location.schema ? { TEST_DB_SCHEMA: location.schema } : {}) });
    let server = await spawnServer(env);
    const base = () => `http://127.0.0.1:${server.port}`;
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const space = ((await (await fetch(`${base()}/apispaces`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'crash' }) })).json()) as { id: string }).id;
    const tok = await (await fetch(`${base()}/apispaces/${space}/accesstokens`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'load', profileId: 'bot', permissions: ['msg:any:s', 'msg:r'] }) })).json() as { token: string };
    const put = await fetch(`${base()}/apispaces/${space}/channels/custom_crm`, {
      method: 'PUT', headers: admin,
      body: JSON.stringify({ enabled: true, provider: 'http', settings: { url: `${r.base}/n`, method: 'POST', contentType: 'application/json', userIdProperty: 'crmId', bodyTemplate: '{"ref": "{{messageId}}"}' } }),
    });
    assert.ok(put.ok, await put.text());
    const headers = { authorization: `Bearer ${tok.token}`, 'content-type': 'application/json' };

    const acked: string[] = [];
    let stop = false;
    const client = async (c: number) => {
      for (let i = 0; !stop; i++) {
        try {
          // Every fourth client sends batches of 20 (one envelope each), the others single messages.
          if (c % 4 === 0) {
            const items = Array.from({ length: 20 }, (_, k) => ({ to: { crmId: `c${c}-${i}-${k}` }, rules: ['custom_crm'], body: 'load' }));
            const res = await fetch(`${base()}/apispaces/${space}/messages/batch`, { method: 'POST', headers, body: JSON.stringify(items) });
            if (res.status === 202) acked.push(...((await res.json()) as Array<{ messageId: string }>).map((x) => x.messageId));
            else await res.arrayBuffer();
            continue;
          }
          const res = await fetch(`${base()}/apispaces/${space}/messages`, { method: 'POST', headers, body: JSON.stringify({ to: { crmId: `c${c}-${i}` }, rules: ['custom_crm'], body: 'load' }) });
          if (res.status === 201) acked.push(((await res.json()) as { messageId: string }).messageId);
          else await res.arrayBuffer();
        } catch {
          return; // the server died under us
        }
      }
    };
    const clients = Array.from({ length: 16 }, (_, c) => client(c));
    while (acked.length < 300) await new Promise((ok) => setTimeout(ok, 10));
    if (process.env.CRASH_DEBUG) console.log('acked', acked.length, Date.now());
    const exited = new Promise((ok) => server.child.once('exit', ok));
    server.child.kill('SIGKILL');
    stop = true;
    await Promise.all(clients);
    await exited;

    server = await spawnServer(env);
    if (process.env.CRASH_DEBUG) console.log('restarted', Date.now());
    try {
      const deadline = Date.now() + 60_000;
      const want = new Set(acked);
      const seen = () => new Set(r.seen.map((x) => x.body.ref as string));
      while (Date.now() < deadline && [...want].some((id) => !seen().has(id))) await new Promise((ok) => setTimeout(ok, 100));
      if (process.env.CRASH_DEBUG) console.log('delivered', Date.now());
      const missing = [...want].filter((id) => !seen().has(id));
      assert.equal(missing.length, 0, `${missing.length} of ${want.size} acknowledged messages never reached the receiver`);
      for (const id of [...acked.slice(0, 50), ...acked.slice(-50)]) {
        const res = await fetch(`${base()}/apispaces/${space}/messages/${id}`, { headers });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { status: string }).status, 'sent');
      }
    } finally {
      const exited2 = new Promise((ok) => server.child.once('exit', ok));
      server.child.kill('SIGTERM');
      await exited2;
    }
  });
});
