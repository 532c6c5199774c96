import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { eventsFor, settle } from '../messages/helpers.js';
import { startSmsc, type TestSmsc } from './smsc.js';

eachDatabase('SMS channel end to end', (dialect) => {
  const s = useServer(dialect);
  let smsc: TestSmsc;
  let space: string;
  let token: string;

  before(async () => {
    smsc = await startSmsc();
    space = await s().createSpace();
    token = await s().createToken(space, ['msg:any:s', 'msg:r', 'chan:r', 'prof:ra']);
    const put = await s().request({
      method: 'PUT', url: `/apispaces/${space}/channels/sms`,
      payload: { enabled: true, provider: 'smpp', settings: {
        host: '127.0.0.1', port: smsc.port, systemId: 'esme', password: 'secret', throughputPerSecond: 100, rebindMinMs: 50,
        numbers: [
          { number: '447700900100', countryIsoCode: 'GBR', type: 'longCode' },
          { number: '88000', countryIsoCode: 'GBR', type: 'shortCode', keywords: ['JOIN', 'TEST'] },
        ],
      } },
    });
    assert.ok(put.statusCode < 300, put.body);
    assert.equal(put.json().settings.password, '********');
  });
  after(() => smsc.close());

  it('lists dedicated numbers, short codes and keywords from the channel settings', async () => {
    const get = (p: string) => s().request({ method: 'GET', url: `/apispaces/${space}/sms/${p}`, token });
    assert.deepEqual((await get('dedicatedNumbers')).json(), [{ number: '447700900100', countryIsoCode: 'GBR' }]);
    assert.deepEqual((await get('shortcodes')).json(), [{ number: '88000', keyword: '', countryIsoCode: 'GBR' }]);
    assert.deepEqual((await get('keywords')).json(), [{ number: '88000', keyword: 'JOIN', countryIsoCode: 'GBR' }, { number: '88000', keyword: 'TEST', countryIsoCode: 'GBR' }]);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/sms/shortcodes`, token: null })).statusCode, 401);
    const other = await s().createSpace();
    assert.deepEqual((await s().request({ method: 'GET', url: `/apispaces/${other}/sms/dedicatedNumbers` })).json(), []);
  });

  it('sends through POST /messages, reports segments and applies the delivery receipt', async () => {
    const body = 'Ваш заказ готов 😀 '.repeat(5);
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: { to: { phoneNumber: '447400123456' }, rules: ['sms'], body, channelOptions: { sms: { allowUnicode: true } } } });
    assert.equal(res.statusCode, 201, res.body);
    const { messageId } = res.json();
    await settle(s());
    const pdus = smsc.submits.filter((p) => p.destination_addr === '447400123456');
    assert.equal(pdus.length, 2);
    assert.ok(pdus.every((p) => p.data_coding === 8 && p.source_addr === '447700900100'));
    const sent = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json();
    assert.equal(sent.status, 'sent');
    assert.equal(sent.statusDetails.segmentCount, 2);
    const [event] = (await eventsFor(s(), messageId)).filter((e) => e.name === 'message.sent');
    assert.equal(event!.payload.details.channelStatus.sms.details.encoding, 'UCS2');
    assert.equal(event!.payload.details.channelStatus.sms.details.phoneNumberCountryCode, 'GB');
    for (const p of pdus) {
      const resp = await smsc.deliver({ source_addr: '447400123456', destination_addr: '447700900100', esm_class: 4, short_message: `id:${p.assignedId} sub:001 dlvrd:001 submit date:2405010930 done date:2405010931 stat:DELIVRD err:000 text:` });
      assert.equal(resp.command_status, 0);
    }
    await settle(s());
    const done = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json();
    assert.equal(done.status, 'delivered');
  });

  it('opts a sender out of SMS when they text STOP, and back in with START', async () => {
    await smsc.deliver({ source_addr: '447400555666', destination_addr: '447700900100', short_message: 'Stop' });
    await settle(s());
    const rows = await s().container.platform.db.selectFrom('inbound_messages').select(['profile_id']).where('api_space_id', '=', space).execute();
    const profileId = rows.at(-1)!.profile_id!;
    assert.equal(await s().container.services.profiles.isOptedIn(space, profileId, 'sms'), false);
    await smsc.deliver({ source_addr: '447400555666', destination_addr: '447700900100', short_message: 'START' });
    await settle(s());
    assert.equal(await s().container.services.profiles.isOptedIn(space, profileId, 'sms'), true);
  });

  it('does not serve the legacy /webapi/sms endpoint unless enabled', async () => {
    assert.equal((await s().request({ method: 'POST', url: '/webapi/sms', payload: { to: '447400123456', body: 'x' } })).statusCode, 404);
  });

  it('refuses invalid provider settings with 400', async () => {
    const other = await s().createSpace();
    const bad = await s().request({ method: 'PUT', url: `/apispaces/${other}/channels/sms`, payload: { enabled: true, provider: 'smpp', settings: { port: 70000, bindMode: 'both' } } });
    assert.equal(bad.statusCode, 400);
    const names = bad.json().validationFailures.map((f: { paramName: string }) => f.paramName);
    assert.ok(names.some((n: string) => n.endsWith('host')), JSON.stringify(names));
    const mail = await s().request({ method: 'PUT', url: `/apispaces/${other}/channels/email`, payload: { enabled: true, provider: 'smtp', settings: { host: 'smtp.example' } } });
    assert.equal(mail.statusCode, 400);
  });
});
