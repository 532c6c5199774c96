/**
 * One API benchmark (`npx tsx bench/messages.ts`). In the same run:
 *  1. POST /messages with an access token to a custom channel whose receiver answers at once,
 *     versus a bare Fastify route in a separate process: rates, ratio, p99. Targets: ratio ≥ 0.25,
 *     p99 ≤ 10 ms. Measured three times on SQLite: embedded (one process accepts and dispatches on
 *     one event loop, WORKER_THREAD=false), worker thread (WORKER_THREAD=true: dispatch on a worker
 *     thread of the same process; the default on a machine with more than one core) and
 *     split (an API process with WORKERS_ENABLED=false plus a worker process on the same database,
 *     ARCHITECTURE.md "Processes"), and the same three on PostgreSQL when TEST_DATABASE_URL is set;
 *     every run dispatches to the receiver (a process of its own) while the load runs.
 *     Then the same send in an open loop at 0.25× the bare route's rate, sent by a lean client
 *     (bench/lib/raw-http.ts) instead of `node:http`'s: p99 from each request's scheduled time, whether dispatch delivers every message of that run, and where the cores went
 *     meanwhile (the server's threads per request, and the server, receiver and load generator in
 *     cores: at that rate the two cores of the machine this was written on were nearly full).
 *     Last, the API process alone with no worker anywhere ("accept only"): the accept path's own
 *     share, to tell which side limits the runs that dispatch.
 *  2. POST /messages/batch with 1,000 items on SQLite (workers off: the accepted rate), and on
 *     PostgreSQL when TEST_DATABASE_URL is set. Target ≥ 100k messages/s accepted on SQLite.
 * The closed-loop runs alternate with the bare route's in BENCH_ROUNDS slices (default 3) that add
 * up to BENCH_SECONDS per side (default 3), after BENCH_WARMUP seconds of sends (default 3);
 * BENCH_CONCURRENCY (default 32) sets the requests in flight; BENCH_MODES picks runs by label.
 */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { spawnServer } from '../test/fixtures/spawn.js';
import { processCpuMicros as cpuMicros, stopProcess, threadCpuMicros } from './lib/processes.js';
import { RawHttpClient } from './lib/raw-http.js';
import { ADMIN_TOKEN, dropLocation, freshLocation, testEnv, type DatabaseLocation } from '../test/helpers/harness.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
/** BENCH_MODES, a regular expression: only the runs whose label matches (e.g. '^split, SQLite|batch'). */
const MODES = process.env.BENCH_MODES ? new RegExp(process.env.BENCH_MODES) : undefined;
const selected = (label: string) => !MODES || MODES.test(label);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/**
 * The open loop's connections: a fixed set, opened before it runs, as a fixed-rate load generator
 * such as wrk2 holds them, through a lean client (`bench/lib/raw-http.ts`: `node:http`'s client
 * took a third of a core at the open loop's rate, on the same two cores as the server). A request
 * that finds them all busy waits for one, and that wait counts in its latency.
 */
const OPEN_CONNECTIONS = 64;

