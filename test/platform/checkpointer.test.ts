import { it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { sql } from 'kysely';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src/storage/db.js';
import { startCheckpointer } from '../../src/storage/checkpointer.js';
import { dropLocation, freshLocation, type DatabaseLocation } from '../helpers/harness.js';

/**
 * A table written through its own connection as the server's connection writes: in WAL mode with
 * the automatic checkpoint as a far backstop, and a write that finds the lock taken failing at
 * once with SQLITE_BUSY (the server waits for locks itself, storage/uow.ts `waitingForLocks`).
 */
function walTable(location: DatabaseLocation) {
  const db = new Database(location.url);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 100000');
  db.pragma('busy_timeout = 0');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const write = db.transaction((rows: number) => {
    for (let i = 0; i < rows; i++) insert.run('x'.repeat(1000));
  });
  return { db, write };
}

const isBusy = (err: unknown) => (err as { code?: string }).code === 'SQLITE_BUSY';

it('SQLite: the WAL is copied into the database file by the background checkpointer, not by commits', async () => {
  const location = freshLocation('sqlite');
  const handle = openDatabase(location.url);
  try {
    await sql`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`.execute(handle.db);
    const before = statSync(location.url).size;
    // ~2 MB of commits: far below the main connection's own automatic checkpoint (100,000 pages).
    for (let i = 0; i < 200; i++) await sql`INSERT INTO t (v) VALUES (${'x'.repeat(10_000)})`.execute(handle.db);
    const deadline = Date.now() + 5000;
    while (statSync(location.url).size <= before + 1_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(statSync(location.url).size > before + 1_000_000, 'only a checkpoint writes the database file');
    assert.equal(Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM t`.execute(handle.db)).rows[0]!.n), 200);
  } finally {
    await handle.close();
    await dropLocation(location);
  }
});

it('SQLite: under steady writes the checkpointer starts the WAL over instead of letting it grow', async () => {
  const location = freshLocation('sqlite');
  const { db, write } = walTable(location);
  const checkpointer = startCheckpointer(location.url, { intervalMs: 5, restartPages: 256 });
  try {
    // 40 MB of commits with no pause long enough for a PASSIVE checkpoint to catch up before the
    // next transaction: without a RESTART, SQLite would keep appending to the WAL.
    let written = 0;
    while (written < 40_000) {
      try {
        write(100);
        written += 100;
      } catch (err) {
        if (!isBusy(err)) throw err; // the RESTART holds the write lock
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    const walBytes = statSync(`${location.url}-wal`).size;
    assert.ok(walBytes < 12_000_000, `the WAL reached ${walBytes} bytes`);
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n, 40_000);
  } finally {
    await checkpointer.close();
    db.close();
    await dropLocation(location);
  }
});

it('SQLite: while a long read holds the WAL back, the checkpointer waits between passes and does not keep writers waiting', async () => {
  const location = freshLocation('sqlite');
  const { db, write } = walTable(location); // a write that finds the lock taken is counted below
  write(20); // the reader's snapshot holds these frames
  // An export reading for seconds: its snapshot keeps every later frame in the WAL.
  const reader = new Database(location.url);
  reader.exec('BEGIN');
  reader.prepare('SELECT COUNT(*) FROM t').get();
  const checkpointer = startCheckpointer(location.url, { intervalMs: 100, pages: 16, restartPages: 64 });
  const cpu0 = process.cpuUsage();
  let done = 0;
  let refused = 0;
  try {
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      try {
        write(20);
        done++;
      } catch (err) {
        if (!isBusy(err)) throw err;
        refused++;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    // RESTART holds the write lock while it waits (25 ms at most), then leaves it for an interval:
    // about one write in four finds it taken; a thread that tried again at once refused four in five.
    assert.ok(refused < done, `${refused} writes refused, ${done} done`);
  } finally {
    reader.exec('COMMIT');
    reader.close();
    await checkpointer.close();
    db.close();
    await dropLocation(location);
  }
  // The thread's CPU counts in this process's: it waits between passes that copy nothing.
  const cpu = process.cpuUsage(cpu0);
  assert.ok(cpu.user + cpu.system < 1_200_000, `${(cpu.user + cpu.system) / 1000} ms of CPU in 1.5 s`);
});

it('SQLite: a connection opened with checkpointer: false leaves the copying to another connection', async () => {
  const location = freshLocation('sqlite');
  // The workers' thread opens the file so: the main thread's connection checkpoints for both.
  const handle = openDatabase(location.url, { checkpointer: false });
  try {
    await sql`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`.execute(handle.db);
    const before = statSync(location.url).size;
    for (let i = 0; i < 200; i++) await sql`INSERT INTO t (v) VALUES (${'x'.repeat(10_000)})`.execute(handle.db);
    // The first test's checkpointer copies this much within a second (it runs every 500 ms).
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(statSync(location.url).size, before, 'no checkpoint wrote the database file');
    assert.ok(statSync(`${location.url}-wal`).size > 2_000_000);
  } finally {
    await handle.close();
    await dropLocation(location);
  }
});
