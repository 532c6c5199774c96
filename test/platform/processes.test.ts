import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { eachDatabase, startServer, dropLocation, type DatabaseLocation, type TestServer } from '../helpers/harness.js';
import { customChannel, receiver } from '../messages/helpers.js';
import { appendEvent, fastWebhookModules } from '../webhooks/harness.js';
import { startReceiver, waitFor } from '../webhooks/receiver.js';
import { EVENTS_CHANNEL } from '../../src/events/log.js';

/**
 * An API process with WORKERS_ENABLED=false beside a worker process on the same database: the
 * worker takes work committed by the other process at once, not at its idle poll (here a minute).
 * PostgreSQL tells the worker with NOTIFY; on SQLite it sees the other connection's commits
 * (`onCommitElsewhere`). Both containers run in this test process, each with its own connection.
 */
eachDatabase('processes on one database', (dialect) => {
  const IDLE = 60_000;

  async function pair(modules?: ReturnType<typeof fastWebhookModules>) {
    const api = await startServer(dialect, { env: { WORKERS_ENABLED: 'false' }, ...(modules ? { modules } : {}) });
    const worker = await startServer(dialect, { location: api.location, worker: { idlePollMs: IDLE }, ...(modules ? { modules } : {}) });
    return { api, worker, location: api.location };
  }
  async function close(servers: Array<TestServer | undefined>, location: DatabaseLocation | undefined) {
    for (const s of servers) await s?.close();
    if (location) await dropLocation(location);
  }

  it('a message accepted by the API process is dispatched by the worker process at once', async () => {
    const r = receiver();
    await r.start();
    const { api, worker, location } = await pair();
    try {
      const space = await api.createSpace('split');
      const token = await api.createToken(space, ['msg:any:s', 'msg:r']);
      await customChannel(api, space, 'custom_crm', `${r.base}/in`);
      // Let the worker's first polls pass, so that only a wake-up can find the next job in time.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const sent = await api.request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to: { crmId: 'C-1' }, rules: ['custom_crm'], body: 'Hello' } });
      assert.equal(sent.statusCode, 201, sent.body);
      await waitFor(() => r.seen.length === 1, 10_000, 'the worker process to deliver');
      assert.equal(r.seen[0]!.body.ref, sent.json().messageId);
    } finally {
      await close([worker, api], location);
      await r.stop();
    }
  });

  // On PostgreSQL another process's events reach the fan-out through Redis (or its idle poll).
  it('an event appended by the API process reaches the worker process\'s webhook fan-out at once', { skip: dialect === 'postgres' ? 'SQLite only' : false }, async () => {
    const rx = await startReceiver();
    const { api, worker, location } = await pair(fastWebhookModules({ idlePollMs: IDLE }));
    try {
      const space = await api.createSpace('split hooks');
      const hook = await api.request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'test', url: rx.url, subscriptions: [{ type: 'profile.*' }] } });
      assert.equal(hook.statusCode, 201, hook.body);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await appendEvent(api.container, space, 'profile.update', { id: 'sam@example.com', name: 'Sam' }, { revision: 1, etag: '"1-abc"' });
      await waitFor(() => rx.requests.length === 1, 10_000, 'the worker process to deliver the webhook');
      assert.equal(rx.json(0).name, 'profile.update');
    } finally {
      await close([worker, api], location);
      await rx.close();
    }
  });
});

/**
 * WORKER_THREAD: the same split inside one process (src/worker-thread.ts). The workers' container
 * runs on a thread; the bus, job wake-ups and /metrics cross between the threads.
 */