function request(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { ...headers, ...(body ? { 'content-length': Buffer.byteLength(body) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `run` and returns its result with the CPU µs per request each of `pids` used meanwhile. */
async function withCpu<T extends { n: number }>(pids: Array<number | undefined>, run: () => Promise<T>): Promise<T & { cpu: Array<number | undefined> }> {
  const before = pids.map(cpuMicros);
  const r = await run();
  const cpu = pids.map((pid, i) => {
    const [a, b] = [before[i], cpuMicros(pid)];
    return a === undefined || b === undefined || !r.n ? undefined : (b - a) / r.n;
  });
  return { ...r, cpu };
}
const µs = (v: number | undefined) => (v === undefined ? '?' : `${v.toFixed(0)} µs`);

/**
 * CPU used from now until the returned function is called, as text: per request for each thread
 * of the first process (its main thread, its busiest other thread — the workers' thread when
 * there is one — and the rest: V8's helpers, the checkpointer) and for the second process if any,
 * and in cores for the whole server, the receiver (third) and this load generator.
 */
function cpuUsage([server, second, receiver]: Array<number | undefined>) {
  const [threads0, second0, receiver0, self0] = [threadCpuMicros(server), cpuMicros(second), cpuMicros(receiver), process.cpuUsage()];
  return (requests: number, seconds: number): string => {
    const threads1 = threadCpuMicros(server);
    if (!threads0 || !threads1) return 'not measured (no /proc)';
    const per = [...threads1].map(([tid, v]) => ({ tid, v: (v - (threads0.get(tid) ?? 0)) / requests }));
    const main = per.find((t) => t.tid === String(server))?.v ?? 0;
    const others = per.filter((t) => t.tid !== String(server)).sort((a, b) => b.v - a.v);
    const [busiest, rest] = [others[0]?.v ?? 0, others.slice(1).reduce((a, t) => a + t.v, 0)];
    const secondPer = second0 === undefined ? undefined : (cpuMicros(second)! - second0) / requests;
    const self = process.cpuUsage(self0);
    const cores = (perRequest: number) => ((perRequest * requests) / 1e6 / seconds).toFixed(2);
    const serverPer = main + busiest + rest + (secondPer ?? 0);
    return `main thread ${µs(main)}, busiest other thread ${µs(busiest)}, other threads ${µs(rest)}${secondPer === undefined ? '' : `, worker process ${µs(secondPer)}`} per request; `
      + `cores: Switchboard ${cores(serverPer)}, receiver ${receiver0 === undefined ? '?' : cores((cpuMicros(receiver)! - receiver0) / requests)}, load generator ${cores((self.user + self.system) / requests)}`;
  };
}

/** Closed-loop load: `concurrency` workers for `seconds`; returns rate and latency percentiles. */
async function load(seconds: number, concurrency: number, one: () => Promise<boolean>) {
  const lat: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const t = performance.now();
      const ok = await one().catch(() => false);
      lat.push(performance.now() - t);
      if (!ok) errors++;
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  return summary(lat, errors, elapsed);
}

type LoadResult = ReturnType<typeof summary>;
function summary(lat: number[], errors: number, elapsed: number) {
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0;
  return { rate: lat.length / elapsed, p50: pct(0.5), p99: pct(0.99), errors, n: lat.length, lat, elapsed };
}

/** Several runs as one: requests and time added up, latencies pooled, CPU per request weighted by requests. */
function pooled(runs: Array<LoadResult & { cpu: Array<number | undefined> }>) {
  const all = summary(runs.flatMap((r) => r.lat), runs.reduce((a, r) => a + r.errors, 0), runs.reduce((a, r) => a + r.elapsed, 0));
  const cpu = runs[0]!.cpu.map((_, i) => (runs.some((r) => r.cpu[i] === undefined) ? undefined : runs.reduce((a, r) => a + r.cpu[i]! * r.n, 0) / all.n));
  return { ...all, cpu };
}

/**
 * Open-loop load at a fixed arrival rate (`rate` requests/s for `seconds`): each request leaves at
 * its scheduled time whether or not earlier ones have answered, and its latency counts from that
 * time, so a stall shows up in the percentiles instead of slowing the sender (coordinated
 * omission). `cap` bounds the requests in flight; one not sent on time because of it counts as late.
 */
async function openLoad(rate: number, seconds: number, one: () => Promise<boolean>, cap = 512) {
  const lat: number[] = [];
  let errors = 0;
  let inFlight = 0;
  // Woken when a request finishes while the cap holds the sender back. (It used to poll with
  // setImmediate: once the server fell behind, that loop took most of a core from the server it
  // was measuring, and the run collapsed.)
  let freed: (() => void) | undefined;
  const total = Math.floor(rate * seconds);
  const start = performance.now();
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    while (inFlight >= cap) await new Promise<void>((r) => { freed = r; });
    inFlight++;
    pending.push(one().catch(() => false).then((ok) => {
      inFlight--;
      lat.push(performance.now() - due);
      if (!ok) errors++;
      const f = freed;
      freed = undefined;
      f?.();
    }));
  }
  await Promise.all(pending);
  return summary(lat, errors, (performance.now() - start) / 1000);
}

const BARE = `
import Fastify from 'fastify';
const app = Fastify();
app.post('/apispaces/:id/messages', async (req, reply) => reply.code(201).send({ messageId: 'x', status: 'processing', to: req.body.to }));
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write('LISTENING ' + app.server.address().port + '\\n');
`;

/**
 * The channel's receiver, in a process of its own like the bare route: it answers every POST at
 * once and counts them (GET /count), so the load generator's event loop measures only its own
 * requests instead of also serving the deliveries.
 */
const RECEIVER = `
import http from 'node:http';
let received = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method === 'GET') return res.writeHead(200).end(String(received));
    received++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write('LISTENING ' + server.address().port + '\\n'));
`;

function spawnChild(source: string, name: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.on('data', (d: Buffer) => {
      const m = /LISTENING (\d+)/.exec(d.toString());
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (c) => reject(new Error(`${name} exited ${c}`)));
  });
}

/**
 * Waits until `done()` holds (a number: until it stops changing for 300 ms); resolves to the
 * milliseconds waited, or undefined after `limitMs`.
 */
async function drain(done: () => Promise<boolean | number>, limitMs: number): Promise<number | undefined> {
  const start = performance.now();
  let last = await done();
  let still = performance.now();
  while (performance.now() - start < limitMs) {
    const v = await done();
    if (v === true) return performance.now() - start;
    if (typeof v === 'number') {
      if (v !== last) [last, still] = [v, performance.now()];
      else if (performance.now() - still >= 300) return performance.now() - start;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

async function setup(port: number, receiverUrl: string) {
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  const space = JSON.parse((await request(port, 'POST', '/apispaces', admin, JSON.stringify({ name: 'bench' }))).text).id as string;
  const token = JSON.parse((await request(port, 'POST', `/apispaces/${space}/accesstokens`, admin, JSON.stringify({ name: 'bench', profileId: 'bench', permissions: ['msg:any:s', 'msg:r'] }))).text).token as string;
  const put = await request(port, 'PUT', `/apispaces/${space}/channels/custom_bench`, admin, JSON.stringify({
    enabled: true, provider: 'http', settings: { url: receiverUrl, method: 'POST', contentType: 'application/json', userIdProperty: 'crmId', bodyTemplate: '{"ref": "{{messageId}}", "text": "{{body}}"}' },
  }));
  if (put.status >= 300) throw new Error(`channel: ${put.status} ${put.text}`);
  return { space, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } };
}

async function batchRun(location: DatabaseLocation, label: string, receiverUrl: string) {
  const env = testEnv(location, { WORKERS_ENABLED: 'false', LOG_LEVEL: 'silent', ...(location.schema ? { TEST_DB_SCHEMA: location.schema } : {}) });
  const server = await spawnServer(env);
  try {
    const { space, headers } = await setup(server.port, receiverUrl);
    const items = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ to: { crmId: `u${i}` }, rules: ['custom_bench'], body: `Hello number ${i}`, metadata: { i } })));
    const one = async () => (await request(server.port, 'POST', `/apispaces/${space}/messages/batch`, headers, items)).status === 202;
    await load(0.5, 2, one);
    const r = await load(SECONDS, 2, one);
    console.log(`batch of 1,000 (${label}, accepted, workers off): ${(r.rate * 1000).toFixed(0)} msgs/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms per batch, errors ${r.errors}`);
    return r.rate * 1000;
  } finally {
    await stopProcess(server.child);
  }
}

