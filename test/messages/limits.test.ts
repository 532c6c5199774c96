import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer, type TestServer } from '../helpers/harness.js';
import { receiver } from './helpers.js';
import { startServer, dropLocation } from '../helpers/harness.js';
import { createPacer } from '../../src/modules/messages/pacing.js';

/** Waits until `done()` holds, polling; fails after `ms`. */
async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const channel = (url: string, limits?: unknown) => ({
  enabled: true, provider: 'http',
  settings: { url, method: 'POST', contentType: 'application/json', userIdProperty: 'crmId', bodyTemplate: '{"ref": "{{messageId}}"}' },
  ...(limits === undefined ? {} : { limits }),
});

eachDatabase('One API: channel limits (pacing and concurrency)', (dialect) => {
  const s = useServer(dialect);
  const r = receiver();
  let space = '';
  let token = '';
  /** When each message reached the receiver, by message id. */
  const arrived = new Map<string, number>();
  let inFlight = 0;
  let mostInFlight = 0;
  let delayMs = 0;
  before(async () => {
    await r.start();
    r.respond((_req, res, body) => {
      arrived.set(String(body.ref), Date.now());
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }, delayMs);
    });
    space = await s().createSpace('limits');
    token = await s().createToken(space, ['msg:any:s', 'msg:r']);
  });
  after(() => r.stop());

  const put = (channelId: string, body: unknown) => s().request({ method: 'PUT', url: `/apispaces/${space}/channels/${channelId}`, payload: body as object });
  const sendMany = async (srv: TestServer, channelId: string, n: number): Promise<string[]> => {
    const res = await srv.request({ method: 'POST', url: `/apispaces/${space}/messages/batch`, token, payload: Array.from({ length: n }, (_, i) => ({ to: { crmId: `c${i}` }, rules: [channelId], body: `m${i}` })) });
    assert.equal(res.statusCode, 202, res.body);
    return res.json().map((x: { messageId: string }) => x.messageId);
  };

  it('stores limits with the configuration, shows them, and refuses bad ones', async () => {
    const created = await put('custom_paced', channel(`${r.base}/in`, { messagesPerSecond: 2.5, concurrency: 3 }));
    assert.equal(created.statusCode, 201, created.body);
    assert.deepEqual(created.json().limits, { messagesPerSecond: 2.5, concurrency: 3 });
    const read = await s().request({ method: 'GET', url: `/apispaces/${space}/channels/custom_paced` });
    assert.deepEqual(read.json().limits, { messagesPerSecond: 2.5, concurrency: 3 });
    assert.equal(read.headers.etag, created.headers.etag);
    // PUT replaces the whole configuration: no limits, none kept.
    const cleared = await put('custom_paced', channel(`${r.base}/in`));
    assert.equal(cleared.statusCode, 200);
    assert.equal(cleared.json().limits, undefined);
    assert.notEqual(cleared.headers.etag, created.headers.etag);
    for (const limits of [{ messagesPerSecond: 0 }, { messagesPerSecond: 0.0001 }, { messagesPerSecond: -1 }, { concurrency: 0 }, { concurrency: 1.5 }, { concurrency: 5000 }, { rate: 3 }, 'fast', [1]]) {
      const bad = await put('custom_paced', channel(`${r.base}/in`, limits));
      assert.equal(bad.statusCode, 400, `${JSON.stringify(limits)}: ${bad.body}`);
      assert.equal(bad.json().code, 'ValidationFailed');
      assert.ok(bad.json().validationFailures.some((f: { paramName: string }) => f.paramName.startsWith('limits')), bad.body);
    }
    const kept = await s().request({ method: 'GET', url: `/apispaces/${space}/channels/custom_paced` });
    assert.equal(kept.headers.etag, cleared.headers.etag, 'a refused PUT changes nothing');
  });

  it('paces sends to messagesPerSecond, the far ones waiting in the queue, and records nothing extra', async () => {
    await put('custom_rate', channel(`${r.base}/rate`, { messagesPerSecond: 4 }));
    const started = Date.now();
    const ids = await sendMany(s(), 'custom_rate', 8);
    // Slots 250 ms apart from the first: 1.75 s for the eighth. Those over a second away are
    // written back to the queue and run at their slot.
    await until(() => ids.every((id) => arrived.has(id)), 15_000, 'all paced messages');
    const times = ids.map((id) => arrived.get(id)!).sort((a, b) => a - b);
    // No send before its slot, and the first slot is taken after `started`: a late first send
    // (a loaded machine) shortens the span from the first arrival, never this bound.
    times.forEach((t, i) => assert.ok(t - started >= i * 250 - 20, `send ${i + 1} of 8 at 4/s arrived after ${t - started} ms`));
    assert.ok(times[7]! - times[0]! >= 7 * 250 - 250, `8 sends at 4/s took ${times[7]! - times[0]!} ms`);
    let waitedInQueue = 0;
    for (const id of ids) {
      // The receiver has it; the outcome is written once its answer is back.
      let res = await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token });
      for (let i = 0; i < 100 && res.json().status === 'processing'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        res = await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token });
      }
      const m = res.json();
      assert.equal(m.status, 'sent', JSON.stringify(m.statusDetails));
      assert.deepEqual(m.statusDetails.attempts.map((a: { channel: string; outcome: string }) => [a.channel, a.outcome]), [['custom_rate', 'accepted']]);
      // Revision 1: sent straight away (after waiting in the worker); 2: written back to wait first.
      if (String(res.headers.etag).startsWith('"2-')) waitedInQueue++;
    }
    assert.ok(waitedInQueue >= 1 && waitedInQueue <= 4, `${waitedInQueue} of 8 waited in the queue`);
  });

  it('keeps at most `concurrency` sends in flight', async () => {
    await put('custom_narrow', channel(`${r.base}/narrow`, { concurrency: 2 }));
    delayMs = 100;
    mostInFlight = 0;
    try {
      const ids = await sendMany(s(), 'custom_narrow', 6);
      await until(() => ids.every((id) => arrived.has(id)), 15_000, 'all messages of the narrow channel');
      assert.equal(mostInFlight, 2);
    } finally {
      delayMs = 0;
    }
  });
});

eachDatabase('One API: pacing slots shared by processes on one database', (dialect) => {
  it('hands out distinct slots 1/rate apart to two servers asking at once', async () => {
    const a = await startServer(dialect, { start: false });
    const b = await startServer(dialect, { start: false, location: a.location });
    try {
      const pacers = [a, b].map((srv) => createPacer(srv.container.platform.db, srv.dialect, srv.container.platform.clock));
      const slots = (await Promise.all(Array.from({ length: 40 }, (_, i) => pacers[i % 2]!.slot('space-1', 'custom_x', 50)))).sort((x, y) => x - y);
      // 50 a second: 20 ms apart (rounded up to the millisecond), whichever server took them.
      for (let i = 1; i < slots.length; i++) assert.ok(slots[i]! - slots[i - 1]! >= 19, `slots ${slots[i - 1]} and ${slots[i]}`);
      assert.ok(slots[39]! - slots[0]! >= 39 * 20 - 1);
      // Another channel, or another space, has slots of its own.
      const other = await pacers[0]!.slot('space-1', 'custom_y', 50);
      assert.ok(other - Date.now() < 100);
    } finally {
      await b.close();
      await a.close();
      await dropLocation(a.location);
    }
  });
});
