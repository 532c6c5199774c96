import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  json<T = any>(): T;
}

/** One request (set-up steps, not load). */
export async function http(method: string, url: string, opts: { headers?: Record<string, string>; body?: unknown } = {}): Promise<HttpResult> {
  const res = await fetch(url, {
    method,
    headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

const CLOCK_TICKS = 100;

/** A process's command name and CPU time (user + system, µs) so far, from /proc/<pid>/stat (Linux). */
function procStat(pid: number | string): { name: string; cpu: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return { name: stat.slice(stat.indexOf('(') + 1, close), cpu: ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS };
  } catch {
    return undefined; // not Linux, or the process has ended
  }
}

/**
 * CPU time (user + system, µs) a process has used so far, from /proc (Linux); undefined elsewhere.
 * Throughput on a small shared machine swings from run to run; CPU per request moves much less.
 */
export function processCpuMicros(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : procStat(pid)?.cpu;
}

/**
 * CPU time (µs) so far of each thread of a process, by thread id (the main thread's id is the
 * process id); undefined where /proc is missing.
 */
export function threadCpuMicros(pid: number | undefined): Map<string, number> | undefined {
  if (pid === undefined) return undefined;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const out = new Map<string, number>();
  for (const tid of tids) {
    const s = procStat(`${pid}/task/${tid}`);
    if (s) out.set(tid, s.cpu);
  }
  return out;
}

/** The CPU time (µs) of every process with this command name (e.g. `postgres`); undefined when there is none. */
export function namedCpuMicros(name: string): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  let total: number | undefined;
  for (const pid of pids) {
    const s = procStat(pid);
    if (s?.name === name) total = (total ?? 0) + s.cpu;
  }
  return total;
}

/** SIGTERM (SIGKILL after 5 s), resolved once the process has exited. */
export async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

function stopper(proc: ChildProcess, cleanup: () => void = () => {}) {
  return async () => {
    await stopProcess(proc);
    cleanup();
  };
}

async function waitHealthy(url: string, proc: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${url} did not become healthy`);
}

export interface SwitchboardProcess {
  url: string;
  port: number;
  adminToken: string;
  dataDir: string;
  env: Record<string, string>;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export interface SwitchboardOptions {
  /** Default: a fresh SQLite file in a temp dir. */
  databaseUrl?: string;
  env?: Record<string, string>;
  /** Extra node flags, e.g. `['--cpu-prof', '--cpu-prof-dir=/tmp/prof']`. */
  nodeArgs?: string[];
}

/** Spawns a Switchboard server (`src/main.ts start`) and waits until it answers /healthz. */
export async function startSwitchboard(opts: SwitchboardOptions = {}): Promise<SwitchboardProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
  const adminToken = 'bench-admin-token-0123456789';
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: opts.databaseUrl ?? join(dataDir, 'bench.db'),
    DATA_DIR: dataDir,
    ADMIN_TOKENS: adminToken,
    TOKEN_SIGNING_KEYS: 'k1:bench-signing-key-0123456789abcdefghijkl',
    INSTALLATION_SECRET: 'bench-installation-secret',
    LOG_LEVEL: 'warn',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    ...opts.env,
  };
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', join(ROOT, 'src/main.ts'), 'start'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(proc, () => rmSync(dataDir, { recursive: true, force: true }));
  try {
    await waitHealthy(`${url}/healthz`, proc);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, port, adminToken, dataDir, env, proc, stop };
}

export interface BaselineRoute {
  method: string;
  /** Fastify path syntax, e.g. `/apispaces/:id`. */
  path: string;
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Spawns a bare Fastify server answering the given routes with fixed JSON bodies. */
export async function startBaseline(routes: BaselineRoute[]): Promise<{ url: string; proc: ChildProcess; stop(): Promise<void> }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./baseline-child.ts', import.meta.url))], {
    cwd: ROOT, env: { ...process.env, BASELINE_ROUTES: JSON.stringify(routes) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve(Number(line.trim())));
    proc.once('exit', (code) => reject(new Error(`baseline exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, proc, stop: stopper(proc) };
}
