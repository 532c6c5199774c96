import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { profileModules, seededQueries } from './helpers.js';

const PEOPLE = [
  { id: 'jane', name: 'Jane', email: 'jane.doe@Example.com', phoneNumber: '447400123456', loyalty: { tier: 'gold', points: 1200 }, tags: ['vip', 'uk'], active: true },
  { id: 'janet', name: 'Janet', email: 'janet@example.org', loyalty: { tier: 'silver', points: 100 }, tags: ['uk'], active: false },
  { id: 'sam', name: 'Sam', phoneNumber: '12025550123', loyalty: { tier: 'bronze', points: 80 }, code: '0123', active: true },
  { id: 'lee', name: 'Lee', email: 'lee@example.com', loyalty: { tier: 'gold', points: 99.5 }, tags: [], nick: null },
  { id: 'zoë+test@example.com', name: 'Zoë', email: 'ZOE@EXAMPLE.COM', loyalty: { points: '7' } },
];

eachDatabase('profiles: query operators', (dialect) => {
  const s = useServer(dialect, profileModules);
  const { space, query } = seededQueries(s, PEOPLE);
  const ids = async (qs: string, expectTotal?: number): Promise<string[]> => {
    const { list, total } = await query(qs);
    if (expectTotal !== undefined) assert.equal(total, String(expectTotal));
    return list;
  };

  const cases: Array<[string, string, string[]]> = [
    ['equality', 'name=Jane', ['jane']],
    ['equality is case-sensitive', 'name=jane', []],
    ['negation includes absent', 'loyalty.tier=!gold', ['janet', 'sam', 'zoë+test@example.com']],
    ['exists', 'email=', ['jane', 'janet', 'lee', 'zoë+test@example.com']],
    ['not exists', 'email=!', ['sam']],
    ['exists with null value', 'nick=', ['lee']],
    ['greater than', 'loyalty.points=>100', ['jane']],
    ['less than', 'loyalty.points=<100', ['lee', 'sam']],
    ['greater or equal', 'loyalty.points=>=100', ['jane', 'janet']],
    ['less or equal', 'loyalty.points=<=99.5', ['lee', 'sam']],
    ['range (repeated key, AND)', 'loyalty.points=>90&loyalty.points=<1000', ['janet', 'lee']],
    ['prefix, case-insensitive', 'name=^JA', ['jane', 'janet']],
    ['suffix, case-insensitive', 'email=$example.com', ['jane', 'lee', 'zoë+test@example.com']],
    ['contains, case-insensitive', 'email=~DOE', ['jane']],
    ['contains treats regex characters literally', 'email=~.', ['jane', 'janet', 'lee', 'zoë+test@example.com']],
    ['contains with LIKE wildcards literal', 'name=~%25', []],
    ['prefix on text stored lower-case', 'email=^LEE@', ['lee']],
    ['suffix on a lower-case id', 'id=$ET', ['janet']],
    ['contains on mixed and lower-case text', 'email=~E.', ['jane', 'janet', 'lee', 'zoë+test@example.com']],
    ['prefix does not match booleans', 'active=^tr', []],
    ['contains does not match booleans', 'active=~ru', []],
    ['in list', 'loyalty.tier[]=gold&loyalty.tier[]=silver', ['jane', 'janet', 'lee']],
    ['not in list', 'loyalty.tier[]=!gold&loyalty.tier[]=!silver', ['sam', 'zoë+test@example.com']],
    ['repeated plain key is an in list', 'name=Jane&name=Sam', ['jane', 'sam']],
    ['array element match', 'tags=uk', ['jane', 'janet']],
    ['array negation', 'tags=!vip', ['janet', 'lee', 'sam', 'zoë+test@example.com']],
    ['number matches text too', 'loyalty.points=7', ['zoë+test@example.com']],
    ['numeric text matches stored string', 'phoneNumber=447400123456', ['jane']],
    ['phone filter accepts a leading plus', 'phoneNumber=+44%207400%20123456', ['jane']],
    ['quoted value is text only', "code='0123'", ['sam']],
    ['unquoted leading zero compares as number and text', 'code=0123', ['sam']],
    ['boolean', 'active=true', ['jane', 'sam']],
    ['boolean false', 'active=false', ['janet']],
    ['id filter keeps plus sign', 'id=zoë+test@example.com', ['zoë+test@example.com']],
    ['derived country code', 'phoneNumberCountryCode=~gb', ['jane']],
    ['AND across keys', 'loyalty.tier=gold&tags=vip', ['jane']],
  ];
  for (const [name, qs, expected] of cases) {
    it(`operator: ${name} (${qs})`, async () => {
      assert.deepEqual(await ids(qs, expected.length), expected);
    });
  }

  it('sorts, pages, projects', async () => {
    assert.deepEqual(await ids('$sort=-loyalty.points&$limit=2', 5), ['zoë+test@example.com', 'jane']); // strings sort after numbers
    assert.deepEqual(await ids('$sort=loyalty.points'), ['sam', 'lee', 'janet', 'jane', 'zoë+test@example.com']);
    assert.deepEqual(await ids('$sort=name&$skip=3&$limit=10', 5), ['sam', 'zoë+test@example.com']);
    const res = await s().request({ method: 'GET', url: `/apispaces/${space()}/profiles?id=jane&$fields=loyalty.tier,name` });
    assert.deepEqual(res.json(), [{ id: 'jane', name: 'Jane', loyalty: { tier: 'gold' } }]);
  });

  it('rejects bad controls and geo queries', async () => {
    for (const qs of ['$limit=0', '$limit=1001', '$skip=-1', '$nope=1', '$includeDeleted=maybe', 'near=1.5,2.5', 'a..b=1']) {
      const res = await s().request({ method: 'GET', url: `/apispaces/${space()}/profiles?${qs}` });
      assert.equal(res.statusCode, 400, qs);
      assert.equal(res.json().code, 'ValidationFailed');
    }
  });

  it('summarises the schema', async () => {
    const res = await s().request({ method: 'GET', url: `/apispaces/${space()}/profiles?$schemaOnly=true` });
    assert.equal(res.statusCode, 200);
    const points = res.json().find((p: { path: string }) => p.path === 'loyalty.points');
    assert.equal(points.name, 'points');
    assert.equal(points.probability, 1);
    assert.deepEqual(points.types.map((t: { name: string }) => t.name).sort(), ['Number', 'String']);
  });
});