async function main() {
  const receiver = await spawnChild(RECEIVER, 'receiver');
  const receivedNow = async () => Number((await request(receiver.port, 'GET', '/count', {})).text);
  const receiverUrl = `http://127.0.0.1:${receiver.port}/in`;

  const bare = await spawnChild(BARE, 'bare server');
  const bb = (space: string, headers: Record<string, string>, body: string) => () => request(bare.port, 'POST', `/apispaces/${space}/messages`, headers, body).then((r) => r.status === 201);
  const locations: DatabaseLocation[] = [];
  try {
    // Workers: `embedded` in the API process, `split` in a worker process beside it, `none` (the API
    // process alone: what accepting costs when dispatch runs elsewhere; it shows which side limits
    // the other runs and is not the target's condition, which asks for dispatch keeping up).
    type Workers = 'embedded' | 'thread' | 'split' | 'none';
    const runs: Array<{ mode: string; db: 'sqlite' | 'postgres'; workers: Workers }> = [
      { mode: 'embedded, SQLite', db: 'sqlite', workers: 'embedded' },
      { mode: 'worker thread, SQLite', db: 'sqlite', workers: 'thread' },
      { mode: 'split, SQLite', db: 'sqlite', workers: 'split' },
      ...(process.env.TEST_DATABASE_URL ? [
        { mode: 'embedded, PostgreSQL', db: 'postgres' as const, workers: 'embedded' as const },
        { mode: 'worker thread, PostgreSQL', db: 'postgres' as const, workers: 'thread' as const },
        { mode: 'split, PostgreSQL', db: 'postgres' as const, workers: 'split' as const },
      ] : []),
      { mode: 'accept only, SQLite', db: 'sqlite', workers: 'none' },
    ];
    for (const { mode, db, workers } of runs.filter((r) => selected(r.mode))) {
      const acceptOnly = workers === 'none';
      const location = freshLocation(db);
      locations.push(location);
      const env = testEnv(location, { LOG_LEVEL: 'silent', ...(location.schema ? { TEST_DB_SCHEMA: location.schema } : {}) });
      const api = await spawnServer(workers === 'embedded' ? env : workers === 'thread' ? { ...env, WORKER_THREAD: 'true' } : { ...env, WORKERS_ENABLED: 'false' });
      const worker = workers === 'split' ? await spawnServer(env) : undefined;
      try {
        const { space, headers } = await setup(api.port, receiverUrl);
        const body = JSON.stringify({ to: { crmId: 'C-1' }, rules: ['custom_bench'], body: 'Hello {{profile.crmId}}', metadata: { orderId: 'SO-1' } });
        const sb = () => request(api.port, 'POST', `/apispaces/${space}/messages`, headers, body).then((r) => r.status === 201);
        const before = await receivedNow();
        // Warm-up: a fresh server process runs its first seconds unoptimised (the JIT compiles hot
        // code as it goes), which slowed the first of three slices by a third to a half.
        await load(WARMUP, CONCURRENCY, sb);
        await load(0.5, CONCURRENCY, bb(space, headers, body));
        // The bare route and Switchboard take turns in ROUNDS slices, so a change of the shared
        // machine's speed during the run weighs on both alike; the ratio is of the summed rates.
        const bares: Array<LoadResult & { cpu: Array<number | undefined> }> = [];
        const sbs: typeof bares = [];
        const t0 = await receivedNow();
        let sbSeconds = 0;
        for (let round = 0; round < ROUNDS; round++) {
          bares.push(await withCpu([bare.child.pid], () => load(SECONDS / ROUNDS, CONCURRENCY, bb(space, headers, body))));
          sbs.push(await withCpu([api.child.pid, worker?.child.pid], () => load(SECONDS / ROUNDS, CONCURRENCY, sb)));
          sbSeconds += sbs[round]!.elapsed;
        }
        const received = await receivedNow();
        const [b, s] = [pooled(bares), pooled(sbs)];
        const slices = sbs.map((x, i) => (x.rate / bares[i]!.rate).toFixed(2)).join(', ');
        console.log(`[${mode}] bare Fastify:   ${b.rate.toFixed(0)} req/s, p50 ${b.p50.toFixed(2)} ms, p99 ${b.p99.toFixed(2)} ms`);
        console.log(`[${mode}] POST /messages: ${s.rate.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, errors ${s.errors} (concurrency ${CONCURRENCY})`);
        // The worker's share is what it used while the load ran (it may still be catching up).
        console.log(`[${mode}] server CPU per request: bare ${µs(b.cpu[0])}; Switchboard ${{ none: `API ${µs(s.cpu[0])} (no worker)`, split: `API ${µs(s.cpu[0])} + worker ${µs(s.cpu[1])}`, embedded: `${µs(s.cpu[0])} (accepting and dispatching)`, thread: `${µs(s.cpu[0])} (accepting on the main thread, dispatching on the workers' thread)` }[workers]}`);
        if (acceptOnly) console.log(`[${mode}] ratio ${(s.rate / b.rate).toFixed(2)} (slices ${slices}) with no dispatch running (not the target's condition)`);
        else console.log(`[${mode}] ratio ${(s.rate / b.rate).toFixed(2)} (slices ${slices}; target ≥ 0.25), p99 ${s.p99 <= 10 ? 'within' : 'over'} 10 ms; dispatched to the receiver meanwhile: ${((received - t0) / sbSeconds).toFixed(0)}/s of Switchboard's time (${received - before} in all so far)`);
        // The latency target at the target rate: closed-loop p99 at saturation is concurrency ÷
        // throughput (Little's law), so it is also measured with requests arriving at 0.25× the
        // bare route's rate. Dispatch keeps up when the receiver has every message of the run
        // shortly after the last request.
        const target = Math.round(b.rate * 0.25);
        const client = await RawHttpClient.open(api.port, OPEN_CONNECTIONS, 'POST', `/apispaces/${space}/messages`, headers, body);
        const open = () => client.send().then((status) => status === 201);
        // The load generator's open-loop code runs warm too: its first pass, cold, took twice the
        // CPU of later ones (0.7 of a core instead of 0.35), and on two cores the server then fell
        // behind for the whole run.
        await drain(receivedNow, 5_000);
        await openLoad(target, 1, open);
        await drain(receivedNow, 5_000);
        const r0 = await receivedNow();
        const usage = cpuUsage([api.child.pid, worker?.child.pid, receiver.child.pid]);
        const o = await openLoad(target, SECONDS, open);
        const used = usage(o.n, o.elapsed);
        const lag = acceptOnly ? undefined : await drain(async () => (await receivedNow()) - r0 >= o.n - o.errors, 10_000);
        const dispatch = acceptOnly ? 'no dispatch in this mode' : `dispatch ${lag === undefined ? `behind: ${(await receivedNow()) - r0} of ${o.n} delivered 10 s after the run` : `kept up: all ${o.n} delivered ${lag.toFixed(0)} ms after the last answer`}`;
        console.log(`[${mode}] open loop at ${target} req/s (0.25× bare): ${o.rate.toFixed(0)} req/s answered, p50 ${o.p50.toFixed(2)} ms, p99 ${o.p99.toFixed(2)} ms (target ≤ 10), errors ${o.errors}; ${dispatch}`);
        console.log(`[${mode}] open loop, where the cores went: ${used}`);
        client.close();
      } finally {
        // Gone before their database is dropped at the end (a schema dropped under a live
        // connection could stay behind).
        await Promise.all([stopProcess(api.child), worker && stopProcess(worker.child)]);
      }
    }
  } finally {
    await stopProcess(bare.child);
  }
  const cleanup = async () => { for (const l of locations) await dropLocation(l).catch(() => {}); };
  if (selected('batch, SQLite')) await batchRun(freshLocation('sqlite'), 'SQLite', receiverUrl);
  if (process.env.TEST_DATABASE_URL && selected('batch, PostgreSQL')) {
    const pg = freshLocation('postgres');
    await batchRun(pg, 'PostgreSQL', receiverUrl);
    await dropLocation(pg);
  }
  await stopProcess(receiver.child);
  agent.destroy();
  await cleanup();
}

await main();
process.exit(0);
