import { it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDatabase, startServer, dropLocation, type DatabaseLocation, type TestServer } from '../helpers/harness.js';
import { profileModules } from './helpers.js';

/**
 * The field index keys its rows by an integer per space (`profile_space_keys`, migration
 * 0101): a database indexed by space id is converted in place, keys allocated by a transaction
 * that rolls back are not kept, and two spaces never see each other's rows.
 */
eachDatabase('profile space keys', (dialect) => {
  const people = [
    { id: 'ann', email: 'ann@example.com', tier: 'gold', points: 5 },
    { id: 'Bob', email: 'Bob@Example.com', tier: 'silver', points: 7, tags: ['a', 'b'] },
  ];
  const ids = async (s: TestServer, space: string, qs: string) => {
    const res = await s.request({ method: 'GET', url: `/apispaces/${space}/profiles?${qs}` });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().map((p: { id: string }) => p.id).sort();
  };

  it('converts an index keyed by space id, and queries answer as before', async () => {
    let location: DatabaseLocation | undefined;
    let s: (TestServer & { location: DatabaseLocation }) | undefined;
    try {
      s = await startServer(dialect, profileModules);
      location = s.location;
      const a = await s.createSpace('a');
      const b = await s.createSpace('b');
      for (const space of [a, b]) {
        const res = await s.request({ method: 'PATCH', url: `/apispaces/${space}/profiles/bulk`, payload: people });
        assert.equal(res.statusCode, 200, res.body);
      }
      const before = await Promise.all([a, b].map(async (space) => [await ids(s!, space, 'tier=gold'), await ids(s!, space, 'email=^bob'), await ids(s!, space, 'tags=b'), await ids(s!, space, 'points=>6')]));
      // Back to the shape before 0101: rows keyed by api_space_id, no key table, 0101 not run.
      const db = s.container.platform.db;
      await sql`CREATE TABLE profile_fields_old AS SELECT k.api_space_id, f.profile_id, f.seq, f.path, f.t, f.sv, f.lv, f.nv FROM profile_fields f JOIN profile_space_keys k ON k.space_key = f.space_key`.execute(db);
      const rows = Number((await sql<{ c: number }>`SELECT count(*) AS c FROM profile_fields`.execute(db)).rows[0]!.c);
      await sql`DROP TABLE profile_fields`.execute(db);
      await sql`DROP TABLE profile_space_keys`.execute(db);
      await sql`ALTER TABLE profile_fields_old RENAME TO profile_fields`.execute(db);
      await sql`DELETE FROM kysely_migration WHERE name = '0101_profile_space_keys'`.execute(db);
      await s.close();
      s = undefined;

      s = await startServer(dialect, { ...profileModules, location });
      const keys = await s.container.platform.db.selectFrom('profile_space_keys').selectAll().execute();
      assert.deepEqual(keys.map((k) => k.api_space_id).sort(), [a, b].sort());
      assert.equal(Number((await sql<{ c: number }>`SELECT count(*) AS c FROM profile_fields`.execute(s.container.platform.db)).rows[0]!.c), rows);
      const after = await Promise.all([a, b].map(async (space) => [await ids(s!, space, 'tier=gold'), await ids(s!, space, 'email=^bob'), await ids(s!, space, 'tags=b'), await ids(s!, space, 'points=>6')]));
      assert.deepEqual(after, before);
      assert.deepEqual(before[0], [['ann'], ['Bob'], ['Bob'], ['Bob']]);
      // Writes after the conversion keep the index right.
      const patch = await s.request({ method: 'PATCH', url: `/apispaces/${a}/profiles/ann`, payload: { tier: 'silver' } });
      assert.equal(patch.statusCode, 200, patch.body);
      assert.deepEqual(await ids(s, a, 'tier=silver'), ['Bob', 'ann']);
      assert.deepEqual(await ids(s, b, 'tier=silver'), ['Bob']);
    } finally {
      await s?.close();
      if (location) await dropLocation(location);
    }
  });

  it('does not keep a key allocated by a transaction that rolled back', async () => {
    const s = await startServer(dialect, profileModules);
    try {
      const space = await s.createSpace();
      const { platform, services } = s.container;
      const writer = services.profiles.writer;
      const item = writer.itemFrom({ id: 'carl', city: 'Leeds' }, 'merge');
      assert.ok(typeof item !== 'string');
      await assert.rejects(platform.transaction(async (uow) => {
        await writer.applyMany(uow, space, 'test', [item]);
        throw new Error('roll back');
      }), /roll back/);
      assert.equal((await platform.db.selectFrom('profile_space_keys').selectAll().where('api_space_id', '=', space).execute()).length, 0);
      // Another space takes a key meanwhile; the first space's next write allocates its own.
      const other = await s.createSpace('other');
      const res = await s.request({ method: 'PATCH', url: `/apispaces/${other}/profiles/bulk`, payload: [{ id: 'dee', city: 'Leeds' }] });
      assert.equal(res.statusCode, 200, res.body);
      const again = await s.request({ method: 'PATCH', url: `/apispaces/${space}/profiles/bulk`, payload: [{ id: 'carl', city: 'Leeds' }] });
      assert.equal(again.statusCode, 200, again.body);
      const keys = await platform.db.selectFrom('profile_space_keys').selectAll().execute();
      assert.equal(new Set(keys.map((k) => k.space_key)).size, keys.length);
      assert.ok(keys.some((k) => k.api_space_id === space));
      assert.deepEqual(await ids(s, space, 'city=Leeds'), ['carl']);
      assert.deepEqual(await ids(s, other, 'city=Leeds'), ['dee']);
    } finally {
      await s.close();
      await dropLocation(s.location);
    }
  });
});
