import { it } from 'node:test';
import assert from 'node:assert/strict';
import { phoneCountry, phoneDigits } from './phone.js';

it('phone numbers become international digits, a trunk prefix after the country code dropped', () => {
  assert.equal(phoneDigits('+44 (0)7400 123456'), '447400123456');
  assert.equal(phoneDigits('+44 7400 123456'), '447400123456');
  assert.equal(phoneDigits('0044 7400-123456'), '447400123456');
  assert.equal(phoneDigits('+49 030 901820'), '4930901820');
  assert.equal(phoneDigits('+1 (202) 555-0123'), '12025550123');
  // Italy keeps its leading 0: the number is valid with it.
  assert.equal(phoneDigits('+39 06 6982 0000'), '390669820000');
  // Digits alone are taken as written; numbers libphonenumber cannot validate keep their digits.
  assert.equal(phoneDigits('4407400123456'), '4407400123456');
  assert.equal(phoneDigits('+999 123 4567'), '9991234567');
  assert.equal(phoneDigits('12345'), undefined);
  assert.equal(phoneDigits('123456'), '123456');
  assert.equal(phoneDigits('123456', 7), undefined);
  assert.equal(phoneDigits('1234567890123456'), undefined);
  assert.equal(phoneDigits('+44 7400 12345x'), undefined);
  assert.equal(phoneDigits(''), undefined);
  assert.equal(phoneCountry('447400123456'), 'GB');
  assert.equal(phoneCountry('12025550123'), 'US');
});
