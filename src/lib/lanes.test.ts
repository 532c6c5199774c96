import { it } from 'node:test';
import assert from 'node:assert/strict';
import { inLanes, laneOf } from './lanes.js';

const key = (x: { k: string }) => x.k;

it('splits items by key into lanes, keeping each key in one lane in input order', async () => {
  const items = Array.from({ length: 300 }, (_, i) => ({ k: `id${i % 70}`, i }));
  const out = await inLanes(items, 3, key, async (part) => part.map((x) => x.i * 2), () => []);
  assert.equal(out.length, 3);
  for (const { part, results } of out) {
    assert.deepEqual(results, part.map((x) => x.i * 2));
    assert.deepEqual(part.map((x) => x.i), [...part.map((x) => x.i)].sort((a, b) => a - b));
    for (const x of part) assert.equal(laneOf(x.k, 3), laneOf(part[0]!.k, 3));
  }
  assert.equal(out.reduce((n, l) => n + l.part.length, 0), 300);
  assert.equal(laneOf('x', 1), 0);
});

it('one lane runs everything at once; a failed lane is answered by `failed`; all failing throws', async () => {
  const items = Array.from({ length: 40 }, (_, i) => ({ k: `k${i}` }));
  const one = await inLanes(items, 1, key, async (part) => part.map(() => 'ok'), () => []);
  assert.deepEqual(one, [{ part: items, results: items.map(() => 'ok') }]);
  const bad = laneOf('k0', 2);
  const mixed = await inLanes(items, 2, key, async (part) => {
    if (laneOf(part[0]!.k, 2) === bad) throw new Error('conflict');
    return part.map(() => 'ok');
  }, (err, part) => part.map(() => `failed: ${(err as Error).message}`));
  for (const { part, results } of mixed) assert.deepEqual(results, part.map(() => (laneOf(part[0]!.k, 2) === bad ? 'failed: conflict' : 'ok')));
  await assert.rejects(inLanes(items, 2, key, async () => { throw new Error('down'); }, () => []), /down/);
  await assert.rejects(inLanes(items, 2, key, async (part) => {
    if (laneOf(part[0]!.k, 2) === bad) throw new Error('down');
    return part.map(() => 'ok');
  }, (err) => { throw err; }), /down/);
  assert.deepEqual(await inLanes([], 2, key, async () => ['x'], () => []), []);
});
