import type { LocalJobs } from '../platform.js';
import type { JobQueue } from './queue.js';
import type { Worker } from './worker.js';

/**
 * `Platform.localJobs`: a job goes to this process's worker at commit when the worker handles
 * its kind and has a free slot (stored leased to it, `JobQueue.enqueueLeased`); otherwise it is
 * queued as usual. `worker()` is read at each call: the worker starts after the modules are built.
 */
export function createLocalJobs(queue: JobQueue, worker: () => Worker | undefined, handles: (kind: string) => boolean): LocalJobs {
  return {
    async enqueue(uow, job, beforeStart) {
      const w = worker();
      if (!w || !handles(job.kind) || w.reserve(1) === 0) {
        await queue.enqueue(uow, job);
        return false;
      }
      uow.afterRollback(() => w.release(1));
      const leased = await queue.enqueueLeased(uow, job, w.owner, w.leaseMs);
      uow.afterCommit(() => {
        try {
          beforeStart?.();
        } finally {
          w.adopt(leased);
        }
      });
      return true;
    },
  };
}
