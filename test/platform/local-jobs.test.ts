import { it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import pino from 'pino';
import { createJobQueue, type JobQueue } from '../../src/delivery/queue.js';
import { createWorker, type JobHandler } from '../../src/delivery/worker.js';
import { inTransaction } from '../../src/storage/uow.js';
import { ManualClock } from '../../src/lib/clock.js';
import { randomIds } from '../../src/lib/ids.js';
import { eachDatabase } from '../helpers/harness.js';
import { createQueueDb, type QueueDb } from '../fixtures/queue-db.js';

const log = pino({ level: 'silent' });

eachDatabase('jobs leased at enqueue (run by this process after commit)', (dialect) => {
  let qdb: QueueDb;
  let clock: ManualClock;
  let queue: JobQueue;
  before(async () => {
    qdb = await createQueueDb(dialect);
  });
  after(async () => {
    await queue?.close();
    await qdb.close();
  });
  beforeEach(async () => {
    await queue?.close();
    await sql`DELETE FROM jobs`.execute(qdb.handle.db);
    clock = new ManualClock();
    queue = createJobQueue({ handle: qdb.handle, clock, ids: randomIds });
    await queue.ready();
  });

  const makeWorker = (handlers: Record<string, JobHandler>, concurrency = 4) =>
    createWorker({ queue, clock, log, owner: `w-${randomIds.uuid().slice(0, 6)}`, handlers: new Map(Object.entries(handlers)), concurrency, leaseMs: 1000, idlePollMs: 20 });

  it('runs in the adopting worker without being claimed, and is gone once done', async () => {
    const ran: unknown[] = [];
    const w = makeWorker({ 'test.local': async ({ job }) => void ran.push(job.payload.n) });
    w.start();
    try {
      assert.equal(w.reserve(1), 1);
      const job = await inTransaction(qdb.handle.db, (uow) => queue.enqueueLeased(uow, { kind: 'test.local', payload: { v: 1, n: 7 } }, w.owner, w.leaseMs));
      const stored = await queue.get(job.id);
      assert.equal(stored?.state, 'running');
      assert.equal(stored?.leaseOwner, w.owner);
      assert.equal(stored?.attempts, 1);
      // Nobody else can claim it while the lease holds.
      assert.deepEqual(await queue.claim('other', 10, 1000), []);
      w.adopt(job);
      await w.idle();
      assert.deepEqual(ran, [7]);
      assert.equal(await queue.get(job.id), undefined);
    } finally {
      await w.stop();
    }
  });

  it('is taken over by another worker when its process dies before running it (lease expiry)', async () => {
    const job = await inTransaction(qdb.handle.db, (uow) => queue.enqueueLeased(uow, { kind: 'test.local', payload: { v: 1 } }, 'dead-process', 1000));
    assert.deepEqual(await queue.claim('other', 10, 1000), []);
    clock.advance(1001);
    const taken = await queue.claim('other', 10, 1000);
    assert.deepEqual(taken.map((j) => j.id), [job.id]);
    assert.equal(taken[0]!.attempts, 2);
  });

  it('reserves only free slots, gives them back on release, and hands a job back when stopped', async () => {
    const w = makeWorker({ 'test.local': async () => {} }, 3);
    w.start();
    assert.equal(w.reserve(5), 3);
    assert.equal(w.reserve(1), 0);
    w.release(2);
    assert.equal(w.reserve(5), 2);
    const job = await inTransaction(qdb.handle.db, (uow) => queue.enqueueLeased(uow, { kind: 'test.local', payload: { v: 1 } }, w.owner, w.leaseMs));
    await w.stop();
    w.adopt(job);
    await new Promise((r) => setTimeout(r, 50));
    const stored = await queue.get(job.id);
    assert.equal(stored?.state, 'queued', 'handed back to run elsewhere at once');
    assert.equal(w.reserve(1), 0, 'a stopped worker reserves nothing');
  });

  it('a rolled-back enqueue runs the rollback callbacks and stores nothing', async () => {
    const w = makeWorker({ 'test.local': async () => {} }, 2);
    w.start();
    try {
      assert.equal(w.reserve(2), 2);
      await assert.rejects(inTransaction(qdb.handle.db, async (uow) => {
        uow.afterRollback(() => w.release(2));
        await queue.enqueueLeased(uow, { kind: 'test.local', payload: { v: 1 } }, w.owner, w.leaseMs);
        throw new Error('roll back');
      }));
      assert.equal((await queue.list({})).length, 0);
      assert.equal(w.reserve(2), 2, 'the slots came back');
      w.release(2);
    } finally {
      await w.stop();
    }
  });
});
