import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SendInput } from '../adapter.js';
import { renderGateway } from '../sms/http/gateway.js';
import { isMmsMedia, mediaTooLarge, mmsContent } from './mms-content.js';

const base: SendInput = { apiSpaceId: 's', messageId: 'm1', channelId: 'mms', to: { phoneNumber: '447400123456' } };

describe('MMS content (channels.md §3)', () => {
  it('attaches images, audio, video and vCards; nothing else', () => {
    for (const t of ['image/png', 'audio/mpeg', 'video/mp4', 'text/vcard', 'text/x-vcard; charset=utf-8', 'IMAGE/GIF']) assert.equal(isMmsMedia(t), true, t);
    for (const t of ['application/pdf', 'text/plain', 'text/html', undefined]) assert.equal(isMmsMedia(t), false, String(t));
  });

  it('takes the first text part without a body, and links parts it cannot attach', () => {
    const out = mmsContent({ ...base, title: 'T', messageParts: [
      { type: 'text/plain', data: 'From a part' }, { type: 'application/pdf', url: 'https://x.example/a.pdf' },
      { type: 'text/calendar', url: 'https://x.example/a.ics' }, { type: 'audio/mpeg', url: 'https://x.example/a.mp3', size: 10 },
    ] });
    assert.deepEqual(out, { ok: true, content: { subject: 'T', text: 'From a part\nhttps://x.example/a.pdf', media: [{ url: 'https://x.example/a.mp3', size: 10 }] } });
  });

  it('takes customBody.mms alone, and refuses a send with nothing in it', () => {
    const custom = mmsContent({ ...base, title: 'ignored', body: 'ignored', customBody: { subject: 'S', mediaUrls: ['https://x.example/1.png', 'ftp://no', 7] } });
    assert.deepEqual(custom, { ok: true, content: { subject: 'S', text: '', media: [{ url: 'https://x.example/1.png' }] } });
    const empty = mmsContent({ ...base, messageParts: [{ type: 'application/json', data: '{}' }] });
    assert.equal(empty.ok === false && empty.code, 'ContentNotSupported');
  });

  it('counts Content API sizes before part sizes, and unknown URLs as nothing', async () => {
    const sizes: Record<string, number> = { 'https://me/c/1': 600_000 };
    const known = async (url: string) => sizes[url];
    assert.equal(await mediaTooLarge([{ url: 'https://me/c/1', size: 1 }, { url: 'https://ext/2' }], known), false);
    assert.equal(await mediaTooLarge([{ url: 'https://me/c/1', size: 1 }, { url: 'https://ext/2', size: 400_001 }], known), true);
  });
});

describe('gateway merge fields', () => {
  const values = { subject: 'A "b"', mediaUrls: ['https://x.example/a.png?s=1&t=2', 'https://x.example/b,c.png'] };
  it('renders a list as a JSON array in JSON, comma-joined encoded items in a form, one per line otherwise', () => {
    assert.equal(renderGateway('{"s":"{{subject}}","m":{{ mediaUrls }},"k":"{{other}}"}', values, 'json'),
      '{"s":"A \\"b\\"","m":["https://x.example/a.png?s=1&t=2","https://x.example/b,c.png"],"k":"{{other}}"}');
    assert.equal(renderGateway('media={{mediaUrls}}', values, 'form'), 'media=https%3A%2F%2Fx.example%2Fa.png%3Fs%3D1%26t%3D2,https%3A%2F%2Fx.example%2Fb%2Cc.png');
    assert.equal(renderGateway('{{mediaUrls}}', values, 'none'), 'https://x.example/a.png?s=1&t=2\nhttps://x.example/b,c.png');
    assert.equal(renderGateway('{{mediaUrls}}', { mediaUrls: [] }, 'json'), '[]');
  });
});
