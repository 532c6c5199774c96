import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { dropLocation, eachDatabase, startServer, useServer, type DialectName } from '../helpers/harness.js';
import { appendEvent, fastWebhookModules } from './harness.js';
import { sleep, startReceiver, waitFor } from './receiver.js';

eachDatabase('webhook durability', (dialect: DialectName) => {
  it('loses nothing when the server restarts in the middle of retries', async () => {
    const rx = await startReceiver(() => 503);
    const modules = fastWebhookModules({ retryDelaysMs: Array(17).fill(150) });
    const first = await startServer(dialect, { modules });
    try {
      const space = await first.createSpace();
      const created = await first.request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'r', url: rx.url, secret: 'restart-secret-0123456789', subscriptions: [{ type: 'profile.update' }, { type: 'message.sent' }] } });
      assert.equal(created.statusCode, 201);
      const webhookId = created.json().id;
      await appendEvent(first.container, space, 'profile.update', { id: 'p1' }, { revision: 1 });
      await waitFor(() => rx.requests.length >= 2, 5000, 'two failed attempts');
      await first.close();
      // Written while no process was running: consumed from the log by the next one.
      const attemptsBefore = rx.requests.length;
      rx.setReply(() => 200);

      const second = await startServer(dialect, { modules, location: first.location });
      try {
        await appendEvent(second.container, space, 'message.sent', { id: 'm1', details: { channel: 'sms' } });
        await waitFor(() => rx.requests.some((r) => r.body.toString().includes('"p1"') && r.headers['x-switchboard-attempt'] !== '1' && Number(r.headers['x-switchboard-attempt']) > attemptsBefore - 1), 8000, 'the retried delivery');
        await waitFor(() => rx.requests.some((r) => r.body.toString().includes('"m1"')), 5000, 'the new event');
        const p1 = rx.requests.filter((r) => r.body.toString().includes('"p1"'));
        assert.equal(new Set(p1.map((r) => r.headers['webhook-id'])).size, 1, 'one delivery id across the restart');
        assert.deepEqual(p1.map((r) => Number(r.headers['x-switchboard-attempt'])), p1.map((_, i) => i + 1));
        const list = await second.request({ method: 'GET', url: `/apispaces/${space}/webhooks/${webhookId}/deliveries` });
        await waitFor(async () => (await second.request({ method: 'GET', url: `/apispaces/${space}/webhooks/${webhookId}/deliveries` })).json().every((d: { state: string }) => d.state === 'succeeded'), 3000, 'all succeeded');
        assert.equal(list.json().length, 2);
      } finally {
        await second.close();
      }
    } finally {
      await rx.close();
      await dropLocation(first.location);
    }
  });

  it('consumes events appended while workers were stopped, exactly once', async () => {
    const rx = await startReceiver(() => 200);
    const modules = fastWebhookModules();
    const first = await startServer(dialect, { modules, start: false });
    try {
      const space = await first.createSpace();
      await first.request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'r', url: rx.url, subscriptions: [{ type: 'chat.*' }] } });
      for (let i = 0; i < 25; i++) await appendEvent(first.container, space, 'chat.update', { id: `chat-${i}` }, { revision: i });
      await first.close();
      const second = await startServer(dialect, { modules, location: first.location });
      try {
        await waitFor(() => rx.requests.length >= 25, 5000, '25 deliveries');
        await sleep(200);
        const ids = rx.requests.map((r) => JSON.parse(r.body.toString()).payload.id);
        assert.equal(ids.length, 25);
        assert.equal(new Set(ids).size, 25);
      } finally {
        await second.close();
      }
    } finally {
      await rx.close();
      await dropLocation(first.location);
    }
  });
});

eachDatabase('webhook fan-out across processes without Redis', (dialect: DialectName) => {
  it('delivers events appended by a process without workers (an API process beside a worker process)', async () => {
    const rx = await startReceiver(() => 200);
    // Two containers on one database, each with its own in-process bus, as two processes are.
    const api = await startServer(dialect, { modules: fastWebhookModules({ idlePollMs: 200 }), start: false });
    const worker = await startServer(dialect, { modules: fastWebhookModules({ idlePollMs: 200 }), location: api.location });
    try {
      const space = await api.createSpace();
      await api.request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'r', url: rx.url, subscriptions: [{ type: 'profile.*' }] } });
      await sleep(300);
      const created = await api.request({ method: 'POST', url: `/apispaces/${space}/profiles`, payload: { id: 'from-api', name: 'x' } });
      assert.equal(created.statusCode, 201);
      // Nothing in the worker's process appends meanwhile: its idle poll finds the event.
      await waitFor(() => rx.requests.some((r) => r.body.toString().includes('from-api')), 5000, 'the event appended in the other process');
    } finally {
      await worker.close();
      await api.close();
      await rx.close();
      await dropLocation(api.location);
    }
  });
});

