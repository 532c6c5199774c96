import { it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { ManualClock, iso } from '../../src/lib/clock.js';

eachDatabase('access token lastUsedOn', (dialect) => {
  const clock = new ManualClock(Date.UTC(2030, 0, 1, 12));
  const s = useServer(dialect, { clock });

  const lastUsedOn = async (space: string, id: string): Promise<string | null> =>
    (await s().request({ method: 'GET', url: `/apispaces/${space}/accesstokens/${id}` })).json().lastUsedOn;
  /** The write happens off the request path: poll briefly until it shows. */
  async function settled(space: string, id: string, expected: string | null): Promise<string | null> {
    let value = await lastUsedOn(space, id);
    for (let i = 0; i < 50 && value !== expected; i++) {
      await sleep(10);
      value = await lastUsedOn(space, id);
    }
    return value;
  }

  it('records the last use at most once a minute per token', async () => {
    const space = await s().createSpace('usage');
    const created = await s().request({ method: 'POST', url: `/apispaces/${space}/accesstokens`, payload: { name: 'ci', profileId: 'bot', permissions: ['apis:ro'] } });
    const { id, token } = created.json();
    assert.equal(created.json().lastUsedOn, null);
    const use = async () => assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}`, token })).statusCode, 200);

    await use();
    const first = iso(clock.now());
    assert.equal(await settled(space, id, first), first);

    clock.advance(30_000);
    await use();
    await sleep(30);
    assert.equal(await lastUsedOn(space, id), first, 'not written again within the minute');

    clock.advance(31_000);
    await use();
    const second = iso(clock.now());
    assert.equal(await settled(space, id, second), second);
    const list = await s().request({ method: 'GET', url: `/apispaces/${space}/accesstokens` });
    assert.equal(list.json().find((t: { id: string }) => t.id === id).lastUsedOn, second);
  });
});
