import type { LocalJobs } from '../platform.js';
import type { Job, JobQueue } from './queue.js';
import type { Worker } from './worker.js';

/**
 * Who runs the jobs handed over at commit: this thread's worker, or the workers' thread of this
 * process (`WORKER_THREAD`, src/worker-thread.ts), whose free slots this thread can reserve
 * through shared memory.
 */
export interface JobTaker {
  readonly owner: string;
  readonly leaseMs: number;
  handles(kind: string): boolean;
  /** Reserves up to `n` free slots; each is later given a job (`adopt`) or `release`d. */
  reserve(n: number): number;
  release(n: number): void;
  /** Starts `job`, leased to `owner`, in a reserved slot, with what its enqueuer handed over. */
  adopt(job: Job, context: unknown): void;
}

/**
 * `Platform.localJobs`: a job goes to a worker of this process at commit when one handles its kind
 * and has a free slot (stored leased to it, `JobQueue.enqueueLeased`); otherwise it is queued as
 * usual. The worker is this thread's (`worker()`, read at each call: it starts after the modules
 * are built), else the workers' thread's (`remote()`).
 */
export function createLocalJobs(queue: JobQueue, worker: () => Worker | undefined, handles: (kind: string) => boolean, remote: () => JobTaker | undefined = () => undefined): LocalJobs {
  const receivers = new Map<string, (context: unknown) => void>();
  let mine: { w: Worker; taker: JobTaker } | undefined;
  function start(w: Worker, job: Job, context: unknown): void {
    try {
      if (context !== undefined) receivers.get(job.kind)?.(context);
    } finally {
      w.adopt(job);
    }
  }
  function taker(): JobTaker | undefined {
    const w = worker();
    if (!w) return remote();
    if (mine?.w !== w) {
      mine = { w, taker: { owner: w.owner, leaseMs: w.leaseMs, handles, reserve: (n) => w.reserve(n), release: (n) => w.release(n), adopt: (job, context) => start(w, job, context) } };
    }
    return mine.taker;
  }
  return {
    async enqueue(uow, job, context) {
      const t = taker();
      if (!t || !t.handles(job.kind) || t.reserve(1) === 0) {
        await queue.enqueue(uow, job);
        return false;
      }
      uow.afterRollback(() => t.release(1));
      const leased = await queue.enqueueLeased(uow, job, t.owner, t.leaseMs);
      uow.afterCommit(() => t.adopt(leased, context));
      return true;
    },
    receive(kind, fn) {
      receivers.set(kind, fn);
    },
    adopt(job, context) {
      const w = worker();
      // Without a worker here the job stays leased until its lease expires, then runs elsewhere.
      if (w) start(w, job, context);
    },
  };
}
