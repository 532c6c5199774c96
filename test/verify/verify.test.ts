import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.js';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { settle } from '../messages/helpers.js';
import { startSmsc, type TestSmsc } from '../sms/smsc.js';

eachDatabase('Verify API', (dialect) => {
  const clock = new ManualClock(Date.now());
  const s = useServer(dialect, { clock });
  let smsc: TestSmsc;
  let space: string;
  let token: string;
  let basic: string;

  before(async () => {
    smsc = await startSmsc();
    space = await s().createSpace();
    token = await s().createToken(space, ['msg:sms:s', 'msg:r']);
    basic = `Basic ${Buffer.from(`${space}:${token}`).toString('base64')}`;
    const put = await s().request({ method: 'PUT', url: `/apispaces/${space}/channels/sms`, payload: { enabled: true, provider: 'smpp', settings: { host: '127.0.0.1', port: smsc.port, systemId: 'esme', defaultFrom: 'VERIFY' } } });
    assert.ok(put.statusCode < 300, put.body);
  });
  after(() => smsc.close());

  const create = (payload: unknown, authorization = basic) => s().request({ method: 'POST', url: '/webapi/verify', headers: { authorization }, payload: payload as object });
  const check = (id: string, code: unknown, authorization = basic) => s().request({ method: 'PUT', url: `/webapi/verify/${id}/validate`, headers: { authorization }, payload: { code } });
  /** The code in the last SMS the SMSC received for a number. */
  const codeSentTo = (phone: string) => {
    const pdu = [...smsc.submits].reverse().find((p) => p.destination_addr === phone);
    return /(\d{6})/.exec(String(pdu?.short_message.message))?.[1];
  };

  it('sends a six-digit code, redacts the message after hand-off and verifies it once', async () => {
    const res = await create({ to: '+44 7400 123456', from: 'Brightline', body: 'Code {{code}}, valid {{validMinutes}} min' });
    assert.equal(res.statusCode, 202, res.body);
    const v = res.json();
    assert.match(v.requestId, /^[0-9a-f-]{36}$/);
    assert.deepEqual([v.phoneNumber, v.status, v.numberStatus], ['447400123456', 'CodeNotVerified', 'Valid']);
    assert.equal(Date.parse(v.validUntil) - Date.parse(v.created), 10 * 60_000);
    await settle(s());
    const sms = [...smsc.submits].reverse().find((p) => p.destination_addr === '447400123456')!;
    assert.match(sms.short_message.message, /^Code \d{6}, valid 10 min$/);
    assert.equal(sms.source_addr, 'Brightline');
    const code = codeSentTo('447400123456')!;
    const row = await s().container.platform.db.selectFrom('verify_requests').selectAll().where('id', '=', v.requestId).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(code), 'the code is stored hashed only');
    const msg = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${row.message_id}`, token: await s().createToken(space, ['msg:r']) })).json();
    assert.ok(!JSON.stringify(msg).includes(code), 'the code is not readable back from the message');
    assert.equal(msg.metadata.verifyRequestId, v.requestId);

    const wrong = await check(v.requestId, code === '000000' ? '111111' : '000000');
    assert.deepEqual([wrong.statusCode, wrong.json().status], [200, 'CodeNotVerified']);
    const ok = await check(v.requestId, `${code.slice(0, 3)} ${code.slice(3)}`, `Bearer ${token}`);
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().status, 'CodeVerified');
    assert.ok(ok.json().verified);
    const again = await s().request({ method: 'PUT', url: `/WebApi/Verify/${v.requestId}/validate`, headers: { authorization: basic }, payload: { code } });
    assert.equal(again.statusCode, 204);
  });

  it('locks after the fifth wrong attempt', async () => {
    const v = (await create({ to: '447400200001' })).json();
    await settle(s());
    const code = codeSentTo('447400200001')!;
    const bad = code === '999999' ? '888888' : '999999';
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await check(v.requestId, bad)).json().status);
    assert.deepEqual(statuses, ['CodeNotVerified', 'CodeNotVerified', 'CodeNotVerified', 'CodeNotVerified', 'CodeLocked']);
    assert.equal((await check(v.requestId, code)).statusCode, 204);
  });

  it('expires at validUntil (first call answers CodeExpired, then 204)', async () => {
    const until = new Date(clock.now() + 2 * 60_000).toISOString();
    const v = (await create({ to: '07400200002', countryIsoCode: 'GBR', validUntil: until })).json();
    assert.equal(v.phoneNumber, '447400200002');
    assert.equal(v.validUntil, until);
    await settle(s());
    const code = codeSentTo('447400200002')!;
    clock.advance(2 * 60_000 + 1);
    const late = await check(v.requestId, code);
    assert.deepEqual([late.statusCode, late.json().status], [200, 'CodeExpired']);
    assert.equal((await check(v.requestId, code)).statusCode, 204);
  });

  it('throttles a fourth code for the same number within ten minutes', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await create({ to: '447400200003' })).statusCode, 202);
    const t = await create({ to: '447400200003' });
    assert.equal(t.statusCode, 429);
    assert.deepEqual(t.json(), [{ code: 'Throttled', description: 'Too many codes were requested for this number recently' }]);
    assert.ok(Number(t.headers['retry-after']) > 0);
    clock.advance(10 * 60_000 + 1);
    assert.equal((await create({ to: '447400200003' })).statusCode, 202);
  });

  it('reports every validation problem in Verify\'s error body', async () => {
    const many = await create({ to: '', from: 'MuchTooLongSender', validUntil: new Date(clock.now() - 1000).toISOString(), body: 'no placeholder' });
    assert.equal(many.statusCode, 400);
    assert.deepEqual(many.json().map((p: { code: string }) => p.code).sort(), ['BodyMissingCodePlaceholder', 'FromExceedsMaxTextLength', 'ToEmpty', 'ValidUntilMinExceeded']);
    const cases: Array<[unknown, string]> = [
      [{ to: '447400123456', countryIsoCode: 'XX' }, 'CountryIsoCodeInvalid'],
      [{ to: '447400123456', countryIsoCode: 'ZZZ' }, 'CountryIsoCodeInvalid'],
      [{ to: '447400123456', from: '' }, 'FromEmpty'],
      [{ to: '447400123456', from: 'A' }, 'FromUnderMinTextLength'],
      [{ to: '447400123456', from: '1234567890123456' }, 'FromExceedsMaxNumericLength'],
      [{ to: '447400123456', from: 'Bad!Sender' }, 'FromContainsDisallowedCharacters'],
      [{ to: '12' }, 'ToInvalid'],
      [{ to: 'not a number' }, 'ToInvalid'],
      [{ to: '447400123456', validUntil: new Date(clock.now() + 31 * 60_000).toISOString() }, 'ValidUntilMaxExceeded'],
      [{}, 'ToEmpty'],
      [[1, 2], 'InvalidJson'],
    ];
    for (const [payload, code] of cases) {
      const r = await create(payload);
      assert.equal(r.statusCode, 400, `${JSON.stringify(payload)} → ${r.body}`);
      assert.deepEqual(r.json().map((p: { code: string }) => p.code), [code], JSON.stringify(payload));
      assert.equal(typeof r.json()[0].description, 'string');
    }
    const broken = await s().request({ method: 'POST', url: '/webapi/verify', headers: { authorization: basic, 'content-type': 'application/json' }, payload: '{"to": ' });
    assert.equal(broken.statusCode, 400);
    assert.equal(broken.json()[0].code, 'InvalidJson');
    const noCode = await s().request({ method: 'PUT', url: `/webapi/verify/unknown/validate`, headers: { authorization: basic }, payload: { code: 123 } });
    assert.deepEqual([noCode.statusCode, noCode.json()[0].code], [400, 'InvalidJson']);
    assert.equal((await check('00000000-0000-4000-8000-000000000000', '123456')).statusCode, 204);
  });

  it('authenticates with Basic (space id + access token) or a bearer access token', async () => {
    const none = await s().request({ method: 'POST', url: '/webapi/verify', token: null, payload: { to: '447400123456' } });
    assert.deepEqual([none.statusCode, none.json()[0].code], [401, 'Unauthorized']);
    const badPw = await create({ to: '447400123456' }, `Basic ${Buffer.from(`${space}:nope`).toString('base64')}`);
    assert.equal(badPw.statusCode, 401);
    const other = await s().createSpace();
    const mismatch = await create({ to: '447400123456' }, `Basic ${Buffer.from(`${other}:${token}`).toString('base64')}`);
    assert.deepEqual([mismatch.statusCode, mismatch.json()[0].code], [403, 'Forbidden']);
    const readOnly = await s().createToken(space, ['msg:r']);
    assert.equal((await create({ to: '447400123456' }, `Bearer ${readOnly}`)).statusCode, 403);
    const foreign = (await create({ to: '447400200009' })).json();
    const otherToken = await s().createToken(other, ['msg:any:s']);
    assert.equal((await check(foreign.requestId, '123456', `Bearer ${otherToken}`)).statusCode, 204, 'another space cannot see the request');
  });

  it('replays an Idempotency-Key without sending a second code', async () => {
    const headers = { authorization: basic, 'idempotency-key': 'verify-1' };
    const first = await s().request({ method: 'POST', url: '/webapi/verify', headers, payload: { to: '447400200010' } });
    const second = await s().request({ method: 'POST', url: '/webapi/verify', headers, payload: { to: '447400200010' } });
    assert.equal(second.statusCode, 202);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.equal(second.json().requestId, first.json().requestId);
    const rows = await s().container.platform.db.selectFrom('verify_requests').select('id').where('phone_number', '=', '447400200010').execute();
    assert.equal(rows.length, 1);
    const reused = await s().request({ method: 'POST', url: '/webapi/verify', headers, payload: { to: '447400200011' } });
    assert.deepEqual([reused.statusCode, reused.json()[0].code], [422, 'IdempotencyKeyReused']);
  });

  it('sends with a two-character sender that the One API alone would refuse', async () => {
    assert.equal((await create({ to: '447400200020', from: 'AB' })).statusCode, 202);
    await settle(s());
    const pdu = [...smsc.submits].reverse().find((p) => p.destination_addr === '447400200020')!;
    assert.equal(pdu.source_addr, 'AB');
  });
});
