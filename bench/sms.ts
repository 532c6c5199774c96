/**
 * SMS benchmarks:
 * 1. Encoding + segmentation of 1M mixed messages (GSM, extension characters, accents converted
 *    or replaced, Cyrillic, emoji) against a bare baseline that only counts code points.
 * 2. The SMPP adapter against a local SMSC on one transceiver bind (window 10): submit_sm/s and
 *    delivery receipts applied per second, against the bare smpp client with the same window.
 *
 *   npm run bench -- sms          BENCH_SMS_MESSAGES=1000000 BENCH_SMPP_MESSAGES=5000 npm run bench -- sms
 */
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import smpp, { type PDU, type Session } from 'smpp';
import pino from 'pino';
import { countCodePoints, prepareSms } from '../src/channels/sms/encoding.js';
import { createSmppAdapter } from '../src/channels/sms/smpp/smpp.provider.js';
import type { AdapterContext, ReceiptReport } from '../src/channels/adapter.js';

const SAMPLES = [
  'Your code is 482193',
  'Hello Jane, your order SO-7731 has shipped and will arrive tomorrow between 9:00 and 13:00. Reply STOP to opt out.',
  'Total: 10€ [incl. {tax}] ~ see https://example.com/o/1?a=1&b=2 | thanks',
  'Zoë’s café — “special” offer… today only!',
  'Привет! Ваш заказ готов к выдаче. Код: 4821',
  'Party tonight 🎉🎉 bring snacks 🍕 and drinks 🍺',
  'a'.repeat(159),
  'b'.repeat(306) + 'c',
  'Ж'.repeat(71),
  'Mixed 😀 at the border ' + 'x'.repeat(40) + '😀'.repeat(20),
];

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function segmentationBench(total: number): void {
  const messages = Array.from({ length: 1000 }, (_, i) => SAMPLES[i % SAMPLES.length]! + (i % 7 === 0 ? ` #${i}` : ''));
  let sink = 0;
  // Warm up both paths so the JIT has compiled them before timing.
  for (let i = 0; i < 50_000; i++) sink += countCodePoints(messages[i % 1000]!) + prepareSms(messages[i % 1000]!).segmentCount;
  const baseline = time(() => {
    for (let i = 0; i < total; i++) sink += countCodePoints(messages[i % 1000]!);
  });
  const gsmDefault = time(() => {
    for (let i = 0; i < total; i++) sink += prepareSms(messages[i % 1000]!).segmentCount;
  });
  const unicode = time(() => {
    for (let i = 0; i < total; i++) sink += prepareSms(messages[i % 1000]!, { allowUnicode: true, unicodeConversion: { convertUnicodeToGsm: true } }).segmentCount;
  });
  const perMsg = (ms: number) => `${((ms * 1e6) / total).toFixed(0)} ns/msg`;
  console.log(`segmentation of ${total.toLocaleString('en')} mixed messages`);
  console.log(`  baseline (count code points)         ${baseline.toFixed(0).padStart(6)} ms  ${perMsg(baseline)}`);
  console.log(`  prepareSms (default: convert, ?)      ${gsmDefault.toFixed(0).padStart(6)} ms  ${perMsg(gsmDefault)}  ×${(gsmDefault / baseline).toFixed(1)} baseline`);
  console.log(`  prepareSms (allowUnicode + convert)   ${unicode.toFixed(0).padStart(6)} ms  ${perMsg(unicode)}  ×${(unicode / baseline).toFixed(1)} baseline`);
  if (sink === 42) console.log('');
}

