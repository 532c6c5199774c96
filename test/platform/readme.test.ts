import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_DOCS } from '../../src/config/config.js';

it('README lists every configuration setting (regenerate with: npx tsx scripts/config-table.ts)', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const [names] of CONFIG_DOCS) for (const name of names.split(', ')) assert.ok(readme.includes(`\`${name}\``), `README.md does not mention ${name}`);
  assert.match(readme, /npm install/);
  assert.match(readme, /npm start/);
  assert.match(readme, /npm test/);
});
