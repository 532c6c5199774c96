import type { Db } from './db.js';
import { detached, insideTransaction, inTransaction, type Uow } from './uow.js';

export type Unit<T> = (uow: Uow) => Promise<T>;

export interface GroupCommitOptions {
  /** Most units sharing one transaction. */
  maxUnits?: number;
  /** Group transactions open at once (1 on SQLite: it has one writer). */
  inFlight?: number;
}

/**
 * Group commit: independent units of work submitted at about the same time share one
 * transaction, so a burst of N writes costs one BEGIN/COMMIT (and on SQLite one write of each
 * touched page to the WAL, on PostgreSQL one WAL flush) instead of N. Nothing is acknowledged
 * early: every caller's promise settles only after the shared transaction has committed (or
 * failed).
 *
 * Units are gathered until the event loop has read what is already waiting (`setImmediate`), and
 * while a group transaction is open; the next group starts as soon as one finishes. If the shared
 * transaction fails, each of its units runs again alone in its own transaction, so one failing
 * unit fails only its own caller. A unit must therefore be safe to run twice: it may only write
 * through the unit of work it is given, and must not depend on its earlier run.
 */
export function createGroupCommit(db: Db, options: GroupCommitOptions = {}) {
  const maxUnits = options.maxUnits ?? 128;
  const inFlight = options.inFlight ?? 1;
  interface Pending {
    fn: Unit<unknown>;
    resolve(v: unknown): void;
    reject(e: unknown): void;
  }
  let waiting: Pending[] = [];
  let open = 0;
  let scheduled = false;

  async function run(group: Pending[]): Promise<void> {
    if (group.length > 1) {
      const results: unknown[] = [];
      try {
        await inTransaction(db, async (uow) => {
          for (const p of group) results.push(await p.fn(uow));
        });
        group.forEach((p, i) => p.resolve(results[i]));
        return;
      } catch {
        // Fall through: each unit alone, so only the failing one fails.
      }
    }
    for (const p of group) {
      try {
        p.resolve(await inTransaction(db, p.fn));
      } catch (err) {
        p.reject(err);
      }
    }
  }

  function pump(): void {
    scheduled = false;
    while (open < inFlight && waiting.length) {
      const group = waiting.length > maxUnits ? waiting.splice(0, maxUnits) : waiting;
      if (group === waiting) waiting = [];
      open++;
      void run(group).finally(() => {
        open--;
        if (waiting.length) schedule();
      });
    }
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    detached(() => setImmediate(pump));
  }

  return {
    submit<T>(fn: Unit<T>): Promise<T> {
      // The unit would wait for a group that waits for the caller's own transaction.
      if (insideTransaction()) return Promise.reject(new Error('Group commit inside a transaction: pass the unit of work (uow) down instead'));
      return new Promise<T>((resolve, reject) => {
        waiting.push({ fn, resolve: resolve as (v: unknown) => void, reject });
        if (open < inFlight) schedule();
      });
    },
  };
}
