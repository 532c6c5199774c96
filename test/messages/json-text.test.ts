import { it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDatabase, startServer, dropLocation, type DatabaseLocation, type TestServer } from '../helpers/harness.js';
import { customChannel, receiver } from './helpers.js';

/**
 * Messages' JSON documents, jobs' payloads and events' documents are text on PostgreSQL too
 * (migrations 0002, 0003 and 0205): a database that holds them as jsonb is converted in place, and
 * what it held reads back the same (a queued job still runs).
 */
eachDatabase('messages and jobs: JSON stored as text', (dialect) => {
  it('converts jsonb columns in place; stored messages and queued jobs read back the same', async () => {
    let location: DatabaseLocation | undefined;
    let s: (TestServer & { location: DatabaseLocation }) | undefined;
    const r = receiver();
    await r.start();
    try {
      // No workers: the message's job stays queued across the conversion.
      s = await startServer(dialect, { env: { WORKERS_ENABLED: 'false' } });
      location = s.location;
      const space = await s.createSpace('json text');
      const token = await s.createToken(space, ['msg:any:s', 'msg:r']);
      await customChannel(s, space, 'custom_crm', `${r.base}/in`);
      const sent = await s.request({
        method: 'POST', url: `/apispaces/${space}/messages`, token,
        payload: { to: { crmId: 'C-1' }, rules: ['custom_crm'], body: 'Hi "there" \\ {{profile.crmId}}', metadata: { order: 7, nested: { a: [1, 'two', null] } } },
      });
      assert.equal(sent.statusCode, 201, sent.body);
      const id = sent.json().messageId as string;
      const before = await s.request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token });
      const db = s.container.platform.db;
      const jobsBefore = await s.container.platform.queue.list({ kind: 'message.dispatch' });
      assert.equal(jobsBefore.length, 1);
      const platform = s.container.platform;
      await platform.transaction((uow) => platform.events.append(uow, { apiSpaceId: space, accountId: 1, name: 'test.json', payload: { text: 'Hi "there" \\ ✓', n: 1.5, list: [1, null, { a: true }] }, meta: { revision: 3 } }));
      const eventsBefore = await platform.events.readAfter(0, 1000);
      if (dialect === 'postgres') {
        // Back to the shape before the two steps: jsonb columns, the steps not run.
        await sql`ALTER TABLE messages ALTER COLUMN request TYPE jsonb USING request::jsonb, ALTER COLUMN status_details TYPE jsonb USING status_details::jsonb,
          ALTER COLUMN state TYPE jsonb USING state::jsonb, ALTER COLUMN rendered TYPE jsonb USING rendered::jsonb`.execute(db);
        await sql`ALTER TABLE jobs ALTER COLUMN payload TYPE jsonb USING payload::jsonb`.execute(db);
        await sql`ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb, ALTER COLUMN meta TYPE jsonb USING meta::jsonb`.execute(db);
        await sql`DELETE FROM kysely_migration WHERE name IN ('0002_jobs_payload_text', '0003_events_json_text', '0205_messages_json_text')`.execute(db);
      }
      await s.close();
      s = undefined;

      s = await startServer(dialect, { location, env: { WORKERS_ENABLED: 'false' } });
      if (dialect === 'postgres') {
        const types = await sql<{ table_name: string; column_name: string; data_type: string }>`
          SELECT table_name, column_name, data_type FROM information_schema.columns
          WHERE table_schema = current_schema() AND ((table_name = 'messages' AND column_name IN ('request', 'status_details', 'state', 'rendered')) OR (table_name = 'jobs' AND column_name = 'payload')
            OR (table_name = 'events' AND column_name IN ('payload', 'meta')))`.execute(s.container.platform.db);
        assert.equal(types.rows.length, 7);
        for (const r of types.rows) assert.equal(r.data_type, 'text', `${r.table_name}.${r.column_name}`);
      }
      const after = await s.request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token });
      assert.equal(after.statusCode, 200, after.body);
      assert.deepEqual(after.json(), before.json());
      assert.equal(after.headers.etag, before.headers.etag);
      assert.deepEqual(await s.container.platform.events.readAfter(0, 1000), eventsBefore);
      const jobsAfter = await s.container.platform.queue.list({ kind: 'message.dispatch' });
      assert.deepEqual(jobsAfter.map((j) => j.payload), jobsBefore.map((j) => j.payload));
      // The converted job runs: the message reaches the receiver rendered as before.
      await s.close();
      s = await startServer(dialect, { location });
      for (let i = 0; i < 100; i++) {
        const m = await s.request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token });
        if (m.json().status === 'sent') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const done = await s.request({ method: 'GET', url: `/apispaces/${space}/messages/${id}`, token });
      assert.equal(done.json().status, 'sent', done.body);
      assert.deepEqual(r.seen.map((x) => [x.body.ref, x.body.body, x.body.meta]), [[id, 'Hi "there" \\ C-1', '7']]);
    } finally {
      await s?.close();
      await r.stop();
      if (location) await dropLocation(location);
    }
  });
});
