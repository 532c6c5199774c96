/**
 * E-mail: the SMTP adapter (pooled nodemailer, HTML + text alternatives, Message-ID, click
 * tracking off) sending to a local smtp-server, against bare nodemailer with the same pool.
 *
 *   npm run bench -- email          BENCH_EMAILS=2000 npm run bench -- email
 */
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import nodemailer from 'nodemailer';
import pino from 'pino';
import { createSmtpAdapter } from '../src/channels/email/smtp/smtp.provider.js';

const POOL = 5;
const CONCURRENCY = 50;

async function startSmtp(): Promise<{ port: number; received: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
    onData(stream, _session, cb) {
      stream.on('data', () => {});
      stream.on('end', () => {
        count++;
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.server.address() as AddressInfo).port, received: () => count, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function pump(total: number, send: (i: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < total) await send(next++);
  }));
  return (total * 1000) / (performance.now() - started);
}

export async function run(): Promise<void> {
  const total = Number(process.env.BENCH_EMAILS ?? 2000);
  const smtp = await startSmtp();
  const html = '<p>Hello <b>Jane</b>, your order has shipped.</p>';
  const text = 'Hello Jane, your order has shipped.';
  try {
    const bare = nodemailer.createTransport({ pool: true, host: '127.0.0.1', port: smtp.port, ignoreTLS: true, maxConnections: POOL, maxMessages: 1000 } as never);
    const bareRate = await pump(total, async (i) => {
      await bare.sendMail({ from: 'news@brightline.example', to: `user${i}@example.org`, subject: 'Order update', text, html });
    });
    bare.close();
    const adapter = createSmtpAdapter({
      apiSpaceId: 'bench', channelId: 'email', settings: { host: '127.0.0.1', port: smtp.port, ignoreTls: true, maxConnections: POOL, defaultFromAddress: 'news@brightline.example', defaultFromName: 'Brightline' },
      sink: { async receipt() {}, async inbound() {} }, allowPrivateTargets: true, publicBaseUrl: 'http://localhost', log: pino({ level: 'silent' }),
    });
    const ours = await pump(total, async (i) => {
      const out = await adapter.send({ apiSpaceId: 'bench', messageId: `m-${i}`, channelId: 'email', to: { email: `user${i}@example.org` }, title: 'Order update', body: text, options: { htmlBody: html, trackClicks: false } });
      if (out.kind !== 'accepted') throw new Error(`send ${i}: ${JSON.stringify(out)}`);
    });
    await adapter.close();
    console.log(`SMTP to a local smtp-server, pool of ${POOL} connections, ${CONCURRENCY} concurrent sends, ${total} mails each`);
    console.log(`  bare nodemailer pool   ${bareRate.toFixed(0).padStart(6)} mails/s`);
    console.log(`  SMTP adapter           ${ours.toFixed(0).padStart(6)} mails/s  (${((ours / bareRate) * 100).toFixed(0)}% of bare)`);
    console.log(`  server received        ${smtp.received()} mails`);
  } finally {
    await smtp.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
