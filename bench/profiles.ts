/**
 * Profiles at scale (profiles.md §2, §4, §5): bulk upsert rate, equality and prefix queries over a
 * custom field, export rate. Targets: equality p50 ≤ 5 ms (SQLite), bulk upsert ≥ 20k rows/s,
 * export ≥ 50k profiles/s.
 *
 *   npx tsx bench/profiles.ts                      (SQLite; adds PostgreSQL when TEST_DATABASE_URL is set)
 *   BENCH_PROFILES=20000 npx tsx bench/profiles.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { sql } from 'kysely';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { createContainer } from '../src/container.js';
import { accountsModule } from '../src/modules/accounts/index.js';
import { spacesModule } from '../src/modules/spaces/index.js';
import { profilesModule } from '../src/modules/profiles/index.js';
import { parseProfileQuery } from '../src/modules/profiles/profiles.query.js';
import { createExporter } from '../src/modules/profiles/profiles.export.js';
import type { Actor } from '../src/auth/actor.js';
import { namedCpuMicros } from './lib/processes.js';

const N = Number(process.env.BENCH_PROFILES ?? 100_000);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 200);
const actor: Actor = { kind: 'admin', accountId: 1, actor: 'interactive:admin', role: 'admin' };

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function run(label: string, databaseUrl: string, schema?: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
  const config = loadConfig({ DATABASE_URL: databaseUrl, DATA_DIR: dataDir, LOG_LEVEL: 'silent', TOKEN_SIGNING_KEYS: 'k1:bench-signing-key-0123456789abcdef', INSTALLATION_SECRET: 'bench' });
  const container = await createContainer(config, { log: pino({ level: 'silent' }), schema, modules: [accountsModule, spacesModule, profilesModule] });
  try {
    const { space } = await container.services.apiSpaces.create(actor, 'bench');
    const profiles = container.services.profiles;

    // 1. Bulk upsert, 1000 per call (the API's batch size), one call at a time. The process CPU
    // time is reported too: on the shared development machine wall-clock rates vary ±2× with
    // other developers' load.
    const cpu0 = process.cpuUsage();
    // The local PostgreSQL server's processes share the machine's cores with this one: their CPU
    // per profile tells which side bounds the rate.
    const pg0 = container.platform.handle.dialect === 'postgres' ? namedCpuMicros('postgres') : undefined;
    let t0 = performance.now();
    for (let b = 0; b < N; b += 1000) {
      const items = Array.from({ length: Math.min(1000, N - b) }, (_, j) => {
        const i = b + j;
        return { id: `user${i}`, email: `user${i}@example.com`, name: `User ${i}`, code: `c${i % 1000}`, loyalty: { tier: ['gold', 'silver', 'bronze'][i % 3], points: i % 5000 } };
      });
      await profiles.bulkUpsert(actor, space.id, items);
    }
    const upsertRate = N / ((performance.now() - t0) / 1000);
    const cpu = process.cpuUsage(cpu0);
    const upsertCpuUs = (cpu.user + cpu.system) / N;
    const pg1 = pg0 === undefined ? undefined : namedCpuMicros('postgres');
    const serverCpuUs = pg0 === undefined || pg1 === undefined ? undefined : (pg1 - pg0) / N;
    // Updating existing profiles (merge) goes through the revision-guarded path.
    t0 = performance.now();
    const U = Math.min(N, 20_000);
    for (let b = 0; b < U; b += 1000) {
      await profiles.bulkUpsert(actor, space.id, Array.from({ length: 1000 }, (_, j) => ({ id: `user${b + j}`, seen: true })));
    }
    const updateRate = U / ((performance.now() - t0) / 1000);
    // The same with two clients sending at once (in a space of its own, so the queries below see
    // the same data): what an importer that keeps two requests in flight gets.
    const { space: second } = await container.services.apiSpaces.create(actor, 'bench-2');
    const P = Math.min(N, 40_000);
    const twoClients = async (item: (i: number) => Record<string, unknown>) => {
      let next = 0;
      const t = performance.now();
      await Promise.all([0, 1].map(async () => {
        for (let b = next; b < P; b = next) {
          next += 1000;
          await profiles.bulkUpsert(actor, second.id, Array.from({ length: 1000 }, (_, j) => item(b + j)));
        }
      }));
      return P / ((performance.now() - t) / 1000);
    };
    const parallelCreate = await twoClients((i) => ({ id: `user${i}`, email: `user${i}@example.com`, name: `User ${i}`, code: `c${i % 1000}`, loyalty: { tier: ['gold', 'silver', 'bronze'][i % 3], points: i % 5000 } }));
    const parallelMerge = await twoClients((i) => ({ id: `user${i}`, seen: true }));
    // Steady state: PostgreSQL's autovacuum would have analysed the freshly loaded tables.
    if (container.platform.handle.dialect === 'postgres') await sql`ANALYZE profiles, profile_fields`.execute(container.platform.db);

    // 2. Equality on a custom field (~N/1000 matches, first page + X-Total-Count).
    const timeQuery = async (qs: (i: number) => Record<string, string>) => {
      const times: number[] = [];
      for (let i = 0; i < QUERIES; i++) {
        const q = parseProfileQuery(qs(i));
        const t = performance.now();
        await profiles.query(actor, space.id, q);
        times.push(performance.now() - t);
      }
      return { p50: pct(times, 0.5), p95: pct(times, 0.95) };
    };
    // Baseline: the same page (100 profiles, with X-Total-Count) fetched by primary key, no filter index.
    const base: number[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const ids = Array.from({ length: 100 }, (_, k) => `user${(((i * 7) % 1000) + k * 1000) % N}`);
      const t = performance.now();
      await container.platform.db.selectFrom('profiles').selectAll().where('api_space_id', '=', space.id).where('id', 'in', ids).orderBy('id').execute();
      await container.platform.db.selectFrom('profiles').select((eb) => eb.fn.countAll().as('c')).where('api_space_id', '=', space.id).where('id', 'in', ids).execute();
      base.push(performance.now() - t);
    }
    const baseline = { p50: pct(base, 0.5), p95: pct(base, 0.95) };
    const eq = await timeQuery((i) => ({ code: `c${(i * 7) % 1000}` }));
    const eqNested = await timeQuery((i) => ({ 'loyalty.points': String((i * 13) % 5000) }));
    const prefix = await timeQuery((i) => ({ email: `^USER${(i % 90) + 10}1` }));

    // 3. Export everything as JSON and CSV through the streaming exporter.
    const exporter = createExporter({ ...container.platform, services: container.services });
    const timeExport = async (format: 'json' | 'csv') => {
      const t = performance.now();
      let bytes = 0;
      for await (const chunk of await exporter.stream(space.id, [], { format, fieldSeparator: ',', includeHeaders: true, fields: format === 'csv' ? ['id', 'email', 'name', 'loyalty.tier'] : undefined })) bytes += Buffer.byteLength(chunk as string);
      return { rate: N / ((performance.now() - t) / 1000), mb: bytes / 1e6 };
    };
    const ej = await timeExport('json');
    const ec = await timeExport('csv');
    // Memory stays flat: an untimed JSON export with a full garbage collection every 20 chunks;
    // the largest live heap above the level before it is what the export holds at once.
    const gc = (() => {
      v8.setFlagsFromString('--expose-gc');
      return runInNewContext('gc') as () => void;
    })();
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapGrowth = 0;
    let chunks = 0;
    for await (const _chunk of await exporter.stream(space.id, [], { format: 'json', fieldSeparator: ',', includeHeaders: true })) {
      if (++chunks % 20 === 0) {
        gc();
        heapGrowth = Math.max(heapGrowth, process.memoryUsage().heapUsed - heapBefore);
      }
    }

    const f = (x: number) => x.toFixed(2);
    console.log(`\n## ${label} — ${N.toLocaleString('en')} profiles`);
    console.log(`bulk upsert (create)     ${Math.round(upsertRate).toLocaleString('en')} rows/s   (target ≥ 20,000; this process's CPU ${upsertCpuUs.toFixed(0)} µs/row${serverCpuUs === undefined ? '' : `, the local PostgreSQL server's ${serverCpuUs.toFixed(0)} µs/row`})`);
    console.log(`bulk upsert (merge)      ${Math.round(updateRate).toLocaleString('en')} rows/s`);
    console.log(`bulk upsert, 2 clients   create ${Math.round(parallelCreate).toLocaleString('en')} rows/s, merge ${Math.round(parallelMerge).toLocaleString('en')} rows/s (${P.toLocaleString('en')} profiles in another space)`);
    console.log(`baseline 100 rows by PK  p50 ${f(baseline.p50)} ms  p95 ${f(baseline.p95)} ms`);
    console.log(`equality code=cN         p50 ${f(eq.p50)} ms  p95 ${f(eq.p95)} ms   (${f(eq.p50 / baseline.p50)}× baseline; target p50 ≤ 5 ms on SQLite)`);
    console.log(`equality loyalty.points  p50 ${f(eqNested.p50)} ms  p95 ${f(eqNested.p95)} ms`);
    console.log(`prefix email=^USERnn1    p50 ${f(prefix.p50)} ms  p95 ${f(prefix.p95)} ms`);
    console.log(`export JSON              ${Math.round(ej.rate).toLocaleString('en')} profiles/s (${f(ej.mb)} MB)   (target ≥ 50,000)`);
    console.log(`export CSV (4 columns)   ${Math.round(ec.rate).toLocaleString('en')} profiles/s (${f(ec.mb)} MB)`);
    console.log(`export memory            live heap at most +${f(Math.max(0, heapGrowth) / 1e6)} MB during a JSON export of ${f(ej.mb)} MB (${chunks} chunks; target: flat)`);
  } finally {
    await container.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const sqliteDir = mkdtempSync(join(tmpdir(), 'sb-bench-db-'));
try {
  await run('SQLite', join(sqliteDir, 'bench.db'));
} finally {
  rmSync(sqliteDir, { recursive: true, force: true });
}
if (process.env.TEST_DATABASE_URL) {
  const schema = `sb_bench_${randomBytes(4).toString('hex')}`;
  try {
    await run('PostgreSQL', process.env.TEST_DATABASE_URL, schema);
  } finally {
    const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
}
