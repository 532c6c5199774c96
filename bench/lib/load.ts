import { Agent, request } from 'node:http';

export interface LoadOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  /** JSON-serialised once and sent with every request. */
  body?: unknown;
  /** Concurrent request loops (= keep-alive connections). Default `benchConnections()`. */
  connections?: number;
  durationMs?: number;
  /** Requests in this first period are not counted. Default 500 ms. */
  warmupMs?: number;
}

export interface LoadResult {
  requests: number;
  ok: number;
  errors: number;
  statuses: Record<string, number>;
  /** Counted requests per second. */
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export const benchDurationMs = () => Number(process.env.BENCH_DURATION_MS ?? 3000);
export const benchConnections = () => Number(process.env.BENCH_CONNECTIONS ?? 16);

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : 0);

/** Closed-loop HTTP load: each connection sends its next request as soon as the previous answer ends. */
export async function load(opts: LoadOptions): Promise<LoadResult> {
  return summarise(await loadRaw(opts));
}

/**
 * Runs several targets in alternating slices (A B A B …, `rounds` each, `durationMs` in total per
 * target) so that noise from a shared machine hits all of them alike. Results in input order.
 */
export async function loadInterleaved(targets: LoadOptions[], rounds = 4): Promise<LoadResult[]> {
  const raws: Raw[] = targets.map(() => ({ latencies: [], statuses: {}, errors: 0, durationMs: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, t] of targets.entries()) {
      const slice = await loadRaw({ ...t, durationMs: (t.durationMs ?? benchDurationMs()) / rounds, warmupMs: r === 0 ? t.warmupMs : 100 });
      const acc = raws[i]!;
      acc.latencies.push(...slice.latencies);
      for (const [k, v] of Object.entries(slice.statuses)) acc.statuses[k] = (acc.statuses[k] ?? 0) + v;
      acc.errors += slice.errors;
      acc.durationMs += slice.durationMs;
    }
  }
  return raws.map(summarise);
}

interface Raw {
  latencies: number[];
  statuses: Record<string, number>;
  errors: number;
  durationMs: number;
}

function summarise(raw: Raw): LoadResult {
  const sorted = [...raw.latencies].sort((a, b) => a - b);
  const ok = Object.entries(raw.statuses).filter(([s]) => s.startsWith('2')).reduce((n, [, c]) => n + c, 0);
  return {
    requests: sorted.length,
    ok,
    errors: raw.errors,
    statuses: raw.statuses,
    rate: sorted.length / (raw.durationMs / 1000),
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

async function loadRaw(opts: LoadOptions): Promise<Raw> {
  const connections = opts.connections ?? benchConnections();
  const durationMs = opts.durationMs ?? benchDurationMs();
  const warmupMs = opts.warmupMs ?? 500;
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const url = new URL(opts.url);
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const headers: Record<string, string | number> = { ...opts.headers };
  if (payload) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = payload.length;
  }
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const start = performance.now();
  const countFrom = start + warmupMs;
  const end = countFrom + durationMs;

  const once = () => new Promise<void>((resolve) => {
    const t0 = performance.now();
    const req = request({ agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: opts.method ?? 'GET', headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        const t1 = performance.now();
        if (t0 >= countFrom && t1 <= end) {
          latencies.push(t1 - t0);
          const s = String(res.statusCode);
          statuses[s] = (statuses[s] ?? 0) + 1;
          if (!res.statusCode || res.statusCode >= 300) errors++;
        }
        resolve();
      });
    });
    req.on('error', () => {
      if (t0 >= countFrom) errors++;
      resolve();
    });
    req.end(payload);
  });

  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) await once();
  }));
  agent.destroy();
  return { latencies, statuses, errors, durationMs };
}

/** Prints results side by side; ratios are against the last entry (the baseline). */
export function compare(title: string, results: Array<[label: string, result: LoadResult]>): void {
  const base = results[results.length - 1]![1];
  console.log(`\n${title}`);
  for (const [label, r] of results) {
    const ratio = base.rate ? r.rate / base.rate : 0;
    console.log(
      `  ${label.padEnd(28)} ${r.rate.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(7)} ms` +
      `  errors ${r.errors}${r === base ? '  (baseline)' : `  ratio ${ratio.toFixed(2)}`}`,
    );
  }
}
