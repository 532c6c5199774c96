/**
 * `WORKER_THREAD`: the durable job workers (dispatch, webhooks, imports, SMPP binds, …) run on a
 * worker thread with a container and a database connection of its own, as a worker process beside
 * an API process would (ARCHITECTURE.md "Processes"), while the main thread serves HTTP and
 * websockets with WORKERS_ENABLED off. The two event loops use two cores.
 *
 * What crosses between the threads: the event bus (a `BroadcastChannel`, or Redis when
 * configured), a wake-up when the main thread commits jobs, jobs the main thread committed leased
 * to the thread's worker (with their messages as written: `LocalJobs`, src/delivery/local-jobs.ts)
 * and the worker's free slots in shared memory, the thread's metrics for `/metrics`, stop, and on
 * SQLite a shared counter of write-lock releases (a thread waiting for the lock wakes when the
 * other commits, storage/uow.ts). Everything else goes through the database, as between
 * processes. A thread that fails takes the process down (exit code 1) so that its supervisor
 * restarts it; no job is lost, they are rows.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import pino, { type Logger } from 'pino';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from './config/config.js';
import type { ContainerOptions } from './container.js';
import { lockReleasesBuffer, shareLockReleases } from './storage/uow.js';
import { sharedSlots, slotsBuffer } from './delivery/worker.js';
import type { JobTaker } from './delivery/local-jobs.js';
import type { Job } from './delivery/queue.js';

type Metrics = Array<MetricObjectWithValues<MetricValue<string>>>;

/** What the thread is started with: plain data only (structured clone). */
interface ThreadData {
  switchboardWorkerThread: true;
  config: Config;
  /** The `BroadcastChannel` joining the two buses (absent with Redis). */
  busName?: string;
  /**
   * The container options that can cross: modules go by name (the thread builds the default
   * definitions of those modules), and a test's clock or ids stay on the main thread.
   */
  options: Pick<ContainerOptions, 'schema' | 'busPrefix' | 'worker'> & { modules?: string[] };
  /** Shared with the main thread: each side's SQLite lock releases (storage/uow.ts). */
  lockReleases: SharedArrayBuffer;
}

type ToThread = { type: 'wake' } | { type: 'adopt'; job: Job; context: unknown } | { type: 'metrics'; id: number } | { type: 'stop' };
type FromThread = { type: 'ready'; owner: string; leaseMs: number; kinds: string[] } | { type: 'metrics'; id: number; metrics: Metrics } | { type: 'stopped' } | { type: 'failed'; message: string };

export interface WorkerThread {
  /** The main thread committed jobs: look now rather than at the next poll. */
  wake(): void;
  /**
   * The thread's worker as the main thread's `LocalJobs` sees it: its free slots are reserved in
   * shared memory, and a job committed leased to it goes over with its context right after commit
   * (as to a worker of the same thread: no claim, no read back).
   */
  taker: JobTaker;
  metrics(): Promise<Metrics>;
  stop(): Promise<void>;
}

/** The bus name for a container whose workers run on a thread, or undefined when Redis joins them. */
export const threadBusName = (config: Config): string | undefined => (config.redisUrl ? undefined : `switchboard:${randomUUID()}`);

/**
 * The thread runs this module. Run from TypeScript (`tsx`), it first loads tsx's loader itself:
 * on Node 20 a worker thread does not inherit the main thread's module hooks.
 */
function threadEntry(): { source: string | URL; eval: boolean } {
  const self = new URL(import.meta.url);
  if (!self.pathname.endsWith('.ts')) return { source: self, eval: false };
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return { source: `import(${api}).then(({ register }) => { register(); return import(${JSON.stringify(self.href)}); })`, eval: true };
}

