import type { Db, Tx } from './db.js';

/**
 * A unit of work: one database transaction plus what to do once it has committed (wake workers,
 * publish realtime frames). Nothing in `afterCommit` runs if the transaction rolls back.
 */
export interface Uow {
  readonly tx: Tx;
  afterCommit(fn: () => void): void;
}

export async function inTransaction<T>(db: Db, fn: (uow: Uow) => Promise<T>): Promise<T> {
  const callbacks: Array<() => void> = [];
  const result = await db.transaction().execute((tx) => fn({ tx, afterCommit: (cb) => callbacks.push(cb) }));
  for (const cb of callbacks) {
    try {
      cb();
    } catch {
      // After-commit work is best effort by definition; durable work lives in jobs and events.
    }
  }
  return result;
}
