import { Gauge, type Registry } from 'prom-client';
import type { JobQueue } from './queue.js';

/**
 * Job queue gauges for /metrics: depth by state and how long the oldest due job has waited.
 * prom-client collects gauges concurrently, so both share one depth query per scrape.
 */
export function registerQueueMetrics(queue: JobQueue, registry: Registry): void {
  let pending: ReturnType<JobQueue['depth']> | undefined;
  const depth = () => {
    pending ??= queue.depth().finally(() => setImmediate(() => (pending = undefined)));
    return pending;
  };
  new Gauge({
    // Read from the table: a process whose workers run on a thread reports it once, not summed.
    name: 'jobs_queue_depth', help: 'Durable jobs by state', labelNames: ['state'], registers: [registry], aggregator: 'first',
    async collect() {
      const d = await depth();
      this.set({ state: 'queued' }, d.queued);
      this.set({ state: 'running' }, d.running);
      this.set({ state: 'dead' }, d.dead);
    },
  });
  new Gauge({
    name: 'jobs_oldest_due_seconds', help: 'How long the oldest queued job has been due (0 when none)', registers: [registry], aggregator: 'first',
    async collect() {
      this.set(((await depth()).oldestDueMs ?? 0) / 1000);
    },
  });
}
