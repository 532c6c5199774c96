/**
 * SQLite write-lock waits (storage/uow.ts waitingForLocks): while another connection — another
 * process in a split deployment, a worker thread here — holds the write lock, a transaction waits
 * without stopping this process's event loop, and commits once the lock is free; so does a statement
 * outside a transaction, such as a job claim (delivery/queue.ts), the worker's most frequent write.
 */
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { sql } from 'kysely';
import { openDatabase } from '../../src/storage/db.js';
import { inTransaction, lockReleasesBuffer, shareLockReleases } from '../../src/storage/uow.js';
import { migrate } from '../../src/storage/migrations/index.js';
import { createJobQueue } from '../../src/delivery/queue.js';
import { systemClock } from '../../src/lib/clock.js';
import { randomIds } from '../../src/lib/ids.js';

const HOLDER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
db.exec('BEGIN IMMEDIATE');
db.prepare("INSERT INTO t (v) VALUES ('holder')").run();
parentPort.postMessage('locked');
const until = Date.now() + workerData.holdMs;
while (Date.now() < until) {}
db.exec('COMMIT');
db.close();
// A thread of the same process sharing the lock-release counter (WORKER_THREAD) signals it.
if (workerData.releases) {
  const counter = new Int32Array(workerData.releases);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
}
parentPort.postMessage('released');
`;

const dir = mkdtempSync(join(tmpdir(), 'sb-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs `work` while a worker thread holds the write lock for `holdMs`; returns when `work` ended
 * (ms, performance clock), when the holder released the lock, and the event loop's worst gap.
 */
async function whileLocked<T>(file: string, work: () => Promise<T>, releases?: SharedArrayBuffer): Promise<{ result: T; done: number; freed: number; worstGap: number }> {
  const holder = new Worker(HOLDER, { eval: true, workerData: { file, holdMs: 300, releases, module: createRequire(import.meta.url).resolve('better-sqlite3') } });
  const released = new Promise<number>((resolve) => holder.on('message', (m) => m === 'released' && resolve(performance.now())));
  await new Promise<void>((resolve) => holder.on('message', (m) => m === 'locked' && resolve()));
  let last = performance.now();
  let worstGap = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    worstGap = Math.max(worstGap, now - last);
    last = now;
  }, 5);
  const result = await work();
  const done = performance.now();
  // One more tick measures the stretch up to the end, had the wait blocked the thread.
  await new Promise((resolve) => setTimeout(resolve, 15));
  clearInterval(ticker);
  const freed = await released;
  await holder.terminate();
  return { result, done, freed, worstGap };
}

it("waits for another connection's write lock without blocking the event loop, then commits", async () => {
  const file = join(dir, 'lock.db');
  const handle = openDatabase(file);
  try {
    await sql`CREATE TABLE t (v TEXT NOT NULL)`.execute(handle.db);
    const { done, freed, worstGap } = await whileLocked(file, () => inTransaction(handle.db, async (uow) => {
      await sql`INSERT INTO t (v) VALUES ('mine')`.execute(uow.tx);
    }));
    assert.ok(done >= freed - 5, 'the transaction began only after the other connection committed');
    assert.ok(worstGap < 100, `the event loop stalled ${worstGap.toFixed(0)} ms while waiting for the lock`);
    const rows = (await sql<{ v: string }>`SELECT v FROM t ORDER BY rowid`.execute(handle.db)).rows.map((r) => r.v);
    assert.deepEqual(rows, ['holder', 'mine']);
  } finally {
    await handle.close();
  }
});

it('claims jobs without blocking the event loop while another connection holds the lock', async () => {
  const file = join(dir, 'claim.db');
  const handle = openDatabase(file);
  try {
    await migrate(handle);
    await sql`CREATE TABLE t (v TEXT NOT NULL)`.execute(handle.db);
    const queue = createJobQueue({ handle, clock: systemClock, ids: randomIds });
    await queue.enqueueNow({ kind: 'test.lock', payload: { v: 1 } });
    const { result, worstGap } = await whileLocked(file, () => queue.claim('me', 10, 30_000, ['test.lock']));
    assert.equal(result.length, 1);
    assert.ok(worstGap < 100, `the event loop stalled ${worstGap.toFixed(0)} ms while the claim waited for the lock`);
  } finally {
    await handle.close();
  }
});

it("threads sharing the lock-release counter signal each release and wake on the other's", async () => {
  const file = join(dir, 'signal.db');
  const handle = openDatabase(file);
  const releases = lockReleasesBuffer();
  const counter = new Int32Array(releases);
  shareLockReleases(releases);
  try {
    await sql`CREATE TABLE t (v TEXT NOT NULL)`.execute(handle.db);
    const before = Atomics.load(counter, 0);
    await inTransaction(handle.db, async (uow) => {
      await sql`INSERT INTO t (v) VALUES ('first')`.execute(uow.tx);
    });
    assert.ok(Atomics.load(counter, 0) > before, 'a commit signals a release');
    const { done, freed, worstGap } = await whileLocked(file, () => inTransaction(handle.db, async (uow) => {
      await sql`INSERT INTO t (v) VALUES ('mine')`.execute(uow.tx);
    }), releases);
    assert.ok(done >= freed - 5, 'the transaction began only after the other thread committed');
    assert.ok(worstGap < 100, `the event loop stalled ${worstGap.toFixed(0)} ms while waiting for the lock`);
    const rows = (await sql<{ v: string }>`SELECT v FROM t ORDER BY rowid`.execute(handle.db)).rows.map((r) => r.v);
    assert.deepEqual(rows, ['first', 'holder', 'mine']);
  } finally {
    shareLockReleases(undefined);
    await handle.close();
  }
});
