import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSmppAdapter } from '../../src/channels/sms/smpp/smpp.provider.js';
import { validateSmppSettings } from '../../src/channels/sms/smpp/smpp.provider.js';
import type { SendInput } from '../../src/channels/adapter.js';
import { recordingContext, startSmsc, until, type TestSmsc } from './smsc.js';

const SPACE = '6c1e7d2a-93b4-4f0e-a5d8-2b7c9e4f1a36';
let n = 0;
const input = (over: Partial<SendInput> = {}): SendInput => ({
  apiSpaceId: SPACE, messageId: `msg-${++n}`, channelId: 'sms', to: { phoneNumber: '447400123456' }, body: 'Hello', options: { from: 'BRIGHT' }, ...over,
});

describe('SMPP provider against a local SMSC', () => {
  let smsc: TestSmsc;
  let rec: ReturnType<typeof recordingContext>;
  let adapter: ReturnType<typeof createSmppAdapter>;

  before(async () => {
    smsc = await startSmsc();
    rec = recordingContext({ host: '127.0.0.1', port: smsc.port, systemId: 'esme', password: 'pw', rebindMinMs: 30, rebindMaxMs: 200, enquireLinkSeconds: 1, throughputPerSecond: 1000 });
    adapter = createSmppAdapter(rec.ctx);
    await adapter.client.whenReady();
  });
  after(async () => {
    await adapter.close();
    await smsc.close();
  });

  it('binds as a transceiver', () => {
    assert.deepEqual(smsc.binds, ['bind_transceiver']);
  });

  it('sends 200 GSM characters as two submit_sm with a concatenation UDH', async () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(5).slice(0, 200);
    const before = smsc.submits.length;
    const out = await adapter.send(input({ body: text }));
    assert.equal(out.kind, 'accepted');
    if (out.kind !== 'accepted') return;
    assert.equal(out.details?.segmentCount, 2);
    assert.equal(out.details?.encoding, 'GSM7');
    const pdus = smsc.submits.slice(before);
    assert.equal(pdus.length, 2);
    const udhs = pdus.map((p) => [...(p.short_message.udh[0] as Buffer)]);
    assert.equal(udhs[0]![0], 0x00);
    assert.equal(udhs[0]![1], 0x03);
    assert.equal(udhs[0]![2], udhs[1]![2], 'same reference');
    assert.deepEqual(udhs.map((u) => u.slice(3)), [[2, 1], [2, 2]]);
    for (const p of pdus) {
      assert.equal(p.esm_class & 0x40, 0x40);
      assert.equal(p.data_coding, 0);
      assert.equal(p.source_addr, 'BRIGHT');
      assert.deepEqual([p.source_addr_ton, p.source_addr_npi, p.dest_addr_ton, p.dest_addr_npi], [5, 0, 1, 1]);
      assert.equal(p.registered_delivery, 1);
    }
    assert.equal(pdus.map((p) => p.short_message.message).join(''), text);
    assert.equal(pdus[0]!.short_message.message.length, 153);
  });

  it('sends Cyrillic with an emoji as UCS-2 (data_coding 8)', async () => {
    const before = smsc.submits.length;
    const text = 'Привет 😀';
    const out = await adapter.send(input({ body: text, options: { from: '447700900100', allowUnicode: true } }));
    assert.equal(out.kind, 'accepted');
    const [pdu] = smsc.submits.slice(before);
    assert.equal(pdu!.data_coding, 8);
    assert.equal(pdu!.short_message.message, text);
    assert.deepEqual([pdu!.source_addr_ton, pdu!.source_addr_npi], [1, 1]);
    assert.equal(out.kind === 'accepted' && out.details?.encoding, 'UCS2');
  });

  it('maps validity from expiresOn and falls back to 48 hours', async () => {
    const before = smsc.submits.length;
    const expires = Date.now() + 10 * 60_000;
    await adapter.send(input({ expiresOn: expires }));
    await adapter.send(input({ expiresOn: Date.now() + 5_000 }));
    const [a, b] = smsc.submits.slice(before);
    // The SMSC side decodes the absolute time back into a Date.
    assert.ok(Math.abs((a!.validity_period as Date).getTime() - expires) < 1000);
    assert.ok(Math.abs((b!.validity_period as Date).getTime() - (Date.now() + 48 * 3600_000)) < 5000);
  });

  it('turns stat:DELIVRD receipts into delivered, for every part of a multi-part message', async () => {
    const out = await adapter.send(input({ messageId: 'multi-1', body: 'x'.repeat(170) }));
    assert.equal(out.kind, 'accepted');
    const ids = (out as unknown as { details: { providerMessageIds: string[] } }).details.providerMessageIds;
    assert.equal(ids.length, 2);
    const receipt = (id: string, stat: string) => ({ source_addr: '447400123456', destination_addr: 'BRIGHT', esm_class: 0x04,
      short_message: `id:${id} sub:001 dlvrd:001 submit date:2405010930 done date:2405010931 stat:${stat} err:000 text:xxxx` });
    const resp = await smsc.deliver(receipt(ids[0]!, 'DELIVRD'));
    assert.equal(resp.command_status, 0);
    assert.equal(rec.receipts.length, 0, 'one part delivered is not the message');
    await smsc.deliver(receipt(ids[1]!, 'DELIVRD'));
    await until(() => rec.receipts.length === 1);
    assert.equal(rec.receipts[0]!.status, 'delivered');
    assert.equal(rec.receipts[0]!.messageId, 'multi-1');
    assert.equal(rec.receipts[0]!.providerMessageId, ids[1]);
  });

  it('maps UNDELIV with the carrier error and the receipted_message_id TLV', async () => {
    const out = await adapter.send(input({ messageId: 'single-fail' }));
    const id = (out as { providerMessageId: string }).providerMessageId;
    const count = rec.receipts.length;
    await smsc.deliver({ source_addr: '447400123456', esm_class: 0x04, receipted_message_id: id, message_state: 5,
      short_message: `id:${id} sub:001 dlvrd:000 submit date:2405010930 done date:2405010931 stat:UNDELIV err:001 text:` });
    await until(() => rec.receipts.length === count + 1);
    const r = rec.receipts.at(-1)!;
    assert.equal(r.status, 'failed');
    assert.equal(r.messageId, 'single-fail');
    assert.deepEqual([r.details?.errorCode, r.details?.carrierErrorCode], ['Undeliverable', '001']);
  });

  it('delivers MO messages (and reassembles concatenated ones) to the sink', async () => {
    await smsc.deliver({ source_addr: '447400999888', destination_addr: '447700900100', esm_class: 0, short_message: 'STOP' });
    await until(() => rec.inbounds.length === 1);
    assert.deepEqual(rec.inbounds[0], { channelId: 'sms', from: { phoneNumber: '447400999888' }, to: { phoneNumber: '447700900100' }, body: 'STOP' });
    const udh = (seq: number) => Buffer.from([0x05, 0x00, 0x03, 0x77, 0x02, seq]);
    await smsc.deliver({ source_addr: '447400999888', destination_addr: '447700900100', esm_class: 0x40, data_coding: 8, short_message: { udh: udh(2), message: ' мир' } });
    await smsc.deliver({ source_addr: '447400999888', destination_addr: '447700900100', esm_class: 0x40, data_coding: 8, short_message: { udh: udh(1), message: 'Привет' } });
    await until(() => rec.inbounds.length === 2);
    assert.equal(rec.inbounds[1]!.body, 'Привет мир');
  });

  it('classifies submit_sm_resp errors', async () => {
    smsc.nextStatuses.push(0x58);
    const throttled = await adapter.send(input());
    assert.deepEqual([throttled.kind, (throttled as { code?: string }).code], ['transient', 'Throttled']);
    smsc.nextStatuses.push(0x14);
    assert.equal((await adapter.send(input())).kind, 'transient');
    smsc.nextStatuses.push(0x0b);
    const bad = await adapter.send(input());
    assert.deepEqual([bad.kind, (bad as { code?: string }).code], ['rejected', 'InvalidNumber']);
  });

  it('retries a throttled part alone and fails the message when a part is rejected', async () => {
    const before = smsc.submits.length;
    smsc.nextStatuses.push(0, 0x58);
    const out = await adapter.send(input({ messageId: 'parts-1', body: 'p'.repeat(200) }));
    assert.equal(out.kind, 'accepted');
    assert.equal(smsc.submits.length - before, 3, 'two parts plus one retry of the throttled part');
    assert.equal((out as unknown as { details: { providerMessageIds: string[] } }).details.providerMessageIds.length, 2);
    smsc.nextStatuses.push(0, 0x45);
    const partial = await adapter.send(input({ messageId: 'parts-2', body: 'q'.repeat(200) }));
    assert.equal(partial.kind, 'accepted');
    const d = (partial as unknown as { details: { providerMessageIds: string[]; partsRejected: number } }).details;
    assert.equal(d.partsRejected, 1);
    const count = rec.receipts.length;
    await smsc.deliver({ source_addr: '447400123456', esm_class: 0x04, short_message: `id:${d.providerMessageIds[0]} sub:001 dlvrd:001 submit date:2405010930 done date:2405010931 stat:DELIVRD err:000 text:` });
    await until(() => rec.receipts.length === count + 1);
    assert.deepEqual([rec.receipts.at(-1)!.messageId, rec.receipts.at(-1)!.status], ['parts-2', 'failed']);
  });

  it('rejects text over 2000 characters and missing senders without touching the SMSC', async () => {
    const before = smsc.submits.length;
    const long = await adapter.send(input({ body: 'a'.repeat(2001) }));
    assert.deepEqual([long.kind, (long as { code?: string }).code], ['rejected', 'ContentTooLong']);
    const nosender = await adapter.send(input({ options: {} }));
    assert.deepEqual([nosender.kind, (nosender as { code?: string }).code], ['rejected', 'SenderIdRejected']);
    assert.equal(smsc.submits.length, before);
  });

  it('rebinds after the SMSC drops the connection and sends what was queued', async () => {
    const bindsBefore = smsc.binds.length;
    smsc.dropAll();
    await until(() => !adapter.client.ready);
    const before = smsc.submits.length;
    const pending = [adapter.send(input({ body: 'queued one' })), adapter.send(input({ body: 'queued two' }))];
    const outs = await Promise.all(pending);
    assert.deepEqual(outs.map((o) => o.kind), ['accepted', 'accepted']);
    assert.ok(smsc.binds.length > bindsBefore);
    assert.deepEqual(smsc.submits.slice(before).map((p) => p.short_message.message).sort(), ['queued one', 'queued two']);
  });
});

