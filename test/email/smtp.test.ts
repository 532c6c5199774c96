import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { startSmtp } from './smtpd.js';
import { createSmtpAdapter, validateSmtpSettings } from '../../src/channels/email/smtp/smtp.provider.js';
import type { AdapterContext, CallbackRequest } from '../../src/channels/adapter.js';

function context(settings: Record<string, unknown>): AdapterContext {
  return {
    apiSpaceId: '6c1e7d2a-93b4-4f0e-a5d8-2b7c9e4f1a36', channelId: 'email', settings,
    sink: { async receipt() {}, async inbound() {} },
    allowPrivateTargets: true, publicBaseUrl: 'http://sb.test',
    trackLink: async (url, messageId) => `http://sb.test/t/${messageId}-${Buffer.from(url).toString('base64url').slice(0, 6)}`,
    log: pino({ level: 'silent' }),
  };
}

describe('SMTP e-mail provider against smtp-server', () => {
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let adapter: ReturnType<typeof createSmtpAdapter>;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

  before(async () => {
    smtp = await startSmtp({ reject: (to) => (to.startsWith('nobody@') ? 550 : to.startsWith('busy@') ? 451 : undefined) });
    adapter = createSmtpAdapter(context({
      host: '127.0.0.1', port: smtp.port, ignoreTls: true, defaultFromAddress: 'news@brightline.example', defaultFromName: 'Brightline', domains: ['mail.brightline.example'],
      dkim: { domainName: 'brightline.example', keySelector: 'sb1', privateKey },
    }));
  });
  after(async () => {
    await adapter.close();
    await smtp.close();
  });

  it('delivers subject, text, HTML, attachment and display name intact', async () => {
    const out = await adapter.send({
      apiSpaceId: 'x', messageId: '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9', channelId: 'email', to: { email: 'alice@example.org' },
      title: 'Your order — ready ✓', body: 'Plain text body\nwith two lines',
      options: { htmlBody: '<p>Hello <a href="https://shop.example/o/1?a=1&amp;b=2">order</a></p>', fromName: 'Brightline Shop', replyTo: 'help@brightline.example' },
      messageParts: [{ type: 'application/pdf', name: 'invoice.pdf', data: Buffer.from('%PDF-1.4 test').toString('base64') }],
    });
    assert.equal(out.kind, 'accepted');
    const got = smtp.received.at(-1)!;
    assert.deepEqual(got.envelope, { from: 'news@brightline.example', to: ['alice@example.org'] });
    const mail = got.mail;
    assert.equal(mail.subject, 'Your order — ready ✓');
    assert.equal(mail.text?.trim(), 'Plain text body\nwith two lines');
    assert.match(String(mail.html), /<a href="http:\/\/sb\.test\/t\/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9-[^"]+">order<\/a>/);
    assert.deepEqual(mail.from?.value, [{ name: 'Brightline Shop', address: 'news@brightline.example' }]);
    assert.equal((mail.replyTo?.value ?? [])[0]?.address, 'help@brightline.example');
    assert.equal(mail.messageId, '<sb.5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9@brightline.example>');
    assert.equal(mail.attachments.length, 1);
    assert.equal(mail.attachments[0]!.filename, 'invoice.pdf');
    assert.equal(mail.attachments[0]!.contentType, 'application/pdf');
    assert.equal(mail.attachments[0]!.content.toString(), '%PDF-1.4 test');
    assert.match(got.raw.toString(), /^DKIM-Signature: v=1; a=rsa-sha256;.*d=brightline\.example;.*s=sb1;/ms);
    assert.match(got.raw.toString(), /multipart\/alternative/);
  });

  it('uses custom bodies and rejects senders outside the configured domains', async () => {
    const ok = await adapter.send({ apiSpaceId: 'x', messageId: 'm-custom', channelId: 'email', to: { email: 'bob@example.org' },
      customBody: { subject: 'Custom', text: 'custom text', from: { address: 'ops@mail.brightline.example', name: 'Ops' }, headers: { 'X-Campaign': 'c1' } } });
    assert.equal(ok.kind, 'accepted');
    const mail = smtp.received.at(-1)!.mail;
    assert.deepEqual([mail.subject, mail.text?.trim(), mail.from?.value[0]?.address, mail.headers.get('x-campaign')], ['Custom', 'custom text', 'ops@mail.brightline.example', 'c1']);
    const bad = await adapter.send({ apiSpaceId: 'x', messageId: 'm-bad', channelId: 'email', to: { email: 'bob@example.org' }, body: 'x', options: { fromAddress: 'ceo@evil.example' } });
    assert.deepEqual([bad.kind, bad.kind === 'rejected' && bad.code], ['rejected', 'SenderIdRejected']);
  });

  it('fetches URL attachments and refuses more than 10 MB', async () => {
    const http = await import('node:http');
    const server = http.createServer((req, res) => {
      if (req.url === '/big') res.writeHead(200).end(Buffer.alloc(10 * 1024 * 1024 + 10));
      else res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from('PNGDATA'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const ok = await adapter.send({ apiSpaceId: 'x', messageId: 'm-url', channelId: 'email', to: { email: 'carol@example.org' }, body: 'pic', messageParts: [{ type: 'image/png', name: 'pic.png', url: `${base}/pic` }] });
      assert.equal(ok.kind, 'accepted');
      const att = smtp.received.at(-1)!.mail.attachments[0]!;
      assert.deepEqual([att.filename, att.content.toString()], ['pic.png', 'PNGDATA']);
      const big = await adapter.send({ apiSpaceId: 'x', messageId: 'm-big', channelId: 'email', to: { email: 'carol@example.org' }, body: 'big', messageParts: [{ type: 'application/zip', url: `${base}/big` }] });
      assert.deepEqual([big.kind, big.kind === 'rejected' && big.code], ['rejected', 'ContentTooLong']);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('classifies 5xx as rejected and 4xx as transient', async () => {
    const perm = await adapter.send({ apiSpaceId: 'x', messageId: 'm-550', channelId: 'email', to: { email: 'nobody@example.org' }, body: 'x' });
    assert.equal(perm.kind, 'rejected');
    const temp = await adapter.send({ apiSpaceId: 'x', messageId: 'm-451', channelId: 'email', to: { email: 'busy@example.org' }, body: 'x' });
    assert.equal(temp.kind, 'transient');
    const noAddr = await adapter.send({ apiSpaceId: 'x', messageId: 'm-0', channelId: 'email', to: {}, body: 'x' });
    assert.equal(noAddr.kind, 'rejected');
  });

  it('validates settings', () => {
    assert.deepEqual(validateSmtpSettings({ host: 'smtp', defaultFromAddress: 'a@b.example' }), []);
    assert.deepEqual(validateSmtpSettings({ dkim: { domainName: 'x' } }).map((f) => f.paramName).sort(), ['defaultFromAddress', 'dkim', 'host']);
  });
});

describe('inbound e-mail and DSN bounces', () => {
  const adapter = createSmtpAdapter(context({ host: '127.0.0.1', port: 1, defaultFromAddress: 'news@brightline.example', inboundSecret: 'in-secret-1' }));
  after(() => adapter.close());
  const req = (raw: string, type: string, secret = 'in-secret-1'): CallbackRequest => ({
    method: 'POST', headers: { authorization: `Bearer ${secret}` }, query: {}, rawBody: Buffer.from(raw), contentType: type,
  });

  it('needs the inbound secret', async () => {
    assert.equal((await adapter.handleCallback!(req('x', 'message/rfc822', 'wrong'))).status, 401);
  });

  it('turns a raw reply into an inbound message correlated by In-Reply-To', async () => {
    const raw = [
      'From: Alice <Alice@Example.org>', 'To: news@brightline.example', 'Subject: Re: Your order',
      'Message-ID: <reply-1@example.org>', 'In-Reply-To: <sb.5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9@brightline.example>',
      'Content-Type: text/plain; charset=utf-8', '', 'Thanks, got it!', '',
    ].join('\r\n');
    const res = await adapter.handleCallback!(req(raw, 'message/rfc822'));
    assert.equal(res.status, 200);
    const [inbound] = res.inbounds!;
    assert.deepEqual([inbound!.from, inbound!.to, inbound!.title, inbound!.body, inbound!.inReplyToMessageId],
      [{ email: 'alice@example.org' }, { email: 'news@brightline.example' }, 'Re: Your order', 'Thanks, got it!', '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9']);
  });

  it('accepts the JSON relay form', async () => {
    const res = await adapter.handleCallback!(req(JSON.stringify({ from: 'Bob <bob@example.org>', to: 'news@brightline.example', subject: 'Hi', text: 'Hello', headers: { References: '<sb.abc-123@brightline.example>' } }), 'application/json'));
    assert.deepEqual([res.inbounds![0]!.from, res.inbounds![0]!.body, res.inbounds![0]!.inReplyToMessageId], [{ email: 'bob@example.org' }, 'Hello', 'abc-123']);
  });

  it('turns an RFC 3464 bounce into a failed receipt with the DSN status', async () => {
    const raw = [
      'From: MAILER-DAEMON@mx.example.org', 'To: news@brightline.example', 'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0', 'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"', '',
      '--BOUND', 'Content-Type: text/plain', '', 'Your message could not be delivered.', '',
      '--BOUND', 'Content-Type: message/delivery-status', '',
      'Reporting-MTA: dns; mx.example.org', '', 'Final-Recipient: rfc822; gone@example.org', 'Action: failed', 'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 User unknown', '',
      '--BOUND', 'Content-Type: text/rfc822-headers', '',
      'From: news@brightline.example', 'To: gone@example.org', 'Message-ID: <sb.5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9@brightline.example>', 'Subject: Your order', '',
      '--BOUND--', '',
    ].join('\r\n');
    const res = await adapter.handleCallback!(req(raw, 'message/rfc822'));
    assert.equal(res.status, 200);
    assert.equal(res.inbounds?.length ?? 0, 0);
    assert.equal(res.receipts!.length, 1);
    const r = res.receipts![0]!;
    assert.deepEqual([r.messageId, r.status, r.details?.dsnStatus, r.details?.errorCode], ['5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9', 'failed', '5.1.1', 'Bounced']);
    assert.match(String(r.details?.diagnosticCode), /User unknown/);
  });
});
