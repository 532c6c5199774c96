import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ValidationFailure } from '../../http/errors.js';
import { validateRequest } from './validate.js';

const check = (extra: Record<string, unknown>) => {
  const failures: ValidationFailure[] = [];
  const v = validateRequest({ to: { crmId: 'x' }, rules: ['custom_a', 'custom_b', 'custom_a'], body: 'b', ...extra }, { now: Date.now() }, failures);
  return { v, params: failures.map((f) => f.paramName) };
};

describe('message request validation', () => {
  it('deduplicates the channels of rules and keeps rules as sent', () => {
    const { v } = check({});
    assert.deepEqual(v?.channels, ['custom_a', 'custom_b']);
    assert.deepEqual(v?.stored.rules, ['custom_a', 'custom_b', 'custom_a']);
  });

  it('limits metadata to 16 KiB serialised, counting escapes, and refuses nesting it cannot serialise', () => {
    assert.deepEqual(check({ metadata: { a: 'x'.repeat(16_000) } }).params, []);
    assert.deepEqual(check({ metadata: { a: 'x'.repeat(16_400) } }).params, ['metadata']);
    // 3,000 quotes are 6,000 characters serialised, and so on: under the limit only when counted exactly.
    assert.deepEqual(check({ metadata: { a: '"'.repeat(8_000) } }).params, []);
    assert.deepEqual(check({ metadata: { a: '"'.repeat(8_200) } }).params, ['metadata']);
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 100_000; i++) deep = (deep.a = {}) as Record<string, unknown>;
    assert.deepEqual(check({ metadata: root }).params, ['metadata']);
    assert.deepEqual(check({ metadata: [1, { b: [true, null, 'é'] }] }).params, ['metadata']);
    assert.deepEqual(check({ metadata: { list: [1, { b: [true, null, 'é'] }] } }).params, []);
  });

  it('requires at least one recipient identifier', () => {
    assert.deepEqual(check({ to: {} }).params, ['to']);
    assert.deepEqual(check({ to: { crmId: '' } }).params, ['to']);
    assert.deepEqual(check({ to: { crmId: 5 } }).params, ['to.crmId']);
  });
});
