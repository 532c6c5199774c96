import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/config.js';

it('WORKER_THREAD: auto (the default) puts the workers on a thread when the machine has more than one core', () => {
  const env = { DATABASE_URL: ':memory:' };
  assert.equal(loadConfig(env, 1).workerThread, false);
  assert.equal(loadConfig(env, 2).workerThread, true);
  assert.equal(loadConfig({ ...env, WORKER_THREAD: 'auto' }, 4).workerThread, true);
  assert.equal(loadConfig({ ...env, WORKER_THREAD: 'false' }, 4).workerThread, false);
  assert.equal(loadConfig({ ...env, WORKER_THREAD: 'true' }, 1).workerThread, true);
  assert.throws(() => loadConfig({ ...env, WORKER_THREAD: 'sometimes' }, 2), ConfigError);
});

it('CONTENT_TYPES: a comma-separated list of MIME types or type/* groups, refused otherwise', () => {
  const env = { DATABASE_URL: ':memory:' };
  assert.equal(loadConfig(env).contentTypes, undefined);
  assert.deepEqual(loadConfig({ ...env, CONTENT_TYPES: ' Image/*, application/pdf ,' }).contentTypes, ['image/*', 'application/pdf']);
  for (const bad of ['pdf', '*/*', 'image/', 'text/plain; charset=utf-8']) assert.throws(() => loadConfig({ ...env, CONTENT_TYPES: bad }), ConfigError, bad);
});

it('APNS_URL, FCM_URL, GRAPH_API_URL, X_API_URL, RCS_API_URL: http(s) origins, refused otherwise', () => {
  const env = { DATABASE_URL: ':memory:' };
  assert.equal(loadConfig(env).apnsUrl, undefined);
  assert.equal(loadConfig({ ...env, APNS_URL: 'http://127.0.0.1:8443/', FCM_URL: 'https://push-relay.example.com/base' }).apnsUrl, 'http://127.0.0.1:8443');
  assert.equal(loadConfig({ ...env, FCM_URL: 'https://push-relay.example.com/base' }).fcmUrl, 'https://push-relay.example.com');
  assert.equal(loadConfig({ ...env, GRAPH_API_URL: 'http://127.0.0.1:9000', X_API_URL: 'https://x-relay.example.com/' }).graphApiUrl, 'http://127.0.0.1:9000');
  assert.equal(loadConfig({ ...env, X_API_URL: 'https://x-relay.example.com/' }).xApiUrl, 'https://x-relay.example.com');
  assert.equal(loadConfig({ ...env, RCS_API_URL: 'http://127.0.0.1:9100/v1' }).rcsApiUrl, 'http://127.0.0.1:9100');
  for (const name of ['APNS_URL', 'FCM_URL', 'GRAPH_API_URL', 'X_API_URL', 'RCS_API_URL']) {
    for (const bad of ['relay', 'ftp://relay.example.com']) assert.throws(() => loadConfig({ ...env, [name]: bad }), ConfigError, `${name}=${bad}`);
  }
});