/** Starts the workers' thread; resolves once its container has started. */
export function startWorkerThread(config: Config, busName: string | undefined, options: ThreadData['options'], log: Logger): Promise<WorkerThread> {
  const lockReleases = lockReleasesBuffer();
  shareLockReleases(lockReleases);
  // The thread's worker counts its free slots here, where the main thread can reserve them.
  const slots = slotsBuffer(config.workerConcurrency);
  const data: ThreadData = { switchboardWorkerThread: true, config: { ...config, workersEnabled: true, workerThread: false }, busName, options: { ...options, worker: { ...options.worker, slots } }, lockReleases };
  const entry = threadEntry();
  const thread = new Worker(entry.source, { eval: entry.eval, workerData: data });
  const asked = new Map<number, (m: Metrics) => void>();
  let next = 0;
  let stopping: Promise<void> | undefined;
  return new Promise((resolve, reject) => {
    let started = false;
    const fail = (err: Error) => {
      if (!started) return reject(err);
      if (stopping) return;
      log.fatal({ err }, 'the workers\' thread failed; exiting so that the process is restarted');
      process.exit(1);
    };
    thread.on('error', fail);
    thread.on('exit', (code) => fail(new Error(`the workers' thread exited (${code})`)));
    thread.on('message', (m: FromThread) => {
      if (m.type === 'failed') fail(new Error(m.message));
      else if (m.type === 'metrics') {
        asked.get(m.id)?.(m.metrics);
        asked.delete(m.id);
      } else if (m.type === 'ready') {
        started = true;
        const wake = () => thread.postMessage({ type: 'wake' } satisfies ToThread);
        const free = sharedSlots(slots);
        const kinds = new Set(m.kinds);
        resolve({
          wake,
          taker: {
            owner: m.owner,
            leaseMs: m.leaseMs,
            handles: (kind) => kinds.has(kind),
            reserve: (n) => free.take(n),
            // Slots given back may let the thread claim queued jobs it left for lack of room.
            release: (n) => {
              free.give(n);
              wake();
            },
            adopt: (job, context) => {
              try {
                thread.postMessage({ type: 'adopt', job, context } satisfies ToThread);
              } catch (err) {
                // Not cloneable: the job stays leased until its lease expires, then runs as a queued one.
                free.give(1);
                log.error({ err, jobId: job.id, kind: job.kind }, 'could not hand a job to the workers\' thread; it runs when its lease expires');
              }
            },
          },
          metrics: () => new Promise((done) => {
            const id = next++;
            asked.set(id, done);
            thread.postMessage({ type: 'metrics', id } satisfies ToThread);
          }),
          // The thread closes its container (in-flight jobs finish or are handed back), then ends.
          stop: () => (stopping ??= new Promise<void>((done) => {
            const end = () => void thread.terminate().then(() => done(), () => done());
            thread.on('message', (m: FromThread) => m.type === 'stopped' && end());
            thread.once('exit', () => done());
            thread.postMessage({ type: 'stop' } satisfies ToThread);
          })),
        });
      }
    });
  });
}

/**
 * `WORKER_THREAD_NICE`: this thread's nice value (Linux, where `setpriority` on a thread id applies
 * to that thread alone). On two cores the API thread, the workers' thread, V8's helpers, and often
 * a load balancer or the database share the machine; at equal priority a request waits whenever
 * the scheduler gives its core to dispatch. Lower, dispatch takes the time the API leaves, and a
 * backlog it cannot take at once waits in the job table (ADR 0006, "fifth session").
 */
function lowerPriority(nice: number, log: Logger): void {
  if (nice === 0) return;
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), nice);
  } catch (err) {
    log.info({ err }, 'the workers\' thread keeps its scheduling priority (WORKER_THREAD_NICE needs Linux)');
  }
}

async function runThread(data: ThreadData): Promise<void> {
  const port = parentPort!;
  const post = (m: FromThread) => port.postMessage(m);
  try {
    const [{ createContainer }, { moduleDefinitions }, { createThreadBus }] = await Promise.all([
      import('./container.js'), import('./modules/index.js'), import('./events/bus.js'),
    ]);
    const { config, options } = data;
    shareLockReleases(data.lockReleases);
    const log = pino({ level: config.logLevel }).child({ thread: 'workers' });
    lowerPriority(config.workerThreadNice, log);
    const container = await createContainer(config, {
      log,
      bus: data.busName ? createThreadBus(data.busName) : undefined,
      schema: options.schema,
      busPrefix: options.busPrefix,
      worker: options.worker,
      modules: options.modules ? moduleDefinitions.filter((m) => options.modules!.includes(m.name)) : undefined,
      // The main thread's connection runs the file's checkpointer for both.
      checkpointedElsewhere: true,
    });
    port.on('message', (m: ToThread) => {
      if (m.type === 'wake') container.platform.queue.wake();
      else if (m.type === 'adopt') container.platform.localJobs.adopt(m.job, m.context);
      else if (m.type === 'metrics') void container.platform.metrics.getMetricsAsJSON().then((metrics) => post({ type: 'metrics', id: m.id, metrics }));
      else if (m.type === 'stop') {
        void container.close().finally(() => post({ type: 'stopped' }));
      }
    });
    await container.start();
    const worker = container.worker!;
    post({ type: 'ready', owner: worker.owner, leaseMs: worker.leaseMs, kinds: container.modules.flatMap((m) => Object.keys(m.instance.jobs ?? {})) });
  } catch (err) {
    post({ type: 'failed', message: err instanceof Error ? err.stack ?? err.message : String(err) });
    port.close();
  }
}

if (!isMainThread && (workerData as Partial<ThreadData> | undefined)?.switchboardWorkerThread) void runThread(workerData as ThreadData);
