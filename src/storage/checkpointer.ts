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
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
let stopping = false;
const tick = () => {
  if (stopping) return;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    // More frames than one interval's worth still to copy: go again at once.
    setTimeout(tick, r && r.log - r.checkpointed > workerData.pages ? 0 : workerData.intervalMs);
  } catch {
    setTimeout(tick, workerData.intervalMs);
  }
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

export function startCheckpointer(file: string, options: { intervalMs?: number; pages?: number } = {}): Checkpointer {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER, { eval: true, workerData: { file, module, intervalMs: options.intervalMs ?? 500, pages: options.pages ?? 2000 } });
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
