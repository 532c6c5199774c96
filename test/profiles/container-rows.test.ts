import { it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { profileModules } from './helpers.js';

/**
 * Non-empty objects and arrays have no index row of their own on either database (they exist
 * through their children's paths, a byte-order range). Rows that earlier versions wrote for them on
 * PostgreSQL still answer "exists" correctly, and go when the value at their path is replaced.
 */
eachDatabase('profiles: container rows of earlier versions', (dialect) => {
  const s = useServer(dialect, profileModules);

  it('match exists/missing once, and are dropped when their value is replaced', async () => {
    const space = await s().createSpace();
    const put = await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, payload: { id: 'ann', loyalty: { tier: 'gold' }, tags: ['a'] } });
    assert.equal(put.statusCode, 201, put.body);
    assert.equal((await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, payload: { id: 'bob', name: 'Bob' } })).statusCode, 201);
    const db = s().container.platform.db;
    const rows = async () => (await sql<{ path: string; t: string }>`SELECT f.path, f.t FROM profile_fields f JOIN profile_space_keys k ON k.space_key = f.space_key
      WHERE k.api_space_id = ${space} AND f.profile_id = 'ann' ORDER BY f.path, f.t`.execute(db)).rows;
    assert.deepEqual(await rows(), [{ path: 'loyalty.tier', t: 's' }, { path: 'tags', t: 's' }], 'no rows for non-empty containers');
    // What an earlier version wrote on PostgreSQL: a row per container.
    await sql`INSERT INTO profile_fields (space_key, profile_id, seq, path, t, sv, lv, nv)
      SELECT space_key, 'ann', 90, 'loyalty', 'o', NULL, NULL, NULL FROM profile_space_keys WHERE api_space_id = ${space}`.execute(db);
    await sql`INSERT INTO profile_fields (space_key, profile_id, seq, path, t, sv, lv, nv)
      SELECT space_key, 'ann', 91, 'tags', 'a', NULL, NULL, NULL FROM profile_space_keys WHERE api_space_id = ${space}`.execute(db);
    const ids = async (qs: string) => {
      const res = await s().request({ method: 'GET', url: `/apispaces/${space}/profiles?${qs}` });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['x-total-count'], String(res.json().length));
      return res.json().map((p: { id: string }) => p.id);
    };
    assert.deepEqual(await ids('loyalty='), ['ann']);
    assert.deepEqual(await ids('loyalty=!'), ['bob']);
    assert.deepEqual(await ids('tags='), ['ann']);
    const patch = await s().request({ method: 'PATCH', url: `/apispaces/${space}/profiles/ann`, payload: { seen: true } });
    assert.equal(patch.statusCode, 200, patch.body);
    assert.deepEqual(await rows(), [{ path: 'loyalty', t: 'o' }, { path: 'loyalty.tier', t: 's' }, { path: 'seen', t: 'b' }, { path: 'tags', t: 'a' }, { path: 'tags', t: 's' }], 'other fields changed: the rows of these two stay');
    assert.deepEqual(await ids('loyalty='), ['ann']);
    assert.deepEqual(await ids('loyalty=!'), ['bob']);
    const replace = await s().request({ method: 'PATCH', url: `/apispaces/${space}/profiles/ann`, payload: { loyalty: 'none', tags: ['b'] } });
    assert.equal(replace.statusCode, 200, replace.body);
    assert.deepEqual(await rows(), [{ path: 'loyalty', t: 's' }, { path: 'seen', t: 'b' }, { path: 'tags', t: 's' }], 'the old container rows are gone');
    assert.deepEqual(await ids('loyalty=none'), ['ann']);
    assert.deepEqual(await ids('tags=b'), ['ann']);
    if (dialect === 'postgres') {
      const c = await sql<{ collation_name: string }>`SELECT collation_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'profile_fields' AND column_name = 'path'`.execute(db);
      assert.equal(c.rows[0]?.collation_name, 'C');
    }
  });

  if (dialect === 'postgres') {
    it('keeps the index rows of unchanged values when another field changes (keys built by the server match)', async () => {
      const space = await s().createSpace();
      const doc = { id: 'keys', plain: 'plain', mixed: 'MiXed Case', odd: 'with "quotes" \\ and: colon', n: 42, neg: -3.5, frac: 0.1, big: 1e21, tiny: 1e-7, yes: true, nothing: null, none: [], empty: {}, list: ['a', 2, 'A'], nested: { deep: { v: 'x' } } };
      assert.equal((await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, payload: doc })).statusCode, 201);
      const db = s().container.platform.db;
      const rows = async () => (await sql<{ seq: number; path: string; x: string }>`SELECT f.seq, f.path, f.xmin::text AS x FROM profile_fields f JOIN profile_space_keys k ON k.space_key = f.space_key
        WHERE k.api_space_id = ${space} AND f.profile_id = 'keys' ORDER BY f.seq`.execute(db)).rows;
      const before = await rows();
      const patch = await s().request({ method: 'PATCH', url: `/apispaces/${space}/profiles/keys`, payload: { plain: 'changed' } });
      assert.equal(patch.statusCode, 200, patch.body);
      const after = await rows();
      const rewritten = after.filter((r) => !before.some((b) => b.seq === r.seq && b.x === r.x)).map((r) => r.path);
      assert.deepEqual(rewritten, ['plain'], 'only the changed value is written again');
    });
  }
});
