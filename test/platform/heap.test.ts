import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * After start-up, two plain objects given the same new property name share a hidden class. Were
 * the plain object's transitions full (src/lib/heap.ts), each would get a class of its own and
 * the request path's property accesses would go megamorphic. V8's `%HaveSameMap` needs
 * `--allow-natives-syntax`, so the check runs in a child process that builds the app and starts
 * it listening, as `src/main.ts start` does.
 */
it('after start-up, objects given a new property name share a hidden class (src/lib/heap.ts)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-heap-'));
  const source = `
    const { loadConfig } = await import('./src/config/config.ts');
    const { createContainer } = await import('./src/container.ts');
    const { buildApp } = await import('./src/app.ts');
    const container = await createContainer(loadConfig({ ...process.env }));
    const app = await buildApp(container);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const shared = ['x-request-id', 'cache-control', 'a-name-never-seen-before'].map((k) => {
      const a = {}; a[k] = 1; const b = {}; b[k] = 1;
      return %HaveSameMap(a, b);
    });
    await app.close();
    await container.close();
    process.stdout.write(JSON.stringify(shared));
  `;
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', source], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: join(dir, 'heap.db'), DATA_DIR: dir, ADMIN_TOKENS: 'heap-test-admin-token-0123456789', INSTALLATION_SECRET: 'heap-test-installation-secret', TOKEN_SIGNING_KEYS: 'k1:heap-test-signing-key-0123456789abcdef', LOG_LEVEL: 'silent', WORKERS_ENABLED: 'false' },
        timeout: 60_000,
      }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    assert.deepEqual(JSON.parse(out), [true, true, true]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
