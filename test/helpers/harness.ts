import { describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import type { LightMyRequestResponse, InjectOptions } from 'fastify';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createContainer, type Container, type ContainerOptions } from '../../src/container.js';
import { buildApp, type AppInstance } from '../../src/app.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL;

export type DialectName = 'sqlite' | 'postgres';

export interface TestServer {
  app: AppInstance;
  container: Container;
  config: Config;
  dialect: DialectName;
  /** `app.inject` with the admin token unless `headers.authorization` is given (`null` removes it). */
  request(opts: InjectOptions & { token?: string | null }): Promise<LightMyRequestResponse>;
  /** Creates an API space as the admin; returns its id. */
  createSpace(name?: string): Promise<string>;
  /** Mints an access token in a space. */
  createToken(apiSpaceId: string, permissions: string[], profileId?: string): Promise<string>;
  close(): Promise<void>;
}

export interface StartOptions extends ContainerOptions {
  env?: Record<string, string>;
  /** Start workers and module background tasks (default true). */
  start?: boolean;
  /** Reuse an existing database (restart tests): pass the previous server's `location`. */
  location?: DatabaseLocation;
}

export interface DatabaseLocation {
  dialect: DialectName;
  url: string;
  schema?: string;
  dataDir: string;
}

/** A fresh, isolated database: a temp SQLite file, or a new schema in TEST_DATABASE_URL. */
export function freshLocation(dialect: DialectName): DatabaseLocation {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-test-'));
  if (dialect === 'postgres') {
    if (!TEST_DATABASE_URL) throw new Error('TEST_DATABASE_URL is not set');
    return { dialect, url: TEST_DATABASE_URL, schema: `sb_t_${randomBytes(6).toString('hex')}`, dataDir };
  }
  return { dialect, url: join(dataDir, 'test.db'), dataDir };
}

export function testEnv(location: DatabaseLocation, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: location.url,
    DATA_DIR: location.dataDir,
    ADMIN_TOKENS: ADMIN_TOKEN,
    TOKEN_SIGNING_KEYS: 'k1:test-signing-key-0123456789abcdefghijklmnop',
    INSTALLATION_SECRET: 'test-installation-secret',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ALLOW_HTTP_WEBHOOKS: 'true',
    ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true',
    ALLOW_PRIVATE_CHANNEL_TARGETS: 'true',
    PUBLIC_BASE_URL: 'http://localhost:8080',
    // One event loop unless a test asks for the workers' thread (the default is a thread on a
    // machine with more than one core): a thread per test server would cost each test ~1.5 s.
    WORKER_THREAD: 'false',
    ...extra,
  };
}

/** Builds a server on a fresh (or given) database, as `app.inject` target. */
export async function startServer(dialect: DialectName, options: StartOptions = {}): Promise<TestServer & { location: DatabaseLocation }> {
  const location = options.location ?? freshLocation(dialect);
  const config = loadConfig(testEnv(location, options.env));
  const container = await createContainer(config, {
    log: pino({ level: config.logLevel }),
    schema: location.schema,
    busPrefix: `sbt:${randomBytes(4).toString('hex')}:`,
    worker: { idlePollMs: 50, backoffBaseMs: 20, ...options.worker },
    ...options,
  });
  const app = await buildApp(container);
  if (options.start !== false) await container.start();
  const request: TestServer['request'] = ({ token, ...opts }) => {
    const headers = { ...(opts.headers ?? {}) } as Record<string, string>;
    if (token !== null && headers.authorization === undefined) headers.authorization = `Bearer ${token ?? ADMIN_TOKEN}`;
    return app.inject({ ...opts, headers });
  };
  const server: TestServer & { location: DatabaseLocation } = {
    app, container, config, dialect, location, request,
    async createSpace(name = 'test space') {
      const res = await request({ method: 'POST', url: '/apispaces', payload: { name } });
      if (res.statusCode !== 201) throw new Error(`createSpace: ${res.statusCode} ${res.body}`);
      return res.json().id;
    },
    async createToken(apiSpaceId, permissions, profileId = 'test-bot') {
      const res = await request({ method: 'POST', url: `/apispaces/${apiSpaceId}/accesstokens`, payload: { name: 'test', profileId, permissions } });
      if (res.statusCode !== 201) throw new Error(`createToken: ${res.statusCode} ${res.body}`);
      return res.json().token;
    },
    async close() {
      await app.close();
      await container.close();
    },
  };
  return server;
}

/** Removes a test database location (drops the PostgreSQL schema, deletes the temp dir). */
export async function dropLocation(location: DatabaseLocation): Promise<void> {
  if (location.dialect === 'postgres' && location.schema) {
    const client = new pg.Client({ connectionString: location.url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${location.schema}" CASCADE`);
    await client.end();
  }
  rmSync(location.dataDir, { recursive: true, force: true });
}

/**
 * Runs a suite once per database: always on SQLite, and on PostgreSQL when TEST_DATABASE_URL is
 * set (otherwise the PostgreSQL suite is reported as skipped).
 */
export function eachDatabase(name: string, body: (dialect: DialectName) => void): void {
  describe(`${name} [sqlite]`, () => body('sqlite'));
  describe(`${name} [postgres]`, { skip: TEST_DATABASE_URL ? false : 'TEST_DATABASE_URL not set' }, () => {
    if (TEST_DATABASE_URL) body('postgres');
  });
}

/** Server per suite: `const s = useServer(dialect)` inside an eachDatabase body; use `s()` in tests. */
export function useServer(dialect: DialectName, options: StartOptions = {}): () => TestServer {
  let server: (TestServer & { location: DatabaseLocation }) | undefined;
  // node:test hooks registered in the enclosing describe.
  const { before, after } = testHooks;
  before(async () => {
    try {
      server = await startServer(dialect, options);
    } catch (err) {
      // The runner reports a failed hook only at the end of its suite's block; say it here too.
      console.error(`# ${dialect} test server did not start: ${(err as Error).stack ?? String(err)}`);
      throw err;
    }
  });
  after(async () => {
    if (!server) return;
    await server.close();
    await dropLocation(server.location);
  });
  return () => {
    if (!server) throw new Error('server not started');
    return server;
  };
}

import * as nodeTest from 'node:test';
const testHooks = { before: nodeTest.before, after: nodeTest.after };
