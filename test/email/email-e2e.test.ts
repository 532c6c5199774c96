import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { settle } from '../messages/helpers.js';
import { fromJson } from '../../src/storage/dialect.js';
import { startSmtp } from './smtpd.js';

eachDatabase('e-mail channel end to end', (dialect) => {
  const s = useServer(dialect);
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let space: string;
  let token: string;

  before(async () => {
    smtp = await startSmtp();
    space = await s().createSpace();
    token = await s().createToken(space, ['msg:any:s', 'msg:r']);
    const put = await s().request({
      method: 'PUT', url: `/apispaces/${space}/channels/email`,
      payload: { enabled: true, provider: 'smtp', settings: { host: '127.0.0.1', port: smtp.port, ignoreTls: true, defaultFromAddress: 'news@brightline.example', defaultFromName: 'Brightline', inboundSecret: 'inbound-secret-1' } },
    });
    assert.ok(put.statusCode < 300, put.body);
    assert.equal(put.json().settings.inboundSecret, '********');
  });
  after(() => smtp.close());

  it('sends through POST /messages with tracked links, takes the reply and the bounce', async () => {
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: {
      to: { email: 'alice@example.org' }, rules: ['email'], title: 'Order {{metadata.order}}', body: 'Your order shipped',
      channelOptions: { email: { htmlBody: '<p><a href="https://shop.example/track">Track it</a></p>', fromName: 'Brightline Shop' } },
      metadata: { order: 'SO-1' },
    } });
    assert.equal(res.statusCode, 201, res.body);
    const { messageId } = res.json();
    await settle(s());
    const got = smtp.received.find((r) => r.mail.messageId === `<sb.${messageId}@brightline.example>`);
    assert.ok(got, 'the SMTP server received the message');
    assert.equal(got!.mail.text?.trim(), 'Your order shipped');
    assert.deepEqual(got!.mail.from?.value[0], { name: 'Brightline Shop', address: 'news@brightline.example' });
    const tracked = /href="(http:\/\/localhost:8080\/t\/[A-Za-z0-9_-]{22})"/.exec(String(got!.mail.html))?.[1];
    assert.ok(tracked, `tracked link in ${got!.mail.html}`);
    const click = await s().request({ method: 'GET', url: new URL(tracked!).pathname, token: null });
    assert.equal(click.statusCode, 302);
    assert.equal(click.headers.location, 'https://shop.example/track');
    const sent = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json();
    assert.equal(sent.status, 'sent');
    // The events (webhooks.md §5.1): email's channelData and additionalInfo; the click with the message's metadata.
    const events = (await s().container.platform.events.readAfter(0, 10_000)).filter((e) => (e.payload as { id?: string }).id === messageId);
    const sentEvent = events.find((e) => e.name === 'message.sent')!.payload as Record<string, any>;
    assert.deepEqual(sentEvent.channelData, { email: { from: 'news@brightline.example', subject: 'Order SO-1' } });
    assert.equal(sentEvent.details.additionalInfo.to, 'alice@example.org');
    assert.deepEqual((events.find((e) => e.name === 'interaction.click')!.payload as Record<string, any>).metadata, { order: 'SO-1' });

    const callback = (raw: string, secret = 'inbound-secret-1') => s().request({
      method: 'POST', url: `/apispaces/${space}/channels/email/callback`, token: null,
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'message/rfc822' }, payload: raw,
    });
    assert.equal((await callback('Subject: x\r\n\r\nhi', 'wrong')).statusCode, 401);
    const reply = ['From: Alice <alice@example.org>', 'To: news@brightline.example', 'Subject: Re: Order SO-1', `In-Reply-To: <sb.${messageId}@brightline.example>`, 'Content-Type: text/plain', '', 'Thanks!', ''].join('\r\n');
    assert.equal((await callback(reply)).statusCode, 200);
    const bounce = [
      'From: MAILER-DAEMON@mx.example.org', 'To: news@brightline.example', 'Subject: Delivery failure', 'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="B"', '', '--B', 'Content-Type: text/plain', '', 'Failed.', '',
      '--B', 'Content-Type: message/delivery-status', '', 'Reporting-MTA: dns; mx.example.org', '', 'Final-Recipient: rfc822; alice@example.org',
      'Action: failed', 'Status: 5.2.2', 'Diagnostic-Code: smtp; 552 mailbox full', '',
      '--B', 'Content-Type: text/rfc822-headers', '', `Message-ID: <sb.${messageId}@brightline.example>`, '', '--B--', '',
    ].join('\r\n');
    assert.equal((await callback(bounce)).statusCode, 200);
    await settle(s());
    const inbound = await s().container.platform.db.selectFrom('inbound_messages').select(['doc']).where('api_space_id', '=', space).execute();
    assert.equal(inbound.length, 1, 'the bounce is not an inbound message');
    const doc = fromJson<Record<string, any>>(inbound[0]!.doc);
    assert.deepEqual([doc.channel, doc.from.email, doc.body, doc.correlation?.messageId], ['email', 'alice@example.org', 'Thanks!', messageId]);
    const failed = (await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json();
    assert.equal(failed.status, 'failed');
  });

  it('marks a message read when its open pixel is fetched (trackOpens)', async () => {
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/messages`, token, payload: {
      to: { email: 'bob@example.org' }, rules: ['email'], title: 'Hi', body: 'Hi Bob', channelOptions: { email: { htmlBody: '<html><body><p>Hi Bob</p></body></html>', trackOpens: true } },
    } });
    const { messageId } = res.json();
    await settle(s());
    const html = String(smtp.received.find((r) => r.mail.messageId === `<sb.${messageId}@brightline.example>`)!.mail.html);
    const pixel = /<img src="(http:\/\/localhost:8080[^"]+)" width="1"/.exec(html)?.[1];
    assert.ok(pixel, html);
    const url = new URL(pixel!.replace(/&amp;/g, '&'));
    const forged = await s().request({ method: 'GET', url: `${url.pathname}?s=AAAAAAAAAAAAAAAAAAAAAA`, token: null });
    assert.deepEqual([forged.statusCode, forged.headers['content-type']], [200, 'image/gif']);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json().status, 'sent');
    const open = await s().request({ method: 'GET', url: url.pathname + url.search, token: null });
    assert.equal(open.statusCode, 200);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/messages/${messageId}`, token })).json().status, 'read');
  });
});
