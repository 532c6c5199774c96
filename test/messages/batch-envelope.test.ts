import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { customChannel, receiver } from './helpers.js';

// Workers off: nothing expands an envelope but the reads and changes that need its messages.
eachDatabase('One API: batch envelopes expanded by reads', (dialect) => {
  const s = useServer(dialect, { start: false });
  const r = receiver();
  let space = '';
  let token = '';
  before(async () => {
    await r.start();
    space = await s().createSpace('envelopes');
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'msg:w', 'msg:any:i', 'prof:ra', 'prof:wa']);
    await customChannel(s(), space, 'custom_crm', `${r.base}/notes`);
  });
  after(() => r.stop());
  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => s().request({ method, url: `/apispaces/${space}${url}`, token, ...(payload !== undefined ? { payload: payload as object } : {}) });
  const batch = async (items: unknown[]) => {
    const res = await req('POST', '/messages/batch', items);
    assert.equal(res.statusCode, 202, res.body);
    return (res.json() as Array<{ messageId: string }>).map((x) => x.messageId);
  };
  const count = async (table: 'messages' | 'message_batches') => Number((await s().container.platform.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).where('api_space_id', '=', space).executeTakeFirstOrThrow()).n);

  it('stores a batch as one envelope and writes its messages when one of them is read', async () => {
    const before = await count('messages');
    const ids = await batch(Array.from({ length: 50 }, (_, i) => ({ to: { crmId: `E-${i}` }, rules: ['custom_crm'], body: `item ${i}`, metadata: { i } })));
    assert.equal(new Set(ids).size, 50);
    assert.equal(await count('message_batches'), 1);
    assert.equal(await count('messages'), before);
    // Several reads at once: one of them expands the envelope, every one finds its message.
    const got = await Promise.all([7, 0, 49, 7].map((i) => req('GET', `/messages/${ids[i]}`)));
    for (const g of got) assert.equal(g.statusCode, 200, g.body);
    assert.deepEqual(got.map((g) => [g.json().body, g.json().metadata.i, g.json().status]), [['item 7', 7, 'processing'], ['item 0', 0, 'processing'], ['item 49', 49, 'processing'], ['item 7', 7, 'processing']]);
    assert.equal(await count('message_batches'), 0);
    assert.equal(await count('messages'), before + 50);
    // An id in the same form that no envelope holds is still a 404.
    const unknown = ids[0]!.slice(0, 31) + 'fffff';
    assert.equal((await req('GET', `/messages/${unknown}`)).statusCode, 404);
  });

  it('redacts, deletes and takes status reports for messages still in their envelope', async () => {
    const [a, b, c] = await batch([1, 2, 3].map((i) => ({ to: { crmId: `R-${i}` }, rules: ['custom_crm'], body: `secret ${i}` })));
    assert.equal((await req('PATCH', `/messages/${a}`, { redact: true })).statusCode, 202);
    assert.equal((await req('GET', `/messages/${a}`)).json().body, '');
    const [d, e] = await batch([4, 5].map((i) => ({ to: { crmId: `R-${i}` }, rules: ['custom_crm'], body: `secret ${i}` })));
    assert.equal((await req('DELETE', `/messages/${d}`)).statusCode, 204);
    assert.equal((await req('GET', `/messages/${d}`)).statusCode, 404);
    const st = await req('POST', `/messages/${e}/statuses/delivered`, { channel: 'custom_crm' });
    assert.ok(st.statusCode < 300, st.body);
    assert.equal((await req('GET', `/messages/${e}`)).json().status, 'delivered');
    for (const id of [b, c]) assert.equal((await req('GET', `/messages/${id}`)).json().status, 'processing');
  });

  it('lists messages still in an envelope in the profile history and correlates inbound replies to them', async () => {
    assert.ok((await req('POST', '/profiles', { id: 'env-p', crmId: 'EP-1' })).statusCode < 300);
    const [first, second] = await batch([{ to: { profileId: 'env-p' }, rules: ['custom_crm'], body: 'one' }, { to: { profileId: 'env-p' }, rules: ['custom_crm'], body: 'two' }]);
    const history = await req('GET', '/profiles/env-p/messages');
    assert.equal(history.statusCode, 200, history.body);
    assert.deepEqual(new Set((history.json() as Array<{ messageId: string }>).map((h) => h.messageId)), new Set([first, second]));

    const [out] = await batch([{ to: { crmId: 'IN-1' }, rules: ['custom_crm'], body: 'question', metadata: { order: 'SO-9' } }]);
    const inbound = await req('POST', '/messages/inbounds', { channel: 'custom_crm', from: { crmId: 'IN-1' }, body: 'answer', correlation: { messageId: out } });
    assert.equal(inbound.statusCode, 201, inbound.body);
    assert.deepEqual(inbound.json().correlation, { messageId: out, metadata: { order: 'SO-9' } });
  });
});
