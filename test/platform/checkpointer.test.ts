import { it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { sql } from 'kysely';
import { openDatabase } from '../../src/storage/db.js';
import { dropLocation, freshLocation } from '../helpers/harness.js';

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
