import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { customChannel } from './helpers.js';
import { createMutator, loadMessage, loadMessages } from '../../src/modules/messages/messages.repo.js';
import type { ModuleContext } from '../../src/modules/module.js';

// Dispatch writes a group's outcomes with one UPDATE per set of columns (messages.repo.ts
// writeMany); a row that moved on since its copy was read is re-read and its step re-run.
eachDatabase('One API: group writes', (dialect) => {
  const s = useServer(dialect, { start: false });
  let space = '';
  before(async () => {
    space = await s().createSpace('group-writes');
    await customChannel(s(), space, 'custom_g', 'http://127.0.0.1:9/none');
  });

  it('writes every item in one pass and re-runs the step of a stale copy on the current row', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, payload: { to: { crmId: `g${i}` }, rules: ['custom_g'], body: `m${i}` } });
      assert.equal(res.statusCode, 201, res.body);
      ids.push(res.json().messageId);
    }
    const ctx = { ...s().container.platform, services: s().container.services } as ModuleContext;
    const mutator = createMutator(ctx);
    const copies = await loadMessages(ctx.db, space, ids);
    // Another writer changes the second message after the copies were read.
    await mutator.mutate(space, ids[1]!, (m) => ({ result: true, change: { details: { ...m.details, note: 'other writer' } as never } }));
    await mutator.mutateAll(ids.map((id) => ({
      apiSpaceId: space, id, known: copies.get(id),
      step: (m) => ({ result: true, change: { status: 'sent', channelId: 'custom_g', details: { ...m.details, channelId: 'custom_g' }, events: [{ status: 'sent', channel: 'custom_g' }] } }),
    })));
    for (const [i, id] of ids.entries()) {
      const m = (await loadMessage(ctx.db, space, id))!;
      assert.equal(m.row.status, 'sent');
      assert.equal(m.row.channel_id, 'custom_g');
      assert.equal(m.details.channelId, 'custom_g');
      assert.equal(m.row.revision, i === 1 ? 2 : 1);
      if (i === 1) assert.equal((m.details as Record<string, unknown>).note, 'other writer');
    }
    const events = await ctx.db.selectFrom('events').select(['name', 'payload']).where('api_space_id', '=', space).where('name', '=', 'message.sent').execute();
    assert.equal(events.length, 3);
  });
});