/** A local SMSC answering every submit_sm at once and sending its DELIVRD receipt right after. */
async function startSmsc(): Promise<{ port: number; close(): Promise<void> }> {
  let seq = 0;
  const server = smpp.createServer((session: Session) => {
    session.on('error', () => {});
    session.on('bind_transceiver', (pdu: PDU) => session.send(pdu.response({ system_id: 'BENCH' })));
    session.on('enquire_link', (pdu: PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: PDU) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('submit_sm', (pdu: PDU) => {
      const id = `B${++seq}`;
      session.send(pdu.response({ message_id: id }));
      session.send(new smpp.PDU('deliver_sm', {
        source_addr: pdu.destination_addr, destination_addr: pdu.source_addr, esm_class: 4,
        short_message: `id:${id} sub:001 dlvrd:001 submit date:2405010930 done date:2405010931 stat:DELIVRD err:000 text:`,
      }));
    });
    session.on('deliver_sm_resp', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => {
      for (const s of [...server.sessions]) s.destroy();
      server.close(() => r());
    }),
  };
}

async function bareSmpp(port: number, total: number): Promise<number> {
  const session = smpp.connect({ host: '127.0.0.1', port });
  session.socket.setNoDelay(true);
  session.on('error', () => {});
  await new Promise<void>((resolve) => session.on('connect', () => session.send(new smpp.PDU('bind_transceiver', { system_id: 'bare', password: 'x' }), () => resolve())));
  session.on('deliver_sm', (pdu: PDU) => session.send(pdu.response()));
  const started = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let done = 0;
    const pump = () => {
      while (sent - done < 10 && sent < total) {
        sent++;
        session.send(new smpp.PDU('submit_sm', { source_addr: 'BENCH', destination_addr: '447400123456', data_coding: 0, short_message: Buffer.from('Your code is 482193') }), () => {
          done++;
          if (done === total) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const ms = performance.now() - started;
  session.destroy();
  return (total * 1000) / ms;
}

async function adapterSmpp(port: number, total: number): Promise<{ submits: number; receipts: number }> {
  const receipts: ReceiptReport[] = [];
  let firstReceipt = 0;
  let lastReceipt = 0;
  const ctx: AdapterContext = {
    apiSpaceId: 'bench', channelId: 'sms',
    settings: { host: '127.0.0.1', port, systemId: 'bench', windowSize: 10, throughputPerSecond: 100_000, defaultFrom: 'BENCH' },
    sink: {
      async receipt(r) {
        if (!firstReceipt) firstReceipt = performance.now();
        receipts.push(r);
        lastReceipt = performance.now();
      },
      async inbound() {},
    },
    allowPrivateTargets: true, publicBaseUrl: 'http://localhost', log: pino({ level: 'silent' }),
  };
  const adapter = createSmppAdapter(ctx);
  await adapter.client.whenReady();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const out = await adapter.send({ apiSpaceId: 'bench', messageId: `m${i}`, channelId: 'sms', to: { phoneNumber: '447400123456' }, body: 'Your code is 482193' });
      if (out.kind !== 'accepted') throw new Error(`send ${i}: ${JSON.stringify(out)}`);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  const ms = performance.now() - started;
  const end = Date.now() + 10_000;
  while (receipts.length < total && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  await adapter.close();
  if (receipts.length < total) throw new Error(`only ${receipts.length}/${total} receipts applied`);
  return { submits: (total * 1000) / ms, receipts: (total * 1000) / Math.max(1, lastReceipt - started) };
}

export async function run(): Promise<void> {
  segmentationBench(Number(process.env.BENCH_SMS_MESSAGES ?? 1_000_000));
  const total = Number(process.env.BENCH_SMPP_MESSAGES ?? 5000);
  const smsc = await startSmsc();
  try {
    const bare = await bareSmpp(smsc.port, total);
    const ours = await adapterSmpp(smsc.port, total);
    console.log(`SMPP, one transceiver bind, window 10, ${total} messages to a local SMSC`);
    console.log(`  bare smpp client        ${bare.toFixed(0).padStart(6)} submit_sm/s`);
    console.log(`  SMPP adapter            ${ours.submits.toFixed(0).padStart(6)} submit_sm/s  (${((ours.submits / bare) * 100).toFixed(0)}% of bare)`);
    console.log(`  receipts applied        ${ours.receipts.toFixed(0).padStart(6)} /s (parsed, parts settled, reported)`);
  } finally {
    await smsc.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
