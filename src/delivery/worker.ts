import type { Logger } from 'pino';
import { Histogram, type Registry } from 'prom-client';
import type { Clock } from '../lib/clock.js';
import type { Job, JobQueue } from './queue.js';
import type { Tx } from '../storage/db.js';
import type { Uow } from '../storage/uow.js';
import { backoffMs } from './retry.js';

/** What a job handler can do besides returning (done) or throwing (retry with back-off). */
export interface JobContext {
  readonly job: Job;
  /**
   * Completes the job inside the handler's own transaction, so its writes and the job's removal
   * commit together (exactly-once effects on the database). Throws if the lease was lost; given
   * the unit of work, the deletion is written at its commit with the other jobs completed in it,
   * and a lost lease fails that commit instead.
   */
  completeIn(tx: Tx, uow?: Uow): Promise<void>;
  /** Extends the lease now (long jobs also get automatic heartbeats). */
  heartbeat(): Promise<boolean>;
  /** Aborted when the lease is lost or the worker stops. */
  readonly signal: AbortSignal;
}

/** Thrown by handlers to control what happens next. */
export class RetryLater extends Error {
  constructor(message: string, readonly atMs?: number) {
    super(message);
  }
}
export class PermanentFailure extends Error {}
export class LeaseLost extends Error {}

export type JobHandler = (ctx: JobContext) => Promise<void>;

export interface WorkerOptions {
  queue: JobQueue;
  clock: Clock;
  log: Logger;
  owner: string;
  handlers: ReadonlyMap<string, JobHandler>;
  concurrency: number;
  leaseMs?: number;
  /** Longest sleep between polls when nothing wakes the worker. */
  idlePollMs?: number;
  backoffBaseMs?: number;
  /** Registry for `jobs_run_duration_seconds{kind,outcome}`. */
  metrics?: Registry;
  /**
   * Where the free slots are counted (default: a counter of its own, starting at `concurrency`).
   * Given one shared with another thread, that thread can reserve slots of this worker for jobs it
   * hands over (`WORKER_THREAD`).
   */
  slots?: Slots;
}

/**
 * A worker's free slots: taken by a claim, a reservation or a handed-over job, given back when a
 * job ends or a reservation is released.
 */
export interface Slots {
  /** Takes up to `n` free slots; returns how many it got. */
  take(n: number): number;
  /** Takes `n` slots whether free or not (jobs a claim returned: reservations may have come meanwhile). */
  use(n: number): void;
  give(n: number): void;
  free(): number;
  /** No slots for anyone while closed (a stopped worker); counting goes on. */
  close(): void;
  open(): void;
}

/** Free-slot counter in shared memory: `[free, closed]`. */
export const slotsBuffer = (n: number): SharedArrayBuffer => {
  const buffer = new SharedArrayBuffer(8);
  new Int32Array(buffer)[0] = n;
  return buffer;
};

/**
 * Slots counted in `buffer` (from `slotsBuffer`), which the threads of this process may share: the
 * worker's own thread, and another that reserves slots for jobs it hands over to this worker
 * (`WORKER_THREAD`, src/worker-thread.ts).
 */
export function sharedSlots(buffer: SharedArrayBuffer): Slots {
  const cell = new Int32Array(buffer);
  return {
    take(k) {
      for (;;) {
        const free = Atomics.load(cell, 0);
        const got = Atomics.load(cell, 1) ? 0 : Math.max(0, Math.min(k, free));
        if (got === 0 || Atomics.compareExchange(cell, 0, free, free - got) === free) return got;
      }
    },
    use(k) {
      Atomics.sub(cell, 0, k);
    },
    give(k) {
      Atomics.add(cell, 0, k);
    },
    free: () => (Atomics.load(cell, 1) ? 0 : Atomics.load(cell, 0)),
    close() {
      Atomics.store(cell, 1, 1);
    },
    open() {
      Atomics.store(cell, 1, 0);
    },
  };
}

type Outcome = 'done' | 'retry' | 'dead' | 'lease_lost' | 'interrupted';