describe('SMPP provider options', () => {
  it('uses transmitter + receiver binds, SAR TLVs and message_payload when configured', async () => {
    const smsc = await startSmsc();
    const rec = recordingContext({ host: '127.0.0.1', port: smsc.port, systemId: 'esme', bindMode: 'transmitter+receiver', concatenation: 'sar', numbers: [{ number: '447700900100', countryIsoCode: 'GBR' }] });
    const adapter = createSmppAdapter(rec.ctx);
    try {
      await adapter.client.whenReady();
      await until(() => smsc.binds.length === 2);
      assert.deepEqual([...smsc.binds].sort(), ['bind_receiver', 'bind_transmitter']);
      const out = await adapter.send(input({ body: 'b'.repeat(200), options: {} }));
      assert.equal(out.kind, 'accepted');
      const pdus = smsc.submits.slice(-2);
      assert.deepEqual(pdus.map((p) => [p.sar_total_segments, p.sar_segment_seqnum]), [[2, 1], [2, 2]]);
      assert.equal(pdus[0]!.source_addr, '447700900100', 'pool number for a GB destination');
      await smsc.deliver({ source_addr: '447400000001', destination_addr: '447700900100', short_message: 'hi' });
      await until(() => rec.inbounds.length === 1);
    } finally {
      await adapter.close();
    }
    const payloadAdapter = createSmppAdapter(recordingContext({ host: '127.0.0.1', port: smsc.port, systemId: 'esme', concatenation: 'payload', defaultFrom: 'ACME' }).ctx);
    try {
      await payloadAdapter.client.whenReady();
      await payloadAdapter.send(input({ body: 'c'.repeat(300), options: {} }));
      const last = smsc.submits.at(-1)!;
      assert.equal(last.message_payload.message, 'c'.repeat(300));
      assert.equal(last.source_addr, 'ACME');
    } finally {
      await payloadAdapter.close();
      await smsc.close();
    }
  });

  it('sends octets when the SMSC wants data_coding 3 for GSM text', async () => {
    const smsc = await startSmsc();
    const adapter = createSmppAdapter(recordingContext({ host: '127.0.0.1', port: smsc.port, systemId: 'esme', gsmDataCoding: 3, defaultFrom: 'ACME' }).ctx);
    try {
      await adapter.client.whenReady();
      assert.equal((await adapter.send(input({ body: 'Café @ 10€', options: {} }))).kind, 'accepted');
      const pdu = smsc.submits.at(-1)!;
      assert.equal(pdu.data_coding, 3);
      assert.equal(pdu.short_message.message, 'Café @ 10?');
    } finally {
      await adapter.close();
      await smsc.close();
    }
  });

  it('reports sends as transient while the SMSC refuses the bind', async () => {
    const smsc = await startSmsc();
    const adapter = createSmppAdapter(recordingContext({ host: '127.0.0.1', port: smsc.port, systemId: 'esme', password: 'bad', rebindMinMs: 50, submitTimeoutMs: 300, defaultFrom: 'ACME' }).ctx);
    try {
      const out = await adapter.send(input({ options: {} }));
      assert.deepEqual([out.kind, out.kind === 'transient' && out.code], ['transient', 'ProviderError']);
      assert.ok(smsc.binds.length >= 2, 'kept trying to bind');
      assert.equal(smsc.submits.length, 0);
    } finally {
      await adapter.close();
      await smsc.close();
    }
  });

  it('validates settings', () => {
    assert.deepEqual(validateSmppSettings({ host: 'h', systemId: 's' }), []);
    const bad = validateSmppSettings({ port: 0, systemId: '', bindMode: 'x', windowSize: 0 }).map((f) => f.paramName).sort();
    assert.deepEqual(bad, ['bindMode', 'host', 'port', 'systemId', 'windowSize']);
  });
});

