import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { eachDatabase, freshLocation, dropLocation, testEnv, type DatabaseLocation } from '../helpers/harness.js';
import { openDatabase, type DatabaseHandle } from '../../src/storage/db.js';
import { createJobQueue, type JobQueue } from '../../src/delivery/queue.js';
import { systemClock } from '../../src/lib/clock.js';
import { randomIds } from '../../src/lib/ids.js';

const CHILD = fileURLToPath(new URL('../fixtures/crash-child.ts', import.meta.url));
const LEASE_MS = 1000;
const JOB_MS = 1500;

interface Child {
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the first output line matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

function spawnChild(location: DatabaseLocation): Child {
  const env = { ...process.env, ...testEnv(location), WORKER_CONCURRENCY: '2', CRASH_LEASE_MS: String(LEASE_MS), CRASH_SCHEMA: location.schema ?? '' };
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
  });
  return {
    proc, lines,
    waitFor(re, timeoutMs = 20_000) {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`child did not print ${re} within ${timeoutMs} ms; got ${JSON.stringify(lines)}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); resolve(l); } });
      });
    },
  };
}

const exited = (proc: ChildProcess) => new Promise<void>((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', () => r())));

eachDatabase('crash recovery of durable jobs', (dialect) => {
  const children: ChildProcess[] = [];
  let location: DatabaseLocation | undefined;
  let handle: DatabaseHandle | undefined;
  let queue: JobQueue | undefined;
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    // The queue's LISTEN connection is checked out of the pool: release it before ending the pool.
    await queue?.close();
    await handle?.close();
    if (location) await dropLocation(location);
  });

  it('a job killed mid-run runs again after its lease expires, exactly once to completion', async () => {
    location = freshLocation(dialect);
    const first = spawnChild(location);
    children.push(first.proc);
    await first.waitFor(/^ready$/);
    handle = openDatabase(location.url, { schema: location.schema, poolSize: 2 });
    queue = createJobQueue({ handle, clock: systemClock, ids: randomIds });
    const jobIds: string[] = [];
    for (let i = 0; i < 3; i++) jobIds.push((await queue.enqueueNow({ kind: 'crash.slow', payload: { v: 1, ms: JOB_MS } }))!);
    await first.waitFor(/^start /);
    await new Promise((r) => setTimeout(r, 200));
    first.proc.kill('SIGKILL');
    await exited(first.proc);
    const killedAt = Date.now();
    const inFlight = first.lines.filter((l) => l.startsWith('start ')).map((l) => l.split(' ')[1]!);
    assert.ok(inFlight.length >= 1 && inFlight.length <= 2, `in flight at the kill: ${inFlight.length}`);
    assert.equal(first.lines.filter((l) => l.startsWith('end ')).length, 0, 'killed before any job finished');
    for (const id of inFlight) assert.equal((await queue.get(id))?.state, 'running', 'the dead worker still holds the lease');

    const second = spawnChild(location);
    children.push(second.proc);
    await second.waitFor(/^ready$/);
    const secondReadyAt = Date.now();
    for (const id of jobIds) await second.waitFor(new RegExp(`^end ${id}$`), 20_000);
    await new Promise((r) => setTimeout(r, 300));

    const runs = (await sql<{ job_id: string; pid: number; phase: string; attempt: number; at_ms: number }>`SELECT * FROM crash_runs ORDER BY at_ms`.execute(handle.db)).rows;
    for (const id of jobIds) {
      const mine = runs.filter((r) => r.job_id === id);
      const ends = mine.filter((r) => r.phase === 'end');
      assert.equal(ends.length, 1, `job ${id} completed exactly once`);
      assert.equal(ends[0]!.pid, second.proc.pid);
      const starts = mine.filter((r) => r.phase === 'start');
      if (inFlight.includes(id)) {
        assert.deepEqual(starts.map((r) => [r.pid, Number(r.attempt)]), [[first.proc.pid, 1], [second.proc.pid, 2]], `job ${id} ran again`);
        // Not before the dead worker's lease ran out (it was heartbeating up to the kill).
        assert.ok(Number(starts[1]!.at_ms) >= Number(starts[0]!.at_ms) + LEASE_MS, 'second start waited for the lease to expire');
        assert.ok(Number(starts[1]!.at_ms) <= Math.max(killedAt + LEASE_MS, secondReadyAt) + 5000, 'and was picked up soon after');
      } else {
        assert.equal(starts.length, 1);
      }
    }
    assert.equal((await queue.list({})).length, 0, 'no job left');
    second.proc.kill('SIGTERM');
    await exited(second.proc);
  });
});
