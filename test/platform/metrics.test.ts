import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { createWorker } from '../../src/delivery/worker.js';

eachDatabase('metrics', (dialect) => {
  const s = useServer(dialect, { start: false });

  it('exposes HTTP latency by operation id and the job queue depth and oldest age', async () => {
    const space = await s().createSpace('metrics');
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}` })).statusCode, 200);
    await s().request({ method: 'GET', url: '/no/such/route' });
    const { queue, clock } = s().container.platform;
    await queue.enqueueNow({ kind: 'metrics.probe', payload: { v: 1 }, runAt: clock.now() - 5000 });
    await queue.enqueueNow({ kind: 'metrics.probe', payload: { v: 1 }, runAt: clock.now() + 60_000 });
    const res = await s().request({ method: 'GET', url: '/metrics', token: null });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain/);
    const text = res.body;
    assert.match(text, /# TYPE http_request_duration_seconds histogram/);
    assert.match(text, /http_request_duration_seconds_count\{operation="apispaces\.get",method="GET",status="200"\} 1/);
    assert.match(text, /http_request_duration_seconds_bucket\{le="\+Inf",operation="apispaces\.create",method="POST",status="201"\} 1/);
    assert.match(text, /http_request_duration_seconds_count\{operation="unknown",method="GET",status="404"\} 1/);
    assert.match(text, /jobs_queue_depth\{state="queued"\} 2/);
    assert.match(text, /jobs_queue_depth\{state="dead"\} 0/);
    const oldest = Number(text.match(/^jobs_oldest_due_seconds (\S+)$/m)?.[1]);
    assert.ok(oldest >= 5 && oldest < 60, `oldest due age ${oldest}`);
  });

  it('exposes job run times by kind and outcome', async () => {
    const { platform } = s().container;
    const worker = createWorker({
      queue: platform.queue, clock: platform.clock, log: platform.log, owner: 'metrics', concurrency: 2, idlePollMs: 20, backoffBaseMs: 60_000, metrics: platform.metrics,
      handlers: new Map([
        ['metrics.ok', async () => {}],
        ['metrics.fail', async () => { throw new Error('nope'); }],
      ]),
    });
    await platform.queue.enqueueNow({ kind: 'metrics.ok', payload: { v: 1 } });
    await platform.queue.enqueueNow({ kind: 'metrics.fail', payload: { v: 1 }, maxAttempts: 5 });
    worker.start();
    await worker.idle();
    await worker.stop();
    const text = (await s().request({ method: 'GET', url: '/metrics', token: null })).body;
    assert.match(text, /jobs_run_duration_seconds_count\{kind="metrics\.ok",outcome="done"\} 1/);
    assert.match(text, /jobs_run_duration_seconds_count\{kind="metrics\.fail",outcome="retry"\} 1/);
  });
});