describe('SMPP flow control and keep-alive', () => {
  it('keeps at most windowSize submit_sm outstanding', async () => {
    const smsc = await startSmsc({ autoRespond: false });
    const adapter = createSmppAdapter(recordingContext({ host: '127.0.0.1', port: smsc.port, systemId: 'esme', windowSize: 3, throughputPerSecond: 1000, defaultFrom: 'WIN' }).ctx);
    try {
      await adapter.client.whenReady();
      const sends = Array.from({ length: 7 }, (_, i) => adapter.send(input({ messageId: `w${i}`, options: {} })));
      await smsc.waitForSubmits(3);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(smsc.submits.length, 3, 'the window holds the rest back');
      // Answer in order: each response frees one slot.
      const session = smsc.sessions[0]!;
      let answered = 0;
      while (answered < 7) {
        await smsc.waitForSubmits(answered + 1);
        const pdu = smsc.submits[answered]!;
        session.send(pdu.response({ message_id: `W${answered++}` }));
      }
      const outs = await Promise.all(sends);
      assert.deepEqual(outs.map((o) => o.kind), Array(7).fill('accepted'));
    } finally {
      await adapter.close();
      await smsc.close();
    }
  });

  it('caps the submit rate and sends enquire_link keep-alives', async () => {
    const smsc = await startSmsc();
    let enquiries = 0;
    const adapter = createSmppAdapter(recordingContext({ host: '127.0.0.1', port: smsc.port, systemId: 'esme', throughputPerSecond: 20, enquireLinkSeconds: 1, numbers: [{ number: '88000', type: 'shortCode' }], defaultFrom: '88000' }).ctx);
    try {
      await adapter.client.whenReady();
      smsc.sessions[0]!.on('enquire_link', () => enquiries++);
      const started = Date.now();
      await Promise.all(Array.from({ length: 12 }, (_, i) => adapter.send(input({ messageId: `r${i}`, options: {} }))));
      const elapsed = Date.now() - started;
      // 20/s with a burst of 2: twelve submits need at least ~0.5 s.
      assert.ok(elapsed >= 450, `12 submits at 20/s took ${elapsed} ms`);
      const last = smsc.submits.at(-1)!;
      assert.deepEqual([last.source_addr, last.source_addr_ton, last.source_addr_npi], ['88000', 3, 0]);
      await new Promise((r) => setTimeout(r, 1200));
      assert.ok(enquiries >= 1, 'enquire_link sent');
    } finally {
      await adapter.close();
      await smsc.close();
    }
  });
});

