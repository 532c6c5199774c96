/**
 * Two processes starting on one fresh SQLite file (an API process and a worker process) migrate
 * at the same time: one runs the migrations, the other waits for it and finds nothing left to do.
 * Here two connections in one process stand for the two processes.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrations/index.js';
import { moduleDefinitions } from '../../src/modules/index.js';

const all = moduleDefinitions.flatMap((d) => d.migrations ?? []);

it('two connections migrating one fresh SQLite file at once both succeed, and each step runs once', async () => {
  for (let round = 0; round < 3; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'sb-migrate-'));
    const file = join(dir, 'db.sqlite');
    const a = openDatabase(file);
    const b = openDatabase(file);
    try {
      const [ranA, ranB] = await Promise.all([migrate(a, all), migrate(b, all)]);
      const names = [...ranA, ...ranB];
      assert.equal(new Set(names).size, names.length, 'no step ran twice');
      const applied = await a.db.selectFrom('kysely_migration' as never).select('name' as never).execute();
      assert.equal(applied.length, names.length, 'every recorded step ran exactly once, in one of the two');
      assert.ok(names.length > all.length, 'platform and module steps');
    } finally {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
