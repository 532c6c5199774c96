import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from '../helpers/harness.js';
import { ManualClock } from '../../src/lib/clock.js';
import { moduleDefinitions } from '../../src/modules/index.js';
import type { ModuleDefinition } from '../../src/modules/module.js';
import { TokenBuckets, isSessionStartRoute } from '../../src/http/rate-limit.js';

// Buckets live in process memory, so these tests run on SQLite only.

/** A stand-in for the session-start endpoints (added later by the App Messaging module). */
const probeModule: ModuleDefinition = {
  name: 'ratelimit-probe',
  setup: () => ({
    routes(app) {
      app.get('/ratelimit-probe/start', { schema: { hide: true }, config: { auth: { kind: 'none' }, rateLimit: 'sessionStart' } }, async () => ({ ok: true }));
    },
  }),
};

describe('rate limits', () => {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const s = useServer('sqlite', {
    clock,
    modules: [...moduleDefinitions, probeModule],
    env: { RATE_LIMIT_PER_CREDENTIAL: '1', RATE_LIMIT_PER_SPACE: '2', RATE_LIMIT_SESSION_START_PER_IP: '1', TRUST_PROXY: '127.0.0.1' },
  });
  const get = (space: string, token: string) => s().request({ method: 'GET', url: `/apispaces/${space}`, token });
  const refill = () => clock.advance(60_000);

  it('limits each credential to its bucket (burst 4 × rate) and answers 429 with Retry-After', async () => {
    const space = await s().createSpace('RL');
    const token = await s().createToken(space, ['apis:ro']);
    refill();
    for (let i = 0; i < 4; i++) assert.equal((await get(space, token)).statusCode, 200, `request ${i}`);
    const refused = await get(space, token);
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.json().code, 'TooManyRequests');
    assert.equal(refused.json().status, 429);
    assert.ok(refused.json().requestId);
    clock.advance(1000);
    assert.equal((await get(space, token)).statusCode, 200);
    assert.equal((await get(space, token)).statusCode, 429);
  });

  it('limits each API space across its credentials', async () => {
    const space = await s().createSpace('RL space');
    const other = await s().createSpace('RL other');
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) {
      refill(); // the admin's own bucket
      tokens.push(await s().createToken(space, ['apis:ro']));
    }
    const elsewhere = await s().createToken(other, ['apis:ro']);
    refill();
    for (const token of tokens.slice(0, 2)) for (let i = 0; i < 4; i++) assert.equal((await get(space, token)).statusCode, 200);
    const refused = await get(space, tokens[2]!);
    assert.equal(refused.statusCode, 429, 'the space bucket (burst 8) is empty');
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal((await get(other, elsewhere)).statusCode, 200, 'other spaces are unaffected');
    clock.advance(500); // the space refills one token (2/s); the third token's own bucket was not drawn from
    assert.equal((await get(space, tokens[2]!)).statusCode, 200);
  });

  it('limits the session-start endpoints per client IP', async () => {
    refill();
    const probe = (ip: string) => s().app.inject({ method: 'GET', url: '/ratelimit-probe/start', remoteAddress: ip });
    for (let i = 0; i < 4; i++) assert.equal((await probe('192.0.2.1')).statusCode, 200);
    const refused = await probe('192.0.2.1');
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal((await probe('192.0.2.2')).statusCode, 200);
    const unlimited = await s().app.inject({ method: 'GET', url: '/healthz', remoteAddress: '192.0.2.1' });
    assert.equal(unlimited.statusCode, 200);
    // Behind the trusted proxy (127.0.0.1) each client has its own bucket.
    const proxied = (client: string) => s().app.inject({ method: 'GET', url: '/ratelimit-probe/start', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': client } });
    for (let i = 0; i < 4; i++) assert.equal((await proxied('198.51.100.7')).statusCode, 200);
    assert.equal((await proxied('198.51.100.7')).statusCode, 429);
    assert.equal((await proxied('198.51.100.8')).statusCode, 200);
  });
});

describe('rate limit internals', () => {
  it('recognises the session-start routes by URL pattern', () => {
    assert.ok(isSessionStartRoute('GET', '/apispaces/:apiSpaceId/sessions/start'));
    assert.ok(isSessionStartRoute('POST', '/apispaces/:apiSpaceId/sessions'));
    assert.ok(isSessionStartRoute('GET', '/apispaces/:apiSpaceId/sessions/tokens/anon'));
    assert.ok(isSessionStartRoute('GET', '/cpaas/sessions/start'));
    assert.ok(!isSessionStartRoute('GET', '/apispaces/:apiSpaceId/sessions'));
    assert.ok(!isSessionStartRoute('GET', '/apispaces/:apiSpaceId/sessions/:sessionId'));
    assert.ok(!isSessionStartRoute('DELETE', '/apispaces/:apiSpaceId/sessions/start'));
  });

  it('forgets idle buckets and caps the table', () => {
    let now = 0;
    const buckets = new TokenBuckets(() => now, 50);
    for (let i = 0; i < 200; i++) buckets.take([{ key: `k${i}`, rate: 10 }]);
    assert.equal(buckets.size, 50);
    now += 60_000;
    buckets.take([{ key: 'fresh', rate: 10 }]);
    assert.equal(buckets.size, 1);
  });

  it('takes from every bucket or from none', () => {
    const now = 0;
    const buckets = new TokenBuckets(() => now);
    const a = { key: 'a', rate: 1 };
    const b = { key: 'b', rate: 0.5 };
    assert.equal(buckets.take([b]).wait, 0); // b: 1 token left of 2
    assert.equal(buckets.take([a, b]).wait, 0); // b now empty
    const refused = buckets.take([a, b]);
    assert.equal(refused.empty, 1);
    assert.equal(refused.wait, 2);
    for (let i = 0; i < 3; i++) assert.equal(buckets.take([a]).wait, 0, 'a kept its tokens');
    assert.ok(buckets.take([a]).wait > 0);
  });
});
