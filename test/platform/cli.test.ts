import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dropLocation, freshLocation, startServer, testEnv } from '../helpers/harness.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));

// The CLI is a separate process on a SQLite file; each run compiles through tsx, so keep them few.
describe('switchboard CLI', { timeout: 180_000 }, () => {
  const location = freshLocation('sqlite');
  // Debug logging on purpose: logs must go to stderr and leave stdout to the JSON result.
  const env = { ...process.env, ...testEnv(location, { LOG_LEVEL: 'debug' }) };
  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, cwd: location.dataDir });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  after(() => dropLocation(location));

  it('creates a space and a token whose JSON output a script can parse, then migrates', async () => {
    const space = await cli('space', 'create', 'CLI space');
    assert.equal(space.code, 0, space.stderr);
    const created = JSON.parse(space.stdout);
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.equal(created.name, 'CLI space');
    assert.equal(created.accountId, 1);

    const [token, unknown] = await Promise.all([
      cli('token', 'create', created.id.replace(/-/g, '').toUpperCase(), 'ci-bot', '--template', 'oneapi-all'),
      cli('token', 'create', '00000000-0000-4000-8000-000000000000', 'nobody'),
    ]);
    assert.equal(token.code, 0, token.stderr);
    const minted = JSON.parse(token.stdout);
    assert.equal(minted.name, 'ci-bot');
    assert.equal(minted.profileId, 'ci-bot');
    assert.deepEqual(minted.permissions, ['msg:any:s', 'msg:r', 'tmpl:r', 'content:w', 'chan:r']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /not found/);

    const migrate = await cli('migrate');
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.match(migrate.stdout, /database is up to date/);

    // The server on the same database and keys accepts the token.
    const server = await startServer('sqlite', { location, start: false });
    try {
      const actor = await server.container.credentials.authenticateToken(minted.token);
      assert.equal(actor?.kind, 'access');
      assert.equal(actor?.apiSpaceId, created.id);
      const list = await server.request({ method: 'GET', url: `/apispaces/${created.id}/accesstokens` });
      assert.deepEqual(list.json().map((t: { id: string }) => t.id), [minted.id]);
    } finally {
      await server.app.close();
      await server.container.close();
    }
  });
});
