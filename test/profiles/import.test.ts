import { it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { dropLocation, eachDatabase, startServer, useServer, type DialectName, type TestServer } from '../helpers/harness.js';
import type { JobContext, JobHandler } from '../../src/delivery/worker.js';
import { profileModules } from './helpers.js';

const ROWS = 10_000;
const UNIQUE = 9_000;

function csvFile(): string {
  const lines = ['id,name,loyalty.points:number,vip:boolean'];
  for (let i = 1; i <= ROWS; i++) {
    if (i === 17) lines.push(',nobody,1,true'); // empty id
    else if (i === 18) lines.push('bad,Bad,abc,true'); // not a number
    else lines.push(`u${i % UNIQUE},"Name ${i}",${i},${i % 2 ? 'true' : 'false'}`);
  }
  return lines.join('\n') + '\n';
}

async function waitFor(server: TestServer, space: string, id: string, status: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const job = (await server.request({ method: 'GET', url: `/apispaces/${space}/profiles/import/${id}` })).json();
    if (job.status === status) return job;
    await sleep(50);
  }
  throw new Error(`import ${id} never reached ${status}`);
}

function importHandler(server: TestServer): JobHandler {
  const handler = server.container.modules.find((m) => m.definition.name === 'profiles')?.instance.jobs?.['profiles.import'];
  assert.ok(handler);
  return handler;
}

