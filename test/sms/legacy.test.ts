import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { settle } from '../messages/helpers.js';
import { startSmsc, type TestSmsc } from './smsc.js';

eachDatabase('legacy POST /webapi/sms', (dialect) => {
  const s = useServer(dialect, { env: { LEGACY_SMS_ENABLED: 'true' } });
  let smsc: TestSmsc;
  let space: string;
  let basic: string;

  before(async () => {
    smsc = await startSmsc();
    space = await s().createSpace();
    const token = await s().createToken(space, ['msg:sms:s', 'msg:r']);
    basic = `Basic ${Buffer.from(`${space}:${token}`).toString('base64')}`;
    await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/sms`, payload: { enabled: true, provider: 'smpp', settings: { host: '127.0.0.1', port: smsc.port, systemId: 'esme', defaultFrom: 'LEGACY' } } });
  });
  after(() => smsc.close());

  it('sends each item as a One API SMS', async () => {
    const res = await s().request({ method: 'POST', url: '/webapi/sms', headers: { authorization: basic }, payload: [
      { to: '447400123456', body: 'first', clientRef: 'inv-1' }, { to: '+447400123457', body: 'second', from: 'ACME' },
    ] });
    assert.equal(res.statusCode, 202, res.body);
    const out = res.json();
    assert.deepEqual(out.map((o: { to: string; clientRef?: string }) => [o.to, o.clientRef]), [['447400123456', 'inv-1'], ['447400123457', undefined]]);
    await settle(s());
    // the two messages are dispatched in parallel lanes: the SMSC may see them in either order
    const texts = smsc.submits.map((p) => [p.destination_addr, p.source_addr, p.short_message.message]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    assert.deepEqual(texts, [['447400123456', 'LEGACY', 'first'], ['447400123457', 'ACME', 'second']]);
  });

  it('answers with the One API error body', async () => {
    const bad = await s().request({ method: 'POST', url: '/webapi/sms', headers: { authorization: basic }, payload: [{ to: '447400123456', body: 'ok' }, { to: 'abc', body: '' }] });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(bad.json().validationFailures.map((f: { paramName: string; index: number }) => [f.paramName, f.index]), [['to', 1], ['body', 1]]);
    const anon = await s().request({ method: 'POST', url: '/webapi/sms', token: null, payload: { to: '447400123456', body: 'x' } });
    assert.deepEqual([anon.statusCode, anon.json().code], [401, 'Unauthorized']);
  });
});
