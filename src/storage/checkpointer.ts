import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints off the event loop. better-sqlite3 is synchronous, so a checkpoint started by a
 * commit (`wal_autocheckpoint`) stops the whole process while it copies the WAL into the database
 * file and fsyncs it — 100–250 ms every few thousand writes, landing on whichever request commits
 * then. A worker thread with its own connection runs PASSIVE checkpoints instead: they never wait
 * for, nor block, the main connection's readers and writers (SQLite's WAL allows a checkpoint
 * alongside them). The main connection keeps a much larger `wal_autocheckpoint` as a backstop in
 * case this thread falls behind.
 *
 * A PASSIVE checkpoint copies frames but never starts the WAL over: SQLite writes from the start
 * of the file again only when a write transaction begins while every frame is already copied, and
 * under steady writes some commit always lands between a checkpoint and the next transaction. The
 * WAL then grew to the backstop's 100,000 pages (400 MB) — every commit extending the file and
 * every page look-up searching a larger WAL index — and at the backstop the main connection ran a
 * checkpoint itself, stopping the process for as long as the thread was behind. So once the WAL
 * holds more than `restartPages`, the thread follows its PASSIVE pass with a RESTART checkpoint,
 * which holds the write lock while it copies what was committed during the pass and waits for
 * readers to finish, so that the next writer starts the WAL over (the main connection's writers
 * wait for it asynchronously, storage/uow.ts `waitingForLocks`). It waits at most 25 ms for the
 * write lock and, holding it, for readers (an export reads for seconds): a RESTART that cannot
 * finish by then leaves the WAL as it is and the thread tries again an interval later, not at once.
 * docs/adr/0002-storage.md.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
// Only RESTART waits (PASSIVE never does), and never long: see above.
db.pragma('busy_timeout = 25');
let stopping = false;
// Frames copied as of the last pass (the WAL's, so it falls when the WAL starts over).
let copied = 0;
const tick = () => {
  if (stopping) return;
  let delay = workerData.intervalMs;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    const [x] = r && r.log > workerData.restartPages ? db.pragma('wal_checkpoint(RESTART)') : [];
    // More frames than one interval's worth still to copy: go again at once, as long as the pass
    // got somewhere (a long read holds the frames after its snapshot back: no spinning meanwhile)
    // and no RESTART was just refused (it held the write lock for its wait: not again at once).
    if (r && r.log - r.checkpointed > workerData.pages && r.checkpointed > copied && !(x && x.busy)) delay = 0;
    copied = r ? r.checkpointed : 0;
  } catch {}
  setTimeout(tick, delay);
};
setTimeout(tick, workerData.intervalMs);
parentPort.on('message', () => {
  stopping = true;
  try { db.close(); } catch {}
  parentPort.postMessage('closed');
});
`;

export interface Checkpointer {
  close(): Promise<void>;
}

export interface CheckpointerOptions {
  intervalMs?: number;
  /** Frames a PASSIVE pass may leave before the thread goes again at once. */
  pages?: number;
  /** WAL size (frames) from which the thread starts the WAL over (RESTART). */
  restartPages?: number;
}

export function startCheckpointer(file: string, options: CheckpointerOptions = {}): Checkpointer {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const workerData = { file, module, intervalMs: options.intervalMs ?? 500, pages: options.pages ?? 2000, restartPages: options.restartPages ?? 16_384 };
  const worker = new Worker(WORKER, { eval: true, workerData });
  // A checkpointer that cannot start leaves checkpoints to the main connection's backstop.
  worker.on('error', () => {});
  worker.unref();
  return {
    close: () => new Promise<void>((resolve) => {
      const done = () => resolve();
      worker.once('message', () => void worker.terminate().then(done, done));
      worker.once('exit', done);
      worker.postMessage('close');
    }),
  };
}