eachDatabase('profiles: import', (dialect: DialectName) => {
  const s = useServer(dialect, profileModules);

  it('stages JSON and multipart uploads and reports bad files', async () => {
    const space = await s().createSpace();
    const base = `/apispaces/${space}/profiles/import`;
    const json = await s().request({ method: 'POST', url: base, payload: [{ id: 'a', x: 1 }, { id: 'a', y: 2 }, { x: 3 }] });
    assert.equal(json.statusCode, 201, json.body);
    assert.equal(json.json().status, 'ready');
    assert.equal(json.json().validRowCount, 2);
    assert.deepEqual(json.json().invalidRows, [{ row: 3, message: 'id is required' }]);
    const dups = await s().request({ method: 'GET', url: `${base}/${json.json().id}/duplicates` });
    assert.deepEqual(dups.json(), [{ id: 'a', rows: [1, 2], existsInSpace: false }]);
    const boundary = 'XyZ';
    const body = [`--${boundary}`, 'Content-Disposition: form-data; name="mode"', '', 'replace',
      `--${boundary}`, 'Content-Disposition: form-data; name="separator"', '', ';',
      `--${boundary}`, 'Content-Disposition: form-data; name="start"', '', 'true',
      `--${boundary}`, 'Content-Disposition: form-data; name="file"; filename="c.csv"', 'Content-Type: text/csv', '', 'id;name\nm1;Mo\nm2;Mi', `--${boundary}--`, ''].join('\r\n');
    const mp = await s().request({ method: 'POST', url: base, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body });
    assert.equal(mp.statusCode, 201, mp.body);
    assert.equal(mp.json().mode, 'replace');
    assert.equal(mp.json().status, 'running');
    const done = await waitFor(s(), space, mp.json().id, 'completed');
    assert.equal(done.createdCount, 2);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/profiles/m2` })).json().name, 'Mi');
    const noId = await s().request({ method: 'POST', url: base, headers: { 'content-type': 'text/csv' }, payload: 'name\nx\n' });
    assert.equal(noId.statusCode, 400);
    assert.equal((await s().request({ method: 'POST', url: base, payload: { id: 'x' } })).statusCode, 400);
    assert.equal((await s().request({ method: 'PUT', url: `${base}/${mp.json().id}/start` })).statusCode, 409);
    assert.equal((await s().request({ method: 'GET', url: `${base}/00000000-0000-4000-8000-000000000000` })).statusCode, 404);
  });

  it('lets the event loop turn between chunks, so requests are read while an import runs', async () => {
    const server = await startServer(dialect, { ...profileModules, start: false });
    try {
      const space = await server.createSpace();
      const base = `/apispaces/${space}/profiles/import`;
      const rows = ['id,n:number', ...Array.from({ length: 3000 }, (_, i) => `r${i},${i}`)].join('\n');
      const staged = await server.request({ method: 'POST', url: `${base}?start=true`, headers: { 'content-type': 'text/csv' }, payload: rows });
      assert.equal(staged.statusCode, 201, staged.body);
      const [claimed] = await server.container.platform.queue.claim('turns-test', 1, 60_000, ['profiles.import']);
      assert.ok(claimed);
      let completed = false;
      const jobCtx: JobContext = {
        job: claimed, signal: new AbortController().signal, heartbeat: async () => true,
        completeIn: async () => void (completed = true),
      };
      // A check-phase callback runs only when the event loop gets past the microtasks, as it must
      // to read sockets: count how often that happens while the import runs.
      let turns = 0;
      let running = true;
      const probe = () => {
        if (!running) return;
        turns++;
        setImmediate(probe);
      };
      setImmediate(probe);
      await importHandler(server)(jobCtx);
      running = false;
      assert.ok(completed);
      assert.ok(turns >= 5, `the event loop turned ${turns} times during an import of 6 chunks`);
    } finally {
      await server.close();
      await dropLocation(server.location);
    }
  });

  it('imports a 10k-row CSV with duplicates, survives a crash mid-run and resumes without duplicates', async () => {
    // First process: no workers; the test runs the job handler itself and interrupts it.
    const first = await startServer(dialect, { ...profileModules, start: false });
    const space = await first.createSpace();
    const base = `/apispaces/${space}/profiles/import`;
    await first.request({ method: 'POST', url: `/apispaces/${space}/profiles`, payload: { id: 'u0', name: 'Existing', keep: 'me' } });
    const staged = await first.request({ method: 'POST', url: `${base}?filename=big.csv`, headers: { 'content-type': 'text/csv' }, payload: csvFile() });
    assert.equal(staged.statusCode, 201, staged.body);
    const job = staged.json();
    assert.equal(job.rowCount, ROWS);
    assert.equal(job.validRowCount, ROWS - 2);
    assert.equal(job.invalidRows.length, 2);
    assert.equal(job.duplicateCount, ROWS - 2 - UNIQUE);
    assert.equal(job.existingCount, 1);
    assert.equal(job.filename, 'big.csv');
    const dups = (await first.request({ method: 'GET', url: `${base}/${job.id}/duplicates` })).json();
    assert.deepEqual(dups.find((d: { id: string }) => d.id === 'u0'), { id: 'u0', rows: [9000], existsInSpace: true });
    assert.deepEqual(dups.find((d: { id: string }) => d.id === 'u5'), { id: 'u5', rows: [5, 9005], existsInSpace: false });

    const started = await first.request({ method: 'PUT', url: `${base}/${job.id}/start` });
    assert.equal(started.statusCode, 202);
    assert.equal(started.json().status, 'running');

    const [claimed] = await first.container.platform.queue.claim('crash-test', 1, 1, ['profiles.import']);
    assert.ok(claimed);
    const ac = new AbortController();
    let chunks = 0;
    const jobCtx: JobContext = {
      job: claimed,
      signal: ac.signal,
      heartbeat: async () => {
        if (++chunks === 3) ac.abort();
        return true;
      },
      completeIn: async () => assert.fail('must not complete'),
    };
    await assert.rejects(importHandler(first)(jobCtx), /interrupted/);
    const mid = (await first.request({ method: 'GET', url: `${base}/${job.id}` })).json();
    assert.equal(mid.status, 'running');
    assert.equal(mid.processedCount, 1500);
    await first.close();

    // Second process on the same database: its worker picks the job up (the lease has expired).
    const second = await startServer(dialect, { ...profileModules, location: first.location });
    try {
      const done = await waitFor(second, space, job.id, 'completed');
      assert.equal(done.processedCount, ROWS - 2);
      assert.equal(done.createdCount, UNIQUE - 1);
      assert.equal(done.updatedCount, ROWS - 2 - (UNIQUE - 1));
      assert.equal(done.failedCount, 0);
      const count = await second.request({ method: 'GET', url: `/apispaces/${space}/profiles?$limit=1` });
      assert.equal(count.headers['x-total-count'], String(UNIQUE));
      const db = second.container.platform.db;
      const creates = await db.selectFrom('events').select('payload').where('api_space_id', '=', space).where('name', '=', 'profile.create').execute();
      // u0 (created before the import) plus every imported id, each exactly once.
      assert.equal(creates.length, UNIQUE);
      const createdIds = creates.map((e) => (typeof e.payload === 'string' ? JSON.parse(e.payload) : e.payload).id);
      assert.equal(new Set(createdIds).size, UNIQUE);
      const u5 = (await second.request({ method: 'GET', url: `/apispaces/${space}/profiles/u5` })).json();
      assert.equal(u5.name, 'Name 9005');
      assert.equal(u5.loyalty.points, 9005);
      assert.equal(u5.vip, true);
      const u0 = (await second.request({ method: 'GET', url: `/apispaces/${space}/profiles/u0` })).json();
      assert.equal(u0.keep, 'me'); // merge mode keeps existing properties
      assert.equal(u0.name, 'Name 9000');
    } finally {
      await second.close();
      await dropLocation(first.location);
    }
  });
});