eachDatabase('webhook target safety at send time', (dialect: DialectName) => {
  it('refuses a private target when sending, counting it as a failed attempt', async () => {
    const rx = await startReceiver(() => 200);
    const modules = fastWebhookModules();
    const first = await startServer(dialect, { modules, start: false });
    try {
      const space = await first.createSpace();
      const created = await first.request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'p', url: rx.url, subscriptions: [{ type: 'profile.*' }] } });
      const webhookId = created.json().id;
      await appendEvent(first.container, space, 'profile.create', { id: 'x' });
      await first.close();
      // Same database, stricter installation: the stored 127.0.0.1 target is refused at send time.
      const second = await startServer(dialect, { modules, location: first.location, env: { ALLOW_PRIVATE_WEBHOOK_TARGETS: 'false' } });
      try {
        const list = async () => (await second.request({ method: 'GET', url: `/apispaces/${space}/webhooks/${webhookId}/deliveries` })).json();
        await waitFor(async () => (await list())[0]?.history.length >= 2, 5000, 'refused attempts');
        const [d] = await list();
        // Still to be retried; with fast retries the next attempt may already be under way.
        assert.ok(['pending', 'in_flight'].includes(d.state), d.state);
        assert.match(d.history[0].error, /refused/);
        assert.equal(d.history[0].statusCode, null);
        assert.equal(rx.requests.length, 0);
      } finally {
        await second.close();
      }
    } finally {
      await rx.close();
      await dropLocation(first.location);
    }
  });
});

eachDatabase('webhook fan-out and other modules', (dialect) => {
  const s = useServer(dialect, { modules: fastWebhookModules() });
  let rx: Awaited<ReturnType<typeof startReceiver>> | undefined;
  after(async () => rx?.close());

  it('delivers profile events raised through POST /profiles', async () => {
    rx = await startReceiver(() => 200);
    const space = await s().createSpace();
    await s().request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'p', url: rx.url, subscriptions: [{ type: 'profile.*' }] } });
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, payload: { id: 'jane@example.com', name: 'Jane' } });
    if (res.statusCode === 404) return; // profiles module not present in this tree
    assert.equal(res.statusCode, 201, res.body);
    await waitFor(() => rx!.requests.length >= 1, 5000, 'profile.create');
    const env = rx.json(0);
    assert.equal(env.name, 'profile.create');
    assert.equal(env.payload.id, 'jane@example.com');
    assert.equal(env.revision, 0);
    assert.equal(env.etag, res.headers.etag);
  });

  it('picks up an event whose transaction commits after a later one (id gap)', async () => {
    if (dialect !== 'postgres') return; // SQLite has one writer: ids commit in order
    const rx2 = await startReceiver(() => 200);
    try {
      const space = await s().createSpace();
      await s().request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'g', url: rx2.url, subscriptions: [{ type: 'session.*' }] } });
      const p = s().container.platform;
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let appended!: () => void;
      const idTaken = new Promise<void>((r) => (appended = r));
      // Takes the lower id, then holds its transaction open while a later event commits.
      const slow = p.transaction(async (uow) => {
        await p.events.append(uow, { apiSpaceId: space, accountId: 1, name: 'session.create', payload: { id: 'early', profileId: 'a' } });
        appended();
        await held;
      });
      await idTaken;
      await appendEvent(s().container, space, 'session.create', { id: 'late', profileId: 'b' });
      await waitFor(() => rx2.requests.length >= 1, 5000, 'the later event');
      await sleep(400); // longer than the test gap wait: the fan-out moves past the gap
      release();
      await slow;
      await waitFor(() => rx2.requests.length >= 2, 5000, 'the earlier event, committed late');
      const ids = rx2.requests.map((r) => JSON.parse(r.body.toString()).payload.id).sort();
      assert.deepEqual(ids, ['early', 'late']);
    } finally {
      await rx2.close();
    }
  });
});
