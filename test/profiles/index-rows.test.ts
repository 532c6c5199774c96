import { it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { flatten } from '../../src/modules/profiles/profiles.repo.js';
import { profileModules } from './helpers.js';

/**
 * A write rewrites only the index rows of the values that changed, found by comparing the two
 * versions of the document (profiles.repo.ts `diffMembers`). Whatever the sequence of merges,
 * replacements and deletions, the stored rows are exactly those of the stored document.
 */
eachDatabase('profiles: index rows follow the document', (dialect) => {
  const s = useServer(dialect, profileModules);

  // A small deterministic generator (the same sequence on every run and database).
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const names = ['a', 'b', 'c', 'Tag', 'nested'];
  // Objects often, so that two versions of one object are compared member by member.
  const value = (depth: number): unknown => {
    switch (rnd(depth > 1 ? 7 : depth === 1 ? 11 : 14)) {
      case 0: return null;
      case 1: return rnd(2) === 0;
      case 2: return rnd(50) - 25 + (rnd(3) === 0 ? 0.5 : 0);
      case 3: return ['x', 'Mixed', 'ÄÖ', 'with "quote"', ''][rnd(5)];
      case 4: return [];
      case 5: return {};
      case 6: return 'v' + rnd(4);
      case 7: case 8: return Array.from({ length: rnd(4) }, () => value(depth + 1));
      case 9: return { a: value(depth + 1) };
      default: return Object.fromEntries(Array.from({ length: 1 + rnd(3) }, () => [names[rnd(names.length)]!, value(depth + 1)]));
    }
  };
  const doc = () => Object.fromEntries(Array.from({ length: 1 + rnd(4) }, () => [names[rnd(names.length)]!, value(0)]));

  it('matches the document after each of 120 random writes', async () => {
    const space = await s().createSpace();
    const url = (id: string, qs = '') => `/apispaces/${space}/profiles/${id}${qs}`;
    const ids = ['p1', 'Upper2'];
    for (const id of ids) assert.equal((await s().request({ method: 'POST', url: `/apispaces/${space}/profiles`, payload: { id, ...doc() } })).statusCode, 201);
    const db = s().container.platform.db;
    const repo = s().container.services.profiles.repo;
    const key = (r: { path: string; t: string; sv: string | null; lv: string | null; nv: number | null }) => JSON.stringify([r.path, r.t, r.sv, r.lv, r.nv === null ? null : Number(r.nv)]);
    for (let step = 0; step < 120; step++) {
      const id = ids[rnd(ids.length)]!;
      const kind = rnd(5);
      let res;
      if (kind === 0) res = await s().request({ method: 'PUT', url: url(id), payload: { id, ...doc() } });
      else if (kind === 1) res = await s().request({ method: 'PATCH', url: url(id, `?deletes=${names[rnd(names.length)]}.${names[rnd(names.length)]}`), payload: {} });
      else if (kind === 2) res = await s().request({ method: 'PATCH', url: `/apispaces/${space}/profiles/bulk`, payload: [{ id, ...doc() }, { id, [names[rnd(names.length)]!]: value(0) }] });
      else res = await s().request({ method: 'PATCH', url: url(id), payload: doc() });
      assert.equal(res.statusCode, 200, res.body);
      for (const pid of ids) {
        const state = (await repo.loadOne(db, space, pid))!;
        const stored = (await sql<{ path: string; t: string; sv: string | null; lv: string | null; nv: number | null }>`SELECT f.path, f.t, f.sv, f.lv, f.nv FROM profile_fields f
          JOIN profile_space_keys k ON k.space_key = f.space_key WHERE k.api_space_id = ${space} AND f.profile_id = ${pid}`.execute(db)).rows;
        assert.deepEqual(stored.map(key).sort(), flatten(pid, state.data).map(key).sort(), `step ${step}, ${pid}: ${JSON.stringify(state.data)}`);
      }
    }
  });
});
