/**
 * Shared benchmark library. Every benchmark compares against a bare baseline in the same run.
 *
 *   import { startSwitchboard, startBaseline, load, compare, http } from './lib/index.js';
 *
 * - `startSwitchboard(opts?)` → `SwitchboardProcess`: spawns `src/main.ts start` as a child process
 *   on a free loopback port with a fresh SQLite database (or `opts.databaseUrl` + `opts.schema`),
 *   waits for /healthz. `{ url, port, adminToken, env, dataDir, stop() }`. `opts.env` adds settings, `opts.nodeArgs` node flags (profiling).
 * - `startBaseline(routes)` → `{ url, stop() }`: a bare Fastify child process answering each
 *   `{ method, path, status?, body, headers? }` (Fastify path syntax) with that JSON body.
 * - `load(opts)` → `LoadResult`: HTTP load through a keep-alive agent with `connections` concurrent
 *   request loops for `durationMs` after `warmupMs`. Counts 2xx as ok; anything else (or a network
 *   error) as an error. `{ requests, ok, errors, statuses, rate, p50, p90, p99, max }` (ms, req/s).
 * - `loadInterleaved(optsList, rounds = 4)` → `LoadResult[]`: the targets in alternating slices
 *   (A B A B …) so a busy machine's noise hits them alike; use it for "X vs baseline" numbers.
 * - `compare(title, [label, result][])`: prints one line per result and each rate's ratio to the
 *   last entry (the baseline).
 * - `http(method, url, { headers, body })` → `{ status, headers, json(), text }`: one request (set-up).
 * - `freePort()`, `benchDurationMs()` (BENCH_DURATION_MS, default 3000), `benchConnections()`
 *   (BENCH_CONNECTIONS, default 16).
 *
 * A benchmark file exports `run(args: string[]): Promise<void>`; `npm run bench [filter]` runs every
 * bench/*.ts whose name contains the filter (files without `run` are started as child processes).
 */
export * from './processes.js';
export * from './load.js';
