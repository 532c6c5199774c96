import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { profileModules, seededQueries } from './helpers.js';

// Filters on `id` and on container paths (objects, arrays, empty ones, arrays of objects), which
// depend on how ids and containers are represented in the field index.
const PEOPLE = [
  { id: 'Ann', loyalty: { tier: 'gold' }, tags: ['a'], items: [{ sku: 'x1', qty: 2 }] },
  { id: 'bob', loyalty: {}, tags: [], deep: { x: { y: { z: 1 } } } },
  { id: 'Carl-X', tags: [[1, 2]], items: [], deep: { x: {} } },
  { id: 'dave7', loyalty: null, items: [{}], deep: { x: { y: null } } },
  { id: '7', tags: ['7', 7] },
  { id: 'true', active: true },
  { id: 'ÉLAN', name: 'É' },
];

eachDatabase('profiles: filters on id and on containers', (dialect) => {
  const s = useServer(dialect, profileModules);
  const { space, query } = seededQueries(s, PEOPLE);
  const ids = async (qs: string): Promise<string[]> => {
    const { list, total } = await query(qs);
    if (!qs.includes('$limit')) assert.equal(total, String(list.length), qs);
    return list;
  };

  const all = ['7', 'Ann', 'Carl-X', 'bob', 'dave7', 'true', 'ÉLAN'];
  const cases: Array<[string, string[]]> = [
    ['id=Ann', ['Ann']],
    ['id=ann', []],
    ['id=!Ann', ['7', 'Carl-X', 'bob', 'dave7', 'true', 'ÉLAN']],
    ['id[]=Ann&id[]=bob', ['Ann', 'bob']],
    ['id[]=!Ann&id[]=!bob', ['7', 'Carl-X', 'dave7', 'true', 'ÉLAN']],
    ['id=7', ['7']],
    ["id='7'", ['7']],
    ['id=true', ['true']],
    ['id=>c', ['dave7', 'true', 'ÉLAN']],
    ['id=<=Ann', ['7', 'Ann']],
    ['id=>5', []],
    ['id=^AN', ['Ann']],
    ['id=^c', ['Carl-X']],
    ['id=^élan', ['ÉLAN']],
    ['id=^', all],
    ['id=$X', ['Carl-X']],
    ['id=$7', ['7', 'dave7']],
    ['id=~AR', ['Carl-X']],
    ['id=~LA', ['ÉLAN']],
    ['id=~ru', ['true']],
    ['id=', all],
    ['id=!', []],
    ['loyalty=', ['Ann', 'bob', 'dave7']],
    ['loyalty=!', ['7', 'Carl-X', 'true', 'ÉLAN']],
    ['loyalty.tier=', ['Ann']],
    ['tags=', ['7', 'Ann', 'Carl-X', 'bob']],
    ['tags=!', ['dave7', 'true', 'ÉLAN']],
    ['tags=7', ['7']],
    ['tags=!a', ['7', 'Carl-X', 'bob', 'dave7', 'true', 'ÉLAN']],
    ['items=', ['Ann', 'Carl-X', 'dave7']],
    ['items=!', ['7', 'bob', 'true', 'ÉLAN']],
    ['items.sku=x1', ['Ann']],
    ['items.qty=>1', ['Ann']],
    ['items.sku=', ['Ann']],
    ['deep=', ['Carl-X', 'bob', 'dave7']],
    ['deep.x=', ['Carl-X', 'bob', 'dave7']],
    ['deep.x.y=', ['bob', 'dave7']],
    ['deep.x.y=!', ['7', 'Ann', 'Carl-X', 'true', 'ÉLAN']],
    ['deep.x.y.z=1', ['bob']],
    ['deep.x.y.z=', ['bob']],
    ['deep.x.y.z=!', ['7', 'Ann', 'Carl-X', 'dave7', 'true', 'ÉLAN']],
    ['active=true', ['true']],
    ['active=', ['true']],
    ['$sort=-id', [...all].reverse()],
    ['$sort=tags&$limit=3', ['Carl-X', 'bob', 'dave7']],
  ];
  for (const [qs, expected] of cases) {
    it(`filter ${qs}`, async () => {
      assert.deepEqual(await ids(qs), expected);
    });
  }

  // Updates rewrite only the index rows that change (from the first changed value on): the index
  // must still answer exactly as for freshly written profiles.
  it('rewrites the index on merges, replaces and deletes of fields', async () => {
    const url = (p: string) => `/apispaces/${space()}/profiles${p}`;
    const bulk = await s().request({
      method: 'PATCH', url: url('/bulk'), payload: [
        { id: 'Ann', loyalty: { tier: 'silver' } }, // a value in the middle changes
        { id: 'bob', extra: 'e', tags: ['b'] }, // a value appended, an empty array filled
        { id: 'dave7', loyalty: { tier: 'gold' } }, // null becomes an object
        { id: 'Ann', items: [] }, // the same profile twice in one request
      ],
    });
    assert.equal(bulk.statusCode, 200, bulk.body);
    const put = await s().request({ method: 'PUT', url: url('/Carl-X'), payload: { id: 'Carl-X', deep: { x: { y: 2 } } } }); // shrinks
    assert.equal(put.statusCode, 200, put.body);
    const patch = await s().request({ method: 'PATCH', url: url('/7?deletes=tags'), payload: { after: 1 } });
    assert.equal(patch.statusCode, 200, patch.body);
    const after: Array<[string, string[]]> = [
      ['loyalty.tier=gold', ['dave7']],
      ['loyalty.tier=silver', ['Ann']],
      ['loyalty=', ['Ann', 'bob', 'dave7']],
      ['loyalty=!', ['7', 'Carl-X', 'true', 'ÉLAN']],
      ['items=', ['Ann', 'dave7']],
      ['items.sku=x1', []],
      ['tags=', ['Ann', 'bob']],
      ['tags=b', ['bob']],
      ['tags=7', []],
      ['extra=e', ['bob']],
      ['deep.x.y=2', ['Carl-X']],
      ['deep.x.y=', ['Carl-X', 'bob', 'dave7']],
      ['deep.x.y=!', ['7', 'Ann', 'true', 'ÉLAN']],
      ['after=1', ['7']],
      ['id=^an', ['Ann']],
      ['id=~a', ['Ann', 'Carl-X', 'dave7', 'ÉLAN']],
    ];
    for (const [qs, expected] of after) assert.deepEqual(await ids(qs), expected, qs);
  });

  it('keeps repeated values apart when some of them change', async () => {
    const url = (p: string) => `/apispaces/${space()}/profiles${p}`;
    const steps: Array<[unknown[], Array<[string, string[]]>]> = [
      [[{ id: 'rep', r: ['x', 'x', 'y', 1, 1] }], [['r=x', ['rep']], ['r=y', ['rep']], ['r=1', ['rep']]]],
      [[{ id: 'rep', r: ['x'] }], [['r=x', ['rep']], ['r=y', []], ['r=1', []], ['r=!y', ['rep']], ['r=!x', []]]],
      [[{ id: 'rep', r: ['y', 'x', 'x', 'z'], s: 1 }, { id: 'rep', s: 2 }], [['r=y', ['rep']], ['r=z', ['rep']], ['s=1', []], ['s=2', ['rep']]]],
      [[{ id: 'rep', r: [] }], [['r=x', []], ['r=', ['rep']], ['s=2', ['rep']]]],
    ];
    for (const [payload, checks] of steps) {
      const res = await s().request({ method: 'PATCH', url: url('/bulk'), payload });
      assert.equal(res.statusCode, 200, res.body);
      assert.ok(res.json().every((r: { result: string }) => r.result !== 'failed'), res.body);
      for (const [qs, expected] of checks) assert.deepEqual(await ids(`${qs}&id=rep`), expected, qs);
    }
  });
});