describe('SMPP over TLS', () => {
  it('binds and submits through a TLS SMSC (and refuses an untrusted certificate by default)', async () => {
    const forge = (await import('node-forge')).default;
    const keys = forge.pki.rsa.generateKeyPair(1024);
    const cert = forge.pki.createCertificate();
    cert.publicKey = keys.publicKey;
    cert.serialNumber = '01';
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + 3_600_000);
    cert.setSubject([{ name: 'commonName', value: 'localhost' }]);
    cert.setIssuer([{ name: 'commonName', value: 'localhost' }]);
    cert.sign(keys.privateKey, forge.md.sha256.create());
    const smpp = (await import('smpp')).default;
    const submits: string[] = [];
    const server = smpp.createServer({ key: forge.pki.privateKeyToPem(keys.privateKey), cert: forge.pki.certificateToPem(cert) }, (session) => {
      session.on('error', () => {});
      session.on('bind_transceiver', (pdu) => session.send(pdu.response()));
      session.on('submit_sm', (pdu) => {
        submits.push(String(pdu.short_message.message));
        session.send(pdu.response({ message_id: 'TLS1' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const strict = createSmppAdapter(recordingContext({ host: '127.0.0.1', port, tls: true, systemId: 'esme', rebindMinMs: 50, submitTimeoutMs: 300, defaultFrom: 'ACME' }).ctx);
    const relaxed = createSmppAdapter(recordingContext({ host: '127.0.0.1', port, tls: true, tlsRejectUnauthorized: false, systemId: 'esme', defaultFrom: 'ACME' }).ctx);
    try {
      assert.equal((await strict.send(input({ options: {} }))).kind, 'transient', 'self-signed certificate refused');
      await relaxed.client.whenReady();
      const out = await relaxed.send(input({ body: 'over tls', options: {} }));
      assert.deepEqual([out.kind, out.kind === 'accepted' && out.providerMessageId], ['accepted', 'TLS1']);
      assert.deepEqual(submits, ['over tls']);
    } finally {
      await strict.close();
      await relaxed.close();
      for (const s of [...server.sessions]) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
