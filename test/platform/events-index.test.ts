import { it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDatabase, startServer, dropLocation, type DatabaseLocation, type TestServer } from '../helpers/harness.js';
import type { Db } from '../../src/storage/db.js';

/**
 * The events log has no index by space (migration 0004): nothing reads it that way, and every
 * append paid for the entry. A database made before loses the index when it is next migrated.
 */
eachDatabase('events: no index by space', (dialect) => {
  const hasIndex = async (db: Db) => (dialect === 'postgres'
    ? (await sql`SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'events_space'`.execute(db)).rows.length
    : (await sql`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_space'`.execute(db)).rows.length) > 0;

  it('drops the index from an existing database; the log appends and reads as before', async () => {
    let s: (TestServer & { location: DatabaseLocation }) | undefined = await startServer(dialect, { env: { WORKERS_ENABLED: 'false' } });
    const location = s.location;
    try {
      const platform = s.container.platform;
      assert.equal(await hasIndex(platform.db), false);
      // The shape before the migration: the index, the step not run.
      await sql`CREATE INDEX events_space ON events (api_space_id, id)`.execute(platform.db);
      await sql`DELETE FROM kysely_migration WHERE name = '0004_events_without_space_index'`.execute(platform.db);
      await platform.transaction((uow) => platform.events.append(uow, { apiSpaceId: 'space-a', accountId: 1, name: 'test.before', payload: { n: 1 } }));
      await s.close();
      s = await startServer(dialect, { location, env: { WORKERS_ENABLED: 'false' } });
      const after = s.container.platform;
      assert.equal(await hasIndex(after.db), false);
      await after.transaction((uow) => after.events.appendMany(uow, [
        { apiSpaceId: 'space-b', accountId: 1, name: 'test.after', payload: { n: 2 } },
        { apiSpaceId: 'space-a', accountId: 1, name: 'test.after', payload: { n: 3 } },
      ]));
      const log = (await after.events.readAfter(0, 100)).filter((e) => e.name.startsWith('test.'));
      assert.deepEqual(log.map((e) => [e.apiSpaceId, e.name, e.payload]), [['space-a', 'test.before', { n: 1 }], ['space-b', 'test.after', { n: 2 }], ['space-a', 'test.after', { n: 3 }]]);
    } finally {
      await s?.close();
      await dropLocation(location);
    }
  });
});
