import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.js';
import { startServer, dropLocation } from '../../test/helpers/harness.js';
import { createIdempotency, idempotencyKeyFrom } from './idempotency.js';

it('claims a key once: in flight → 409, other body → 422, replay after completion, takeover after the lease', async () => {
  const s = await startServer('sqlite', { start: false });
  after(async () => { await s.close(); await dropLocation(s.location); });
  const clock = new ManualClock();
  const { db } = s.container.platform;
  const idem = createIdempotency({ db, clock });
  const opts = { scope: 'space-1', route: 'messages.send', key: 'k', body: { a: 1, b: [1, 2] } };
  const first = await idem.begin(opts);
  assert.equal(first.replay, undefined);
  await assert.rejects(idem.begin({ ...opts, body: { b: [1, 2], a: 1 } }), (e: { status: number; code: string; headers: Record<string, string> }) => e.status === 409 && e.code === 'IdempotencyKeyInProgress' && e.headers['Retry-After'] === '1');
  await assert.rejects(idem.begin({ ...opts, body: { a: 2 } }), (e: { status: number; code: string }) => e.status === 422 && e.code === 'IdempotencyKeyReused');
  await s.container.platform.transaction((uow) => first.complete(uow, 201, { id: 'x' }, { Location: '/x' }));
  const again = await idem.begin(opts);
  assert.deepEqual(again.replay, { status: 201, body: { id: 'x' }, headers: { Location: '/x' } });
  // a claim whose process died is taken over once its lease has passed
  const stale = await idem.begin({ ...opts, key: 'k2' });
  assert.ok(stale);
  clock.advance(61_000);
  const taken = await idem.begin({ ...opts, key: 'k2' });
  assert.equal(taken.replay, undefined);
  // keys are remembered for 24 hours
  clock.advance(24 * 3600_000);
  assert.equal((await idem.begin(opts)).replay, undefined);
  assert.equal(await idem.purge(), 1);
  assert.equal(idempotencyKeyFrom({ 'idempotency-key': 'abc' }), 'abc');
  assert.equal(idempotencyKeyFrom({}), undefined);
  assert.throws(() => idempotencyKeyFrom({ 'idempotency-key': 'bad\u0001' }), (e: { status: number }) => e.status === 400);
});
