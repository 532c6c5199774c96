#!/usr/bin/env node
// Finds every *.test.ts under src/ and test/ (Node 20's --test takes no globs) and runs them with
// node's test runner through tsx. Extra arguments are passed on (e.g. a file filter).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.test.ts') && (filters.length === 0 || filters.some((f) => p.includes(f)))) files.push(p);
  }
};
for (const root of ['src', 'test']) walk(root);
files.sort();
if (!process.env.TEST_DATABASE_URL) console.log('# PostgreSQL suites skipped: TEST_DATABASE_URL is not set');
if (!process.env.TEST_REDIS_URL) console.log('# Redis suites skipped: TEST_REDIS_URL is not set');
// A test that hangs fails after TEST_TIMEOUT_MS instead of stalling the run, and the runner
// exits once the tests are done even if a file left a handle open.
const timeout = process.env.TEST_TIMEOUT_MS ?? '180000';
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, `--test-timeout=${timeout}`, '--test-force-exit', ...flags, ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