function runHistogram(registry: Registry): Histogram<'kind' | 'outcome'> {
  const name = 'jobs_run_duration_seconds';
  return (registry.getSingleMetric(name) as Histogram<'kind' | 'outcome'> | undefined) ?? new Histogram({
    name, help: 'Job handler run time by kind and outcome', labelNames: ['kind', 'outcome'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registers: [registry],
  });
}

export interface Worker {
  readonly owner: string;
  readonly leaseMs: number;
  /**
   * Reserves up to `n` slots for jobs this process enqueues already leased to `owner`
   * (`JobQueue.enqueueLeased`); returns how many it got. Each is later `adopt`ed or `release`d.
   */
  reserve(n: number): number;
  release(n: number): void;
  /** Runs a job leased to this worker in a reserved slot (no claim). */
  adopt(job: Job): void;
  start(): void;
  /** Stops claiming; waits for running jobs (up to `graceMs`). */
  stop(graceMs?: number): Promise<void>;
  /** Resolves when no job is running and none is due (tests). */
  idle(): Promise<void>;
}

/** Shortest pause between polls while due jobs are leased elsewhere. */
const MIN_POLL_MS = 10;
/**
 * A claim costs about as much for one job as for thirty: while jobs run and only a few slots are
 * free, wait up to this long for more to free up so one claim serves several.
 */
const GATHER_MS = 2;

export function createWorker(opts: WorkerOptions): Worker {
  const { queue, clock, log, owner, handlers } = opts;
  const leaseMs = opts.leaseMs ?? 30_000;
  const idlePollMs = opts.idlePollMs ?? 1000;
  const kinds = [...handlers.keys()];
  const running = new Set<Promise<void>>();
  const controllers = new Set<AbortController>();
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;
  let pumping = false;
  let again = false;
  let soonQueued = false;
  const slots = opts.slots ?? sharedSlots(slotsBuffer(opts.concurrency));
  let gatheringSince: number | undefined;
  const gatherMin = Math.max(1, Math.floor(opts.concurrency / 4));
  /** Finishing jobs pump once per turn of the event loop, not once each. */
  const soon = () => {
    if (soonQueued || stopped) return;
    soonQueued = true;
    setImmediate(() => {
      soonQueued = false;
      void pump();
    });
  };
  let unsubscribe: (() => void) | undefined;

  const schedule = (ms: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void pump(), Math.max(0, ms));
  };

  const runs = opts.metrics ? runHistogram(opts.metrics) : undefined;

  async function runOne(job: Job): Promise<Outcome> {
    const started = performance.now();
    let outcome: Outcome = 'done';
    const handler = handlers.get(job.kind);
    const ac = new AbortController();
    controllers.add(ac);
    let completed = false;
    const beat = setInterval(() => {
      queue.heartbeat(job, leaseMs).then((ok) => { if (!ok) ac.abort(new LeaseLost('lease lost')); }, () => {});
    }, Math.max(100, Math.floor(leaseMs / 3)));
    try {
      if (!handler) throw new PermanentFailure(`no handler for job kind ${job.kind}`);
      if (job.attempts > job.maxAttempts) throw new PermanentFailure(`gave up after ${job.maxAttempts} attempts (${job.lastError ?? 'lease expired'})`);
      await handler({
        job,
        signal: ac.signal,
        heartbeat: () => queue.heartbeat(job, leaseMs),
        async completeIn(tx, uow) {
          // With the unit of work, the deletion joins the others of that transaction at commit.
          if (uow) queue.completeAtCommit(uow, job);
          else if (!(await queue.complete(job, tx))) throw new LeaseLost(`lease on job ${job.id} lost`);
          completed = true;
        },
      });
      if (!completed) await queue.complete(job);
    } catch (err) {
      if (err instanceof LeaseLost || ac.signal.reason instanceof LeaseLost) {
        outcome = 'lease_lost';
        log.warn({ jobId: job.id, kind: job.kind }, 'job lease lost; another worker owns it now');
      } else if (stopped && ac.signal.aborted) {
        outcome = 'interrupted';
        // Interrupted by shutdown, not failed: hand it back to run again at once elsewhere.
        await queue.fail(job, 'interrupted by worker shutdown', clock.now()).catch(() => {});
      } else {
        const message = err instanceof Error ? err.message : String(err);
        const permanent = err instanceof PermanentFailure || job.attempts >= job.maxAttempts;
        const retryAt = permanent ? 'dead' : err instanceof RetryLater && err.atMs !== undefined ? err.atMs : clock.now() + backoffMs(job.attempts, opts.backoffBaseMs);
        outcome = permanent ? 'dead' : 'retry';
        if (permanent) log.warn({ jobId: job.id, kind: job.kind, err: message }, 'job dead');
        else log.debug({ jobId: job.id, kind: job.kind, err: message }, 'job will retry');
        await queue.fail(job, message, retryAt).catch((e) => log.error({ err: e }, 'could not record job failure'));
      }
    } finally {
      clearInterval(beat);
      controllers.delete(ac);
      runs?.observe({ kind: job.kind, outcome }, (performance.now() - started) / 1000);
    }
    return outcome;
  }

  /** A job leased to this worker after it stopped: queued again to run elsewhere at once. */
  const handingBack = new Set<Promise<unknown>>();
  function handBack(job: Job): void {
    slots.give(1);
    const p = queue.fail(job, 'worker stopped before running the job', clock.now()).catch(() => {}).finally(() => handingBack.delete(p));
    handingBack.add(p);
  }
  /** Settles when the pump in progress (if any) has finished its claim. */
  let pumped: Promise<void> = Promise.resolve();

  /**
   * The last claim came back short and nothing has woken the worker since: as far as this process
   * knows, no job is due. A job handed over at commit (`adopt`) that finishes then frees its slot
   * without a claim — in a process that accepts and dispatches, every finishing job used to run a
   * claim and two look-ups that found nothing. The poll timer, wake-ups and failures still claim.
   */
  let quiet = false;

  /** Runs `job` in a slot already taken for it (by the claim, or reserved for a handed-over job). */
  function launch(job: Job, adopted = false): void {
    const p = runOne(job).catch((): Outcome => 'dead').then((outcome) => {
      running.delete(p);
      slots.give(1);
      if (!(adopted && quiet && outcome === 'done')) soon();
    });
    running.add(p);
  }

  async function pump(): Promise<void> {
    if (stopped) return;
    if (pumping) {
      // A wake-up during a poll must not be lost: the running pump polls once more.
      again = true;
      return;
    }
    pumping = true;
    let endPump!: () => void;
    pumped = new Promise((resolve) => (endPump = resolve));
    let rerun = false;
    try {
      let gathering = false;
      do {
        again = false;
        const free = slots.free();
        if (free <= 0) break;
        if (running.size > 0 && free < gatherMin) {
          const t = performance.now();
          gatheringSince ??= t;
          if (t - gatheringSince < GATHER_MS) {
            gathering = true;
            schedule(GATHER_MS - (t - gatheringSince));
            break;
          }
        }
        gatheringSince = undefined;
        const jobs = await queue.claim(owner, free, leaseMs, kinds);
        slots.use(jobs.length);
        quiet = jobs.length < free;
        // Stopped while the claim was under way: hand the jobs back to run elsewhere at once.
        for (const job of jobs) {
          if (stopped) handBack(job);
          else launch(job);
        }
        if (jobs.length === free) again = true;
      } while (again && !stopped);
      // Gathering: the timer set above (or a finishing job) claims next.
      if (gathering) return;
      if (slots.free() <= 0) {
        // Saturated: a finishing job pumps again; polling now would only spin on due rows.
        if (timer) clearTimeout(timer);
        timer = undefined;
        return;
      }
      const next = await queue.nextRunAt(kinds);
      // Due rows we could not claim are being leased by another worker right now: look again soon.
      const wait = next === undefined ? idlePollMs : Math.min(idlePollMs, Math.max(MIN_POLL_MS, next - clock.now()));
      schedule(wait);
    } catch (err) {
      log.error({ err }, 'worker poll failed');
      schedule(idlePollMs);
    } finally {
      pumping = false;
      rerun = again;
      endPump();
    }
    if (rerun && !stopped) void pump();
  }

  return {
    owner,
    leaseMs,
    reserve(n) {
      return stopped ? 0 : slots.take(n);
    },
    release(n) {
      slots.give(n);
      soon();
    },
    adopt(job) {
      // Stopped meanwhile: hand it back to run at once elsewhere instead of waiting for the lease.
      if (stopped) handBack(job);
      else launch(job, true);
    },
    start() {
      if (!stopped) return;
      stopped = false;
      slots.open();
      unsubscribe = queue.onWake(() => {
        quiet = false;
        void pump();
      });
      void pump();
    },
    async stop(graceMs = 10_000) {
      stopped = true;
      slots.close();
      unsubscribe?.();
      if (timer) clearTimeout(timer);
      const all = Promise.allSettled([...running]);
      const t = setTimeout(() => { for (const ac of controllers) ac.abort(new Error('worker stopping')); }, graceMs);
      await all;
      clearTimeout(t);
      // A claim under way when stopping hands its jobs back; wait for that too, within the grace
      // period (a claim waiting for an unreachable database must not hold up shutdown).
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        pumped.then(() => Promise.allSettled([...handingBack])),
        new Promise((resolve) => (graceTimer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(graceTimer);
    },
    async idle() {
      for (;;) {
        while (running.size) await Promise.allSettled([...running]);
        const next = await queue.nextRunAt(kinds);
        // A pump still claiming has leased rows that are not running yet (their new lease is
        // in the future, so they no longer look due): wait for it too.
        if (running.size === 0 && !pumping && (next === undefined || next > clock.now())) return;
        void pump();
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}
