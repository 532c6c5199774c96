import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { EVENTS_CHANNEL, type StoredEvent } from '../../src/events/log.js';

eachDatabase('transactional event log', (dialect) => {
  const s = useServer(dialect, { start: false });
  const event = (name: string, apiSpaceId: string) => ({ apiSpaceId, accountId: 1, name, payload: { name, nested: { ok: true } }, meta: { revision: 1 } });

  it('appends in the transaction; nothing is stored or announced on rollback; announced after commit', async () => {
    const { platform } = s().container;
    const space = await s().createSpace('events');
    const announced: StoredEvent[] = [];
    const appended: StoredEvent[] = [];
    const off = platform.bus.subscribe(EVENTS_CHANNEL, (m) => announced.push(m as StoredEvent));
    platform.events.onAppended((e) => appended.push(e));
    const start = await platform.events.readAfter(0, 1000);
    const base = start.length ? start[start.length - 1]!.id : 0;

    await assert.rejects(platform.transaction(async (uow) => {
      await platform.events.append(uow, event('test.rolledBack', space));
      throw new Error('roll back');
    }));
    assert.equal(announced.length, 0);
    assert.deepEqual((await platform.events.readAfter(base, 10)).filter((e) => e.apiSpaceId === space), []);

    const ids = await platform.transaction(async (uow) => {
      const a = await platform.events.append(uow, event('test.first', space));
      const b = await platform.events.append(uow, event('test.second', space));
      assert.equal(announced.length, 0, 'not announced before commit');
      return [a, b];
    });
    assert.ok(ids[1]! > ids[0]!);
    assert.deepEqual(announced.filter((e) => e.apiSpaceId === space).map((e) => e.name), ['test.first', 'test.second']);
    // Announced with their ids, names and meta, without payloads (the log holds those).
    const first = announced.find((e) => e.apiSpaceId === space)!;
    assert.deepEqual({ id: first.id, payload: first.payload, meta: first.meta }, { id: ids[0], payload: undefined, meta: { revision: 1 } });
    assert.deepEqual(appended.filter((e) => e.apiSpaceId === space).map((e) => e.id), ids);
    const stored = (await platform.events.readAfter(base, 10)).filter((e) => e.apiSpaceId === space);
    assert.deepEqual(stored.map((e) => e.name), ['test.first', 'test.second']);
    assert.deepEqual(stored[0]!.payload, { name: 'test.first', nested: { ok: true } });
    assert.deepEqual(stored[0]!.meta, { revision: 1 });
    assert.match(stored[0]!.createdOn, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual((await platform.events.readAfter(ids[0]!, 10)).map((e) => e.id), [ids[1]]);
    off();
  });

  it('appends many events in one statement, in order, with payloads intact', async () => {
    const { platform } = s().container;
    const space = await s().createSpace('events-many');
    // Quotes, backslashes, braces, commas, unicode and NULL-like text survive the array transfer.
    const tricky = { text: 'a "quoted" \\ back\\slash, {brace} NULL', emoji: '✉️ 日本', list: [1, 'two', null, { three: 3 }], empty: '' };
    const list = Array.from({ length: 1200 }, (_, i) => ({ apiSpaceId: space, accountId: 1 + (i % 3), name: `test.many.${i}`, payload: { i, ...tricky }, meta: i % 2 ? { revision: i } : undefined }));
    const ids = await platform.transaction((uow) => platform.events.appendMany(uow, list));
    assert.equal(ids.length, list.length);
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]!));
    const stored = (await platform.events.readAfter(ids[0]! - 1, 2000)).filter((e) => e.apiSpaceId === space);
    assert.deepEqual(stored.map((e) => e.id), ids);
    stored.forEach((e, i) => {
      assert.equal(e.name, `test.many.${i}`);
      assert.equal(e.accountId, 1 + (i % 3));
      assert.deepEqual(e.payload, { i, ...tricky });
      assert.deepEqual(e.meta, i % 2 ? { revision: i } : {});
    });
  });

  it('keeps consumer cursors, also inside a transaction', async () => {
    const { platform } = s().container;
    assert.equal(await platform.events.cursor('test-consumer'), 0);
    await platform.events.saveCursor('test-consumer', 41);
    await platform.events.saveCursor('test-consumer', 42);
    assert.equal(await platform.events.cursor('test-consumer'), 42);
    await assert.rejects(platform.transaction(async (uow) => {
      await platform.events.saveCursor('test-consumer', 99, uow.tx);
      assert.equal(await platform.events.cursor('test-consumer', uow.tx), 99);
      throw new Error('roll back');
    }));
    assert.equal(await platform.events.cursor('test-consumer'), 42);
  });
});

eachDatabase('unit of work', (dialect) => {
  const s = useServer(dialect, { start: false });

  it('queries on db inside a transaction do not deadlock; nested transactions fail fast, the outer still rolls back', async () => {
    const { platform } = s().container;
    const space = await s().createSpace('uow');
    const read = () => platform.db.selectFrom('api_spaces').select('id').where('id', '=', space).executeTakeFirst();
    const result = await Promise.race([
      platform.transaction(async (uow) => {
        await platform.events.append(uow, { apiSpaceId: space, accountId: 1, name: 'uow.test', payload: {} });
        return (await read())?.id;
      }),
      new Promise((r) => setTimeout(() => r('deadlock'), 3000)),
    ]);
    assert.equal(result, space);
    const before = (await platform.events.readAfter(0, 10_000)).length;
    const nested = platform.transaction(async (uow) => {
      await platform.events.append(uow, { apiSpaceId: space, accountId: 1, name: 'uow.outer', payload: {} });
      await assert.rejects(platform.transaction(async () => 1), /Nested transaction/);
      throw new Error('outer fails');
    });
    const outcome = await Promise.race([nested.then(() => 'ok', (e: Error) => e.message), new Promise((r) => setTimeout(() => r('deadlock'), 3000))]);
    assert.equal(outcome, 'outer fails');
    assert.equal((await platform.events.readAfter(0, 10_000)).length, before, 'outer transaction rolled back');
  });

  it('a query on db inside a transaction runs in it (sees its uncommitted writes) on both dialects', async () => {
    const { platform } = s().container;
    const space = await s().createSpace('uow-visibility');
    const seen = await platform.transaction(async (uow) => {
      await uow.tx.updateTable('api_spaces').set({ name: 'renamed inside' }).where('id', '=', space).execute();
      return (await platform.db.selectFrom('api_spaces').select('name').where('id', '=', space).executeTakeFirst())?.name;
    });
    assert.equal(seen, 'renamed inside');
    // Many concurrent transactions that each read through db: no pool exhaustion on PostgreSQL.
    const all = await Promise.all(Array.from({ length: 40 }, () => platform.transaction(async () => (await platform.db.selectFrom('api_spaces').select('id').where('id', '=', space).executeTakeFirst())?.id)));
    assert.ok(all.every((id) => id === space));
  });
});
