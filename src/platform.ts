import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config, SigningKey } from './config/config.js';
import type { DatabaseHandle, Db } from './storage/db.js';
import type { Clock } from './lib/clock.js';
import type { Ids } from './lib/ids.js';
import type { SecretBox } from './lib/secrets.js';
import type { EventBus } from './events/bus.js';
import type { EventLog } from './events/log.js';
import type { Job, JobQueue, NewJob } from './delivery/queue.js';
import type { Uow } from './storage/uow.js';

/**
 * The shared infrastructure every module receives. Built once in `container.ts`; modules never
 * construct any of these themselves.
 */
export interface Platform {
  readonly config: Config;
  readonly handle: DatabaseHandle;
  readonly db: Db;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly log: Logger;
  readonly secrets: SecretBox;
  readonly signingKeys: readonly SigningKey[];
  readonly bus: EventBus;
  readonly events: EventLog;
  readonly queue: JobQueue;
  readonly metrics: Registry;
  /** Runs `fn` in one transaction; after-commit callbacks run only on success. */
  transaction<T>(fn: (uow: Uow) => Promise<T>): Promise<T>;
  /**
   * Like `transaction`, but `fn` may share one transaction with other units submitted at the same
   * moment (group commit, `storage/group-commit.ts`): for short, independent, hot write paths.
   * `fn` may run twice (alone, after a shared transaction failed), so it writes only through `uow`.
   */
  groupCommit<T>(fn: (uow: Uow) => Promise<T>): Promise<T>;
  /** Jobs this process runs itself right after commit when a worker here has room. */
  readonly localJobs: LocalJobs;
}

export interface LocalJobs {
  /**
   * Enqueues `job` in `uow`. When a worker of this process (on this thread or on the workers'
   * thread) handles its kind and has a free slot, the job is stored leased to that worker and
   * handed to it right after commit — no claim query, no wake-up — and true is returned; otherwise
   * it is queued as usual (false). Either way it is durable from the commit on: a process that dies
   * before finishing loses only its lease. `context` (plain data: it may cross to another thread)
   * goes with a handed-over job to its kind's `receive` hook just before it starts.
   */
  enqueue(uow: Uow, job: NewJob, context?: unknown): Promise<boolean>;
  /** What handed-over jobs of `kind` bring (`enqueue`'s `context`) goes to `fn` before each starts. */
  receive(kind: string, fn: (context: unknown) => void): void;
  /** Starts a job another thread of this process stored leased to this thread's worker. */
  adopt(job: Job, context: unknown): void;
}