eachDatabase('workers on a thread', (dialect) => {
  it('dispatches, raises events on the main thread\'s bus, reports the thread\'s metrics and stops', { timeout: 60_000 }, async () => {
    const r = receiver();
    await r.start();
    const rx = await startReceiver();
    const s = await startServer(dialect, { env: { WORKER_THREAD: 'true', WORKER_THREAD_NICE: '7' }, worker: { leaseMs: 1000 } });
    try {
      assert.equal(s.container.worker, undefined, 'no worker on the main thread');
      if (existsSync('/proc/thread-self')) {
        // The workers' thread runs at a lower priority than the thread answering requests.
        const nice = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
        assert.equal(nice(String(process.pid)), 0);
        assert.ok(readdirSync('/proc/self/task').some((tid) => nice(tid) === 7), 'a thread at nice 7');
      }
      assert.equal(s.container.platform.config.workersEnabled, false, 'the main thread\'s modules see their workers off');
      assert.equal(s.container.platform.config.databasePoolSize, 10, 'DATABASE_POOL_SIZE (20) shared between the two threads');
      const space = await s.createSpace('thread');
      const token = await s.createToken(space, ['msg:any:s', 'msg:r']);
      await customChannel(s, space, 'custom_crm', `${r.base}/in`);
      const hook = await s.request({ method: 'POST', url: `/apispaces/${space}/webhooks`, payload: { name: 'test', url: rx.url, subscriptions: [{ type: 'message.*' }] } });
      assert.equal(hook.statusCode, 201, hook.body);
      const seenOnBus: string[] = [];
      const off = s.container.platform.bus.subscribe(EVENTS_CHANNEL, (m) => seenOnBus.push((m as { name: string }).name));

      const sent = await s.request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to: { crmId: 'C-1' }, rules: ['custom_crm'], body: 'Hello {{profile.crmId}}' } });
      assert.equal(sent.statusCode, 201, sent.body);
      const id = sent.json().messageId as string;
      await waitFor(() => r.seen.length === 1, 10_000, 'the thread to deliver');
      assert.equal(r.seen[0]!.body.ref, id);
      await waitFor(async () => (await s.request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token })).json().status === 'sent', 10_000, 'the message to read as sent');
      // The thread's append of message.sent reaches subscribers on the main thread (websocket frames travel the same way).
      await waitFor(() => seenOnBus.includes('message.sent'), 10_000, 'message.sent on the main thread\'s bus');
      off();
      // The thread's webhook fan-out and dispatcher deliver it.
      await waitFor(() => rx.requests.some((q) => q.body.toString().includes('message.sent')), 10_000, 'the webhook');

      const metrics = (await s.request({ method: 'GET', url: '/metrics' })).body;
      assert.match(metrics, /jobs_run_duration_seconds_count\{kind="message\.dispatch",outcome="done"\} 1\b/, 'the thread\'s job metrics');
      assert.match(metrics, /http_request_duration_seconds_count\{operation="messages\.send"/, 'the main thread\'s request metrics');
      assert.equal(metrics.match(/^jobs_queue_depth\{state="queued"\} /gm)?.length, 1, 'the queue depth once');

      // A job committed on the main thread for a kind the thread runs is stored leased to the
      // thread's worker and handed over after commit (no claim), and the thread runs it.
      const { platform } = s.container;
      const handed = await platform.transaction((uow) => platform.localJobs.enqueue(uow, { kind: 'message.dispatch', apiSpaceId: space, payload: { v: 1, ids: [] }, runAt: Date.now() }));
      assert.equal(handed, true, 'handed to the thread\'s worker');
      await waitFor(async () => { const d = await platform.queue.depth(); return d.queued + d.running === 0; }, 10_000, 'the thread to run the handed-over job');
      // A context that cannot cross to the thread: its slot is given back, and the job, stored
      // leased, runs once the lease expires (here 1 s).
      const stranded = await platform.transaction((uow) => platform.localJobs.enqueue(uow, { kind: 'message.dispatch', apiSpaceId: space, payload: { v: 1, ids: [] }, runAt: Date.now() }, [() => 'not cloneable']));
      assert.equal(stranded, true);
      await waitFor(async () => { const d = await platform.queue.depth(); return d.queued + d.running === 0; }, 15_000, 'the stranded job to run after its lease');
      // Every one of the worker's slots (WORKER_CONCURRENCY, 32) is free again: a transaction
      // hands over that many jobs (rolled back and tried again while the thread is still giving
      // back the slot of a job it has just finished).
      await waitFor(async () => {
        try {
          await platform.transaction(async (uow) => {
            for (let i = 0; i < platform.config.workerConcurrency; i++) {
              if (!(await platform.localJobs.enqueue(uow, { kind: 'message.dispatch', apiSpaceId: space, payload: { v: 1, ids: [] }, runAt: Date.now() }))) throw new Error('a slot is taken');
            }
          });
          return true;
        } catch {
          return false;
        }
      }, 5_000, 'every slot handed over (none lost)');
      await waitFor(async () => { const d = await platform.queue.depth(); return d.queued + d.running === 0; }, 10_000, 'the handed-over jobs');
    } finally {
      await s.close();
      await dropLocation(s.location);
      await r.stop();
      await rx.close();
    }
  });
});
