import { it, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createLocalBus, createRedisBus, createThreadBus, type EventBus } from '../../src/events/bus.js';
import { TEST_REDIS_URL } from '../helpers/harness.js';

const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));

describe('in-process event bus', () => {
  it('delivers synchronously, unsubscribes, and isolates throwing subscribers', async () => {
    const errors: unknown[] = [];
    const bus = createLocalBus((err) => errors.push(err));
    const got: unknown[] = [];
    bus.subscribe('c', () => { throw new Error('bad subscriber'); });
    const off = bus.subscribe('c', (m) => got.push(m));
    bus.subscribe('other', (m) => got.push(['other', m]));
    await bus.ready();
    assert.doesNotThrow(() => bus.publish('c', { a: 1 }));
    assert.deepEqual(got, [{ a: 1 }]);
    assert.equal(errors.length, 1);
    off();
    bus.publish('c', 2);
    assert.deepEqual(got, [{ a: 1 }]);
    await bus.close();
  });
});

describe('thread event bus', () => {
  it('delivers what one turn published, in order, to the other bus once and to its own subscribers once', async () => {
    const name = `test:${randomBytes(4).toString('hex')}`;
    const errors: unknown[] = [];
    const [a, b] = [createThreadBus(name, (err) => errors.push(err)), createThreadBus(name)];
    const [onA, onB]: unknown[][] = [[], []];
    a.subscribe('c', (m) => onA.push(m));
    b.subscribe('c', (m) => onB.push(m));
    b.subscribe('d', (m) => onB.push(['d', m]));
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (let i = 0; i < 5; i++) a.publish('c', { i, payload: undefined });
    a.publish('c', circular);
    a.publish('d', 'last');
    assert.equal(onA.length, 6, 'local subscribers at once');
    assert.equal(onB.length, 0, 'the other side after the turn');
    await settle(50);
    assert.deepEqual(onB, [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }, ['d', 'last']]);
    assert.equal(onA.length, 6, 'no echo of its own posts');
    assert.equal(errors.length, 1, 'the message that cannot be serialised is reported, the others go');
    b.publish('c', 'back');
    await settle(50);
    assert.deepEqual(onA.at(-1), 'back');
    await Promise.all([a.close(), b.close()]);
  });
});

describe('Redis event bus', { skip: TEST_REDIS_URL ? false : 'TEST_REDIS_URL not set (e.g. redis://127.0.0.1:6379)' }, () => {
  const buses: EventBus[] = [];
  const make = (prefix: string) => {
    const bus = createRedisBus(TEST_REDIS_URL!, prefix);
    buses.push(bus);
    return bus;
  };
  after(async () => {
    await Promise.all(buses.map((b) => b.close()));
  });

  it('two buses with one prefix deliver to each other, and to themselves exactly once', async () => {
    const prefix = `sbt:${randomBytes(4).toString('hex')}:`;
    const a = make(prefix);
    const b = make(prefix);
    const gotA: unknown[] = [];
    const gotB: unknown[] = [];
    a.subscribe('room', (m) => gotA.push(m));
    b.subscribe('room', (m) => gotB.push(m));
    b.subscribe('room', (m) => gotB.push(['second', m]));
    await Promise.all([a.ready(), b.ready()]);
    a.publish('room', { from: 'a', n: 1 });
    b.publish('room', { from: 'b', n: 2 });
    await settle();
    assert.equal(gotA.length, 2);
    assert.deepEqual(new Set(gotA.map((m) => JSON.stringify(m))), new Set([JSON.stringify({ from: 'a', n: 1 }), JSON.stringify({ from: 'b', n: 2 })]));
    assert.equal(gotB.length, 4, JSON.stringify(gotB));
  });

  it('subscriptions made while the connection is still opening all take effect', async () => {
    // Subscribers arrive over the first milliseconds after the bus is created, as in a server
    // starting up: whatever moment of the connection's handshake they land in, each channel must
    // receive what another process publishes.
    for (let delay = 0; delay < 12; delay++) {
      const prefix = `sbt:${randomBytes(4).toString('hex')}:`;
      const a = make(prefix);
      const channels = Array.from({ length: 4 }, (_, i) => `c${i}`);
      const got = new Set<string>();
      await new Promise((r) => setTimeout(r, delay / 2));
      for (const c of channels) a.subscribe(c, () => got.add(c));
      const b = make(prefix);
      await Promise.all([a.ready(), b.ready()]);
      for (const c of channels) b.publish(c, { delay });
      for (let i = 0; i < 40 && got.size < channels.length; i++) await settle(25);
      assert.deepEqual([...got].sort(), channels, `subscribed ${delay / 2} ms after creation`);
    }
  });

  it('isolates prefixes and stops delivering after the last unsubscribe', async () => {
    const prefix = `sbt:${randomBytes(4).toString('hex')}:`;
    const a = make(prefix);
    const b = make(prefix);
    const stranger = make(`sbt:${randomBytes(4).toString('hex')}:`);
    const gotB: unknown[] = [];
    const gotStranger: unknown[] = [];
    const offB = b.subscribe('ch', (m) => gotB.push(m));
    stranger.subscribe('ch', (m) => gotStranger.push(m));
    await Promise.all([b.ready(), stranger.ready()]);
    a.publish('ch', 1);
    await settle();
    assert.deepEqual(gotB, [1]);
    assert.deepEqual(gotStranger, []);
    offB();
    offB();
    await b.ready();
    a.publish('ch', 2);
    await settle();
    assert.deepEqual(gotB, [1]);
  });

  it('a subscription is live as soon as ready() resolves', async () => {
    const prefix = `sbt:${randomBytes(4).toString('hex')}:`;
    const a = make(prefix);
    const b = make(prefix);
    for (let i = 0; i < 5; i++) {
      let resolve!: (m: unknown) => void;
      const got = new Promise((r) => (resolve = r));
      const off = b.subscribe(`fresh-${i}`, resolve);
      await b.ready();
      a.publish(`fresh-${i}`, i);
      const value = await Promise.race([got, settle(2000).then(() => 'timeout')]);
      assert.equal(value, i);
      off();
    }
  });
});
