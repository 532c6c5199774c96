import { it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import pino from 'pino';
import { createJobQueue, type JobQueue } from '../../src/delivery/queue.js';
import { createWorker, PermanentFailure, RetryLater, sharedSlots, slotsBuffer, type JobHandler, type Worker } from '../../src/delivery/worker.js';
import { backoffMs } from '../../src/delivery/retry.js';
import { inTransaction } from '../../src/storage/uow.js';
import { ManualClock, systemClock, type Clock } from '../../src/lib/clock.js';
import { randomIds } from '../../src/lib/ids.js';
import type { DatabaseHandle } from '../../src/storage/db.js';
import { eachDatabase, TEST_DATABASE_URL } from '../helpers/harness.js';
import { describe } from 'node:test';
import { createQueueDb, type QueueDb } from '../fixtures/queue-db.js';

const log = pino({ level: 'silent' });
const job = (kind = 'test.job', extra: Record<string, unknown> = {}) => ({ kind, payload: { v: 1, ...extra } });

function worker(queue: JobQueue, clock: Clock, handlers: Record<string, JobHandler>, extra: Partial<Parameters<typeof createWorker>[0]> = {}): Worker {
  return createWorker({ queue, clock, log, owner: `w-${randomIds.uuid().slice(0, 6)}`, handlers: new Map(Object.entries(handlers)), concurrency: 4, leaseMs: 1000, idlePollMs: 20, backoffBaseMs: 1000, ...extra });
}

const count = async (handle: DatabaseHandle, where = sql`1 = 1`) =>
  Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM job_runs WHERE ${where}`.execute(handle.db)).rows[0]!.n);

it('back-off is exponential with jitter in [exp/2, exp] and capped', () => {
  assert.equal(backoffMs(1, 1000, 60_000, () => 0), 500);
  assert.equal(backoffMs(1, 1000, 60_000, () => 1), 1000);
  assert.equal(backoffMs(3, 1000, 60_000, () => 1), 4000);
  assert.equal(backoffMs(30, 1000, 60_000, () => 1), 60_000);
  const seen = new Set(Array.from({ length: 20 }, () => backoffMs(4)));
  assert.ok(seen.size > 1, 'jitter varies');
  for (const v of seen) assert.ok(v >= 4000 && v <= 8000);
});

eachDatabase('durable job queue', (dialect) => {
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
    await sql`DELETE FROM job_runs`.execute(qdb.handle.db);
    clock = new ManualClock();
    queue = createJobQueue({ handle: qdb.handle, clock, ids: randomIds });
    await queue.ready();
  });

  it('enqueues inside a transaction: rolled back → no job, committed → job and a wake-up after commit', async () => {
    let wakes = 0;
    queue.onWake(() => wakes++);
    await assert.rejects(inTransaction(qdb.handle.db, async (uow) => {
      await queue.enqueue(uow, job());
      throw new Error('roll back');
    }));
    assert.equal((await queue.list({})).length, 0);
    assert.equal(wakes, 0);
    const id = await inTransaction(qdb.handle.db, async (uow) => {
      const id = await queue.enqueue(uow, job('test.job', { n: 1 }));
      assert.equal(wakes, 0, 'no wake before commit');
      return id;
    });
    assert.ok(wakes >= 1, 'woken after commit');
    const stored = await queue.get(id!);
    assert.equal(stored?.state, 'queued');
    assert.deepEqual(stored?.payload, { v: 1, n: 1 });
  });

  it('a transaction enqueuing many jobs wakes workers once', async () => {
    let wakes = 0;
    queue.onWake(() => wakes++);
    await inTransaction(qdb.handle.db, async (uow) => {
      for (let i = 0; i < 50; i++) await queue.enqueue(uow, job('test.job', { i }));
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(wakes >= 1 && wakes <= 2, `${wakes} wake-ups (after commit, plus at most one NOTIFY)`);
    assert.equal((await queue.list({ limit: 100 })).length, 50);
  });

  it('a job interrupted by worker shutdown is handed back at once', async () => {
    const id = await queue.enqueueNow(job());
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const w = worker(queue, clock, {
      'test.job': (ctx) => new Promise((_resolve, reject) => {
        started();
        ctx.signal.addEventListener('abort', () => reject(new Error('aborted')));
      }),
    });
    w.start();
    await running;
    await w.stop(10);
    const stored = await queue.get(id!);
    assert.equal(stored?.state, 'queued');
    assert.equal(stored?.runAt, clock.now());
    assert.equal(stored?.lastError, 'interrupted by worker shutdown');
  });

  it('schedules by run_at', async () => {
    await queue.enqueueNow({ ...job(), runAt: clock.now() + 5000 });
    assert.equal((await queue.claim('a', 10, 1000)).length, 0);
    assert.equal(await queue.nextRunAt(), clock.now() + 5000);
    clock.advance(4999);
    assert.equal((await queue.claim('a', 10, 1000)).length, 0);
    clock.advance(1);
    assert.equal((await queue.claim('a', 10, 1000)).length, 1);
  });

  it('claims each job once, oldest first, and only the asked kinds', async () => {
    for (let i = 0; i < 5; i++) await queue.enqueueNow({ ...job('k.a', { i }), runAt: clock.now() - i });
    await queue.enqueueNow(job('k.b'));
    const first = await queue.claim('a', 3, 1000, ['k.a']);
    assert.deepEqual(first.map((j) => j.payload.i), [4, 3, 2]);
    const second = await queue.claim('b', 10, 1000, ['k.a']);
    assert.deepEqual(second.map((j) => j.payload.i), [1, 0]);
    assert.equal((await queue.claim('c', 10, 1000, ['k.a'])).length, 0);
    assert.equal((await queue.claim('c', 10, 1000)).map((j) => j.kind).join(), 'k.b');
  });

  it('leases with heartbeat; an expired lease is claimed again and the old owner can no longer finish', async () => {
    const id = await queue.enqueueNow(job());
    const [mine] = await queue.claim('a', 1, 1000);
    assert.equal(mine!.attempts, 1);
    assert.equal(mine!.leaseUntil, clock.now() + 1000);
    clock.advance(800);
    assert.equal(await queue.heartbeat(mine!, 1000), true);
    clock.advance(800);
    assert.equal((await queue.claim('b', 1, 1000)).length, 0, 'heartbeat kept the lease');
    clock.advance(201);
    const [theirs] = await queue.claim('b', 1, 1000);
    assert.equal(theirs?.id, id);
    assert.equal(theirs!.attempts, 2);
    assert.equal(await queue.heartbeat(mine!, 1000), false);
    assert.equal(await queue.complete(mine!), false);
    assert.equal(await queue.fail(mine!, 'late', 'dead'), false);
    assert.equal((await queue.get(id!))?.state, 'running');
    assert.equal(await queue.complete(theirs!), true);
    assert.equal(await queue.get(id!), undefined);
  });

  it('retries with back-off, keeps the last error, and keeps dead jobs after max attempts', async () => {
    const id = await queue.enqueueNow({ ...job(), maxAttempts: 3 });
    const errorsSeen: number[] = [];
    const w = worker(queue, clock, { 'test.job': async ({ job: j }) => { errorsSeen.push(j.attempts); throw new Error(`boom ${j.attempts}`); } });
    w.start();
    await w.idle();
    let stored = (await queue.get(id!))!;
    assert.equal(stored.state, 'queued');
    assert.equal(stored.lastError, 'boom 1');
    const delay1 = stored.runAt - clock.now();
    assert.ok(delay1 >= 500 && delay1 <= 1000, `first back-off ${delay1}`);
    clock.advance(delay1);
    await w.idle();
    stored = (await queue.get(id!))!;
    const delay2 = stored.runAt - clock.now();
    assert.ok(delay2 >= 1000 && delay2 <= 2000, `second back-off ${delay2}`);
    clock.advance(delay2);
    await w.idle();
    stored = (await queue.get(id!))!;
    assert.equal(stored.state, 'dead');
    assert.equal(stored.attempts, 3);
    assert.equal(stored.lastError, 'boom 3');
    assert.deepEqual(errorsSeen, [1, 2, 3]);
    assert.deepEqual((await queue.list({ state: 'dead' })).map((j) => j.id), [id]);
    assert.equal((await queue.depth()).dead, 1);
    await w.stop();
  });

  it('automatic heartbeats keep a long job leased; a stolen lease aborts the handler signal', async () => {
    const real = createJobQueue({ handle: qdb.handle, clock: systemClock, ids: randomIds });
    const id = await real.enqueueNow(job('k.long'));
    let stolen: Awaited<ReturnType<JobQueue['claim']>> = [];
    let aborted = false;
    const w = createWorker({
      queue: real, clock: systemClock, log, owner: 'long', concurrency: 1, leaseMs: 300, idlePollMs: 50,
      handlers: new Map([['k.long', async (ctx) => {
        await new Promise((r) => setTimeout(r, 700));
        stolen = await real.claim('thief', 1, 300, ['k.long']);
        // Take the lease away: expire it by hand and claim it as another worker.
        await sql`UPDATE jobs SET lease_until = 0 WHERE id = ${ctx.job.id}`.execute(qdb.handle.db);
        const [theirs] = await real.claim('thief', 1, 60_000, ['k.long']);
        assert.ok(theirs);
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) return resolve();
          ctx.signal.addEventListener('abort', () => resolve());
          setTimeout(resolve, 1500);
        });
        aborted = ctx.signal.aborted;
        throw new Error('gave up');
      }]]),
    });
    w.start();
    await new Promise((r) => setTimeout(r, 50));
    while ((await real.get(id!))?.leaseOwner !== 'thief') await new Promise((r) => setTimeout(r, 50));
    await w.stop();
    assert.equal(stolen.length, 0, 'the lease outlived three lease periods thanks to heartbeats');
    assert.equal(aborted, true, 'handler saw the lease loss');
    const stored = await real.get(id!);
    assert.equal(stored?.leaseOwner, 'thief', 'the loser recorded no failure over the new owner');
    assert.equal(stored?.state, 'running');
    await real.close();
  });

  it('PermanentFailure kills at once; RetryLater picks the time', async () => {
    const dead = await queue.enqueueNow(job('k.perm'));
    const later = await queue.enqueueNow(job('k.later'));
    const w = worker(queue, clock, {
      'k.perm': async () => { throw new PermanentFailure('bad config'); },
      'k.later': async () => { throw new RetryLater('rate limited', clock.now() + 42_000); },
    });
    w.start();
    await w.idle();
    assert.equal((await queue.get(dead!))?.state, 'dead');
    assert.equal((await queue.get(dead!))?.lastError, 'bad config');
    assert.equal((await queue.get(later!))?.runAt, clock.now() + 42_000);
    assert.equal((await queue.get(later!))?.state, 'queued');
    await w.stop();
  });

  it('an expired lease at the last attempt ends dead, not run again', async () => {
    const id = await queue.enqueueNow({ ...job(), maxAttempts: 1 });
    await queue.claim('crashed', 1, 1000);
    clock.advance(1001);
    let ran = 0;
    const w = worker(queue, clock, { 'test.job': async () => void ran++ });
    w.start();
    await w.idle();
    assert.equal(ran, 0);
    const stored = await queue.get(id!);
    assert.equal(stored?.state, 'dead');
    assert.match(stored!.lastError!, /gave up after 1 attempts/);
    await w.stop();
  });

  it('completeIn(tx) commits the handler writes and the completion together', async () => {
    const id = await queue.enqueueNow(job());
    let attempt = 0;
    const w = worker(queue, clock, {
      'test.job': async (ctx) => {
        attempt++;
        await inTransaction(qdb.handle.db, async (uow) => {
          await sql`INSERT INTO job_runs VALUES (${ctx.job.id}, 'w', 'end', ${clock.now()}, ${attempt})`.execute(uow.tx);
          await ctx.completeIn(uow.tx);
          if (attempt === 1) throw new Error('fails after completeIn, before commit');
        });
      },
    }, { backoffBaseMs: 2 });
    w.start();
    await w.idle();
    assert.equal(await count(qdb.handle), 0, 'first attempt rolled back with its completion');
    assert.equal((await queue.get(id!))?.state, 'queued');
    clock.advance(10);
    await w.idle();
    assert.equal(await count(qdb.handle), 1);
    assert.equal(await queue.get(id!), undefined);
    await w.stop();
  });

  it('completeIn(tx) throws and rolls back when the lease was lost', async () => {
    const id = await queue.enqueueNow(job());
    const [mine] = await queue.claim('a', 1, 1000);
    clock.advance(1001);
    const [theirs] = await queue.claim('b', 1, 1000);
    assert.ok(theirs);
    // Same path the worker takes: completion by a stale owner deletes nothing.
    await assert.rejects(inTransaction(qdb.handle.db, async (uow) => {
      await sql`INSERT INTO job_runs VALUES (${id!}, 'a', 'end', 0, 0)`.execute(uow.tx);
      if (!(await queue.complete(mine!, uow.tx))) throw new Error('lease lost');
    }), /lease lost/);
    assert.equal(await count(qdb.handle), 0);
  });

  it('completeAtCommit deletes the jobs of a transaction in one statement, and fails the commit when a lease was lost', async () => {
    await Promise.all([1, 2, 3].map(() => queue.enqueueNow(job())));
    const claimed = await queue.claim('a', 3, 1000);
    assert.equal(claimed.length, 3);
    const ids = claimed.map((j) => j.id);
    await inTransaction(qdb.handle.db, async (uow) => {
      for (const j of claimed.slice(0, 2)) queue.completeAtCommit(uow, j);
      await sql`INSERT INTO job_runs VALUES (${ids[0]!}, 'a', 'end', 0, 0)`.execute(uow.tx);
    });
    assert.equal(await queue.get(ids[0]!), undefined);
    assert.equal(await queue.get(ids[1]!), undefined);
    assert.ok(await queue.get(ids[2]!));
    assert.equal(await count(qdb.handle), 1);
    // The third job's lease passes to another owner: completing it with the stale copy rolls back.
    clock.advance(1001);
    const [theirs] = await queue.claim('b', 1, 1000);
    assert.equal(theirs?.id, ids[2]);
    await assert.rejects(inTransaction(qdb.handle.db, async (uow) => {
      queue.completeAtCommit(uow, claimed[2]!);
      await sql`INSERT INTO job_runs VALUES (${ids[2]!}, 'a', 'end', 0, 0)`.execute(uow.tx);
    }), /lease lost/);
    assert.equal(await count(qdb.handle), 1);
    assert.ok(await queue.get(ids[2]!));
  });

  it('dedupe keys: one queued/running job per (kind, key); free again after completion or death', async () => {
    const a = await queue.enqueueNow({ ...job(), dedupeKey: 'k1' });
    assert.ok(a);
    assert.equal(await queue.enqueueNow({ ...job(), dedupeKey: 'k1' }), undefined);
    assert.ok(await queue.enqueueNow({ ...job('other.kind'), dedupeKey: 'k1' }), 'keys are per kind');
    const inTx = await inTransaction(qdb.handle.db, async (uow) => {
      const dup = await queue.enqueue(uow, { ...job(), dedupeKey: 'k1' });
      // The transaction stays usable after a duplicate (PostgreSQL aborts on a raised violation).
      const fresh = await queue.enqueue(uow, { ...job(), dedupeKey: 'k2' });
      return { dup, fresh };
    });
    assert.equal(inTx.dup, undefined);
    assert.ok(inTx.fresh);
    const [claimed] = await queue.claim('a', 1, 1000, ['test.job']);
    assert.equal(await queue.enqueueNow({ ...job(), dedupeKey: claimed!.id === a ? 'k1' : 'k2' }), undefined, 'running still dedupes');
    await queue.fail(claimed!, 'x', 'dead');
    assert.ok(await queue.enqueueNow({ ...job(), dedupeKey: claimed!.id === a ? 'k1' : 'k2' }), 'a dead job frees its key');
  });

  it('reports depth and the age of the oldest due job', async () => {
    await queue.enqueueNow(job());
    await queue.enqueueNow({ ...job(), runAt: clock.now() + 60_000 });
    clock.advance(3000);
    const d = await queue.depth();
    assert.equal(d.queued, 2);
    assert.equal(d.oldestDueMs, 3000);
  });

  // Jobs leased at enqueue: run by this process's worker right after commit (LocalJobs).
  it('runs in the adopting worker without being claimed, and is gone once done', async () => {
    const ran: unknown[] = [];
    const w = worker(queue, clock, { 'test.local': async ({ job }) => void ran.push(job.payload.n) });
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

  it('does not claim after handed-over jobs finish while the queue is known empty; a queued job is still found', async () => {
    let claims = 0;
    const counting: JobQueue = { ...queue, claim: (...args) => (claims++, queue.claim(...args)) };
    const ran: number[] = [];
    const w = worker(counting, clock, { 'test.local': async ({ job }) => void ran.push(job.payload.n as number) }, { idlePollMs: 200 });
    w.start();
    try {
      await w.idle();
      const before = claims;
      for (let n = 0; n < 20; n++) {
        assert.equal(w.reserve(1), 1);
        const job = await inTransaction(qdb.handle.db, (uow) => queue.enqueueLeased(uow, { kind: 'test.local', payload: { v: 1, n } }, w.owner, w.leaseMs));
        w.adopt(job);
        await new Promise((r) => setImmediate(r));
      }
      while (ran.length < 20) await new Promise((r) => setTimeout(r, 5));
      assert.ok(claims - before <= 1, `claims while handed-over jobs ran: ${claims - before}`);
      // Queued by another process (no wake-up here): the poll finds it.
      await qdb.open().db.insertInto('jobs').values({
        id: 'zz-queued-elsewhere', kind: 'test.local', api_space_id: null, payload: JSON.stringify({ v: 1, n: 99 }), state: 'queued', run_at: clock.now(), attempts: 0, max_attempts: 3,
        lease_owner: null, lease_until: null, last_error: null, dedupe_key: null, created_at: clock.now(), updated_at: clock.now(),
      }).execute();
      const t = performance.now();
      while (!ran.includes(99) && performance.now() - t < 2000) await new Promise((r) => setTimeout(r, 10));
      assert.ok(ran.includes(99), 'the poll found the job queued elsewhere');
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
    const w = worker(queue, clock, { 'test.local': async () => {} }, { concurrency: 3 });
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

  it('hands back what a claim under way when it stops returns, and stop() waits for that claim', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let claims = 0;
    // The first claim waits at the gate, then runs: it leases the job enqueued meanwhile.
    const slow: JobQueue = { ...queue, claim: async (...args) => (claims++ === 0 ? gate.then(() => queue.claim(...args)) : queue.claim(...args)) };
    let ran = 0;
    const w = worker(slow, clock, { 'test.stop': async () => void ran++ });
    w.start();
    const id = await queue.enqueueNow(job('test.stop'));
    let stopped = false;
    const stopping = w.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(stopped, false, 'stop() waits for the claim under way');
    release();
    await stopping;
    assert.equal(ran, 0, 'a stopped worker runs nothing');
    const stored = await queue.get(id!);
    assert.equal(stored?.state, 'queued', 'handed back to run elsewhere at once');
    assert.equal(stored?.lastError, 'worker stopped before running the job');
  });

  it('a rolled-back enqueue runs the rollback callbacks and stores nothing', async () => {
    const w = worker(queue, clock, { 'test.local': async () => {} }, { concurrency: 2 });
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

describe('job queue under concurrency [postgres]', { skip: TEST_DATABASE_URL ? false : 'TEST_DATABASE_URL not set' }, () => {
  let qdb: QueueDb;
  before(async () => {
    if (TEST_DATABASE_URL) qdb = await createQueueDb('postgres', 3);
  });
  after(async () => {
    await qdb?.close();
  });

  it('4 workers × concurrency 8 run 500 jobs each exactly once, never twice at a time', async () => {
    const N = 500;
    const running = new Set<string>();
    const overlaps: string[] = [];
    const queues: JobQueue[] = [];
    const workers: Worker[] = [];
    let done = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    let seq = 0;
    for (let w = 0; w < 4; w++) {
      // Each "process" has its own pool, queue and worker on the same schema.
      const handle = qdb.open(3);
      const queue = createJobQueue({ handle, clock: systemClock, ids: randomIds });
      queues.push(queue);
      const name = `w${w}`;
      workers.push(createWorker({
        queue, clock: systemClock, log, owner: name, concurrency: 8, leaseMs: 5000, idlePollMs: 200,
        handlers: new Map([['load.job', async (ctx) => {
          if (running.has(ctx.job.id)) overlaps.push(ctx.job.id);
          running.add(ctx.job.id);
          await sql`INSERT INTO job_runs VALUES (${ctx.job.id}, ${name}, 'start', ${Date.now()}, ${++seq})`.execute(handle.db);
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          running.delete(ctx.job.id);
          await inTransaction(handle.db, async (uow) => {
            await sql`INSERT INTO job_runs VALUES (${ctx.job.id}, ${name}, 'end', ${Date.now()}, ${++seq})`.execute(uow.tx);
            await ctx.completeIn(uow.tx);
          });
          if (++done === N) resolveAll();
        }]]),
      }));
    }
    await Promise.all(queues.map((q) => q.ready()));
    for (const w of workers) w.start();
    // Enqueue from two producers while the workers run.
    await Promise.all([0, 1].map(async (p) => {
      for (let i = p; i < N; i += 2) await queues[p]!.enqueueNow({ kind: 'load.job', payload: { v: 1, i } });
    }));
    const timeout = setTimeout(() => resolveAll(), 60_000);
    await all;
    clearTimeout(timeout);
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(queues.map((q) => q.close()));
    assert.equal(done, N);
    assert.deepEqual(overlaps, []);
    const perJob = await sql<{ job_id: string; starts: number; ends: number }>`
      SELECT job_id, SUM(CASE WHEN phase = 'start' THEN 1 ELSE 0 END) AS starts, SUM(CASE WHEN phase = 'end' THEN 1 ELSE 0 END) AS ends
      FROM job_runs GROUP BY job_id`.execute(qdb.handle.db);
    assert.equal(perJob.rows.length, N);
    assert.ok(perJob.rows.every((r) => Number(r.starts) === 1 && Number(r.ends) === 1), 'each job started and ended exactly once');
    const byWorker = await sql<{ worker: string; n: number }>`SELECT worker, COUNT(*) AS n FROM job_runs WHERE phase = 'end' GROUP BY worker`.execute(qdb.handle.db);
    assert.ok(byWorker.rows.length >= 2, `work spread over workers: ${JSON.stringify(byWorker.rows)}`);
    assert.equal(Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM jobs`.execute(qdb.handle.db)).rows[0]!.n), 0);
  });

  it('LISTEN/NOTIFY wakes a worker in another process well before its idle poll', async () => {
    const producer = createJobQueue({ handle: qdb.open(2), clock: systemClock, ids: randomIds });
    const consumer = createJobQueue({ handle: qdb.open(2), clock: systemClock, ids: randomIds });
    await consumer.ready();
    let picked!: (at: number) => void;
    const pickedAt = new Promise<number>((r) => (picked = r));
    const w = createWorker({
      queue: consumer, clock: systemClock, log, owner: 'listener', concurrency: 1, idlePollMs: 10_000,
      handlers: new Map([['wake.job', async () => picked(Date.now())]]),
    });
    w.start();
    await new Promise((r) => setTimeout(r, 100)); // let the first (empty) poll settle into its idle sleep
    const latencies: number[] = [];
    const t0 = Date.now();
    await inTransaction(qdb.handle.db, async (uow) => {
      await producer.enqueue(uow, { kind: 'wake.job', payload: { v: 1 } });
    });
    latencies.push((await pickedAt) - t0);
    await w.stop();
    await producer.close();
    await consumer.close();
    assert.ok(latencies[0]! < 1000, `picked after ${latencies[0]} ms (idle poll 10 s)`);
  });

  it('the LISTEN connection comes back after being killed, and wake-ups work again', async () => {
    const consumer = createJobQueue({ handle: qdb.open(2), clock: systemClock, ids: randomIds });
    let producer: JobQueue | undefined;
    let w: Worker | undefined;
    try {
      await consumer.ready();
      const channel = `sb_jobs_${qdb.location.schema}`;
      const listeners = async () => (await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE query = ${`LISTEN ${channel}`}`.execute(qdb.handle.db)).rows.map((r) => r.pid);
      const before = await listeners();
      assert.ok(before.length >= 1);
      for (const pid of before) await sql`SELECT pg_terminate_backend(${pid})`.execute(qdb.handle.db);
      const until = Date.now() + 10_000;
      let fresh: number[] = [];
      while (Date.now() < until) {
        fresh = (await listeners()).filter((pid) => !before.includes(pid));
        if (fresh.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(fresh.length, 1, 'a new listener connected');
      producer = createJobQueue({ handle: qdb.open(2), clock: systemClock, ids: randomIds });
      let picked!: (at: number) => void;
      const pickedAt = new Promise<number>((r) => (picked = r));
      w = createWorker({
        queue: consumer, clock: systemClock, log, owner: 'relisten', concurrency: 1, idlePollMs: 10_000,
        handlers: new Map([['relisten.job', async () => picked(Date.now())]]),
      });
      w.start();
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      await producer.enqueueNow({ kind: 'relisten.job', payload: { v: 1 } });
      const latency = (await Promise.race([pickedAt, new Promise<number>((r) => setTimeout(() => r(Infinity), 5000))])) - t0;
      assert.ok(latency < 1000, `picked after ${latency} ms (idle poll 10 s)`);
    } finally {
      await w?.stop();
      await producer?.close();
      await consumer.close();
    }
  });
});

// WORKER_THREAD: the main thread reserves slots of the thread's worker through shared memory.
it('shared slots: every view of the buffer takes from the same free count; a claim may overdraw it; closed gives nothing', () => {
  const buffer = slotsBuffer(4);
  const worker = sharedSlots(buffer);
  const other = sharedSlots(buffer);
  assert.equal(other.take(3), 3);
  assert.equal(worker.free(), 1);
  assert.equal(worker.take(5), 1);
  assert.equal(other.take(1), 0, 'no free slot left');
  // Jobs a claim returned run even if reservations came meanwhile.
  worker.use(2);
  assert.equal(other.free(), -2);
  worker.give(3);
  other.give(3);
  assert.equal(worker.free(), 4);
  worker.close();
  assert.equal(other.take(1), 0, 'a stopped worker lends no slot');
  assert.equal(other.free(), 0);
  worker.open();
  assert.equal(other.take(1), 1);
});
