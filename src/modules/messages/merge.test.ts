import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mergeDeep, mergeString } from './merge.js';
import type { ValidationFailure } from '../../http/errors.js';

it('substitutes profile paths, metadata, body and leaves unknown tokens', () => {
  const ctx = { profile: { firstName: 'Jane', address: { city: 'Leeds' }, n: 3, tags: ['a'] }, profileId: 'jane', body: 'B', metadata: { order: 'SO-1' } };
  assert.equal(mergeString('Hi {{ profile.firstName }} in {{profile.address.city}}', ctx), 'Hi Jane in Leeds');
  assert.equal(mergeString('{{profile.n}} {{profile.tags}} {{profile.missing}}|', ctx), '3 ["a"] |');
  assert.equal(mergeString('{{metadata.order}} {{profileId}} {{body}} {{other}} {{x.y}}', ctx), 'SO-1 jane B {{other}} {{x.y}}');
  // single pass: a value that looks like a token is not re-scanned
  assert.equal(mergeString('{{profile.firstName}}', { profile: { firstName: '{{profileId}}' }, profileId: 'p' }), '{{profileId}}');
  assert.deepEqual(mergeDeep({ a: ['{{body}}', 1, { b: '{{title}}' }] }, { body: 'x', title: 't' }), { a: ['x', 1, { b: 't' }] });
});

it('message ids keep the UUID v4 form and sort by creation time', async () => {
  const { messageId } = await import('./messages.repo.js');
  const { randomUUID } = await import('node:crypto');
  const a = messageId(Date.UTC(2026, 0, 1), randomUUID());
  const b = messageId(Date.UTC(2026, 0, 1) + 1, randomUUID());
  assert.match(a, /^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$/);
  assert.ok(a < b);
});

it('derives the name of a URL part and reports every checklist failure at once', async () => {
  const { validateRequest } = await import('./validate.js');
  const failures: ValidationFailure[] = [];
  const v = validateRequest({ to: { email: ' Jo@Example.COM ' }, rules: ['email', 'email'], messageParts: [{ type: 'image/png', url: 'https://cdn.example.com/a/van%201.png' }] }, { now: 0 }, failures);
  assert.deepEqual(failures, []);
  assert.equal((v!.stored.messageParts as Array<{ name: string }>)[0]!.name, 'van 1.png');
  assert.deepEqual(v!.channels, ['email']);
  assert.equal((v!.stored.to as { email: string }).email, 'Jo@example.com');
  const bad: ValidationFailure[] = [];
  validateRequest({ to: { x: 1 }, rules: ['sms'], fallbackAfter: 5, successStatus: 'maybe', requireOptIn: 'yes', metadata: [] }, { now: 0 }, bad, 7);
  assert.deepEqual(bad.map((f) => f.paramName).sort(), ['body', 'fallbackAfter', 'metadata', 'requireOptIn', 'successStatus', 'to.x'].sort());
  assert.ok(bad.every((f) => f.index === 7));
});
