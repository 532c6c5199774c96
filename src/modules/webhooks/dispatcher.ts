import { Counter, Histogram } from 'prom-client';
import type { Platform } from '../../platform.js';
import type { DeliveryRow, WebhookRow } from './webhooks.migrations.js';
import type { Completion, DeliveriesRepo } from './deliveries.repo.js';
import { deliveryHeaders, outcomeOf, retryDelayMs } from './delivery-policy.js';
import { createSender } from './sender.js';

export interface DispatcherOptions {
  retryDelaysMs: readonly number[];
  /** Requests in flight per webhook (webhooks.md §4.4). */
  maxInFlight: number;
  /** Deliveries leased ahead per webhook, so claims are not one transaction per request. */
  prefetch: number;
  /** Requests in flight per process, all webhooks together. */
  globalConcurrency: number;
  /** How often the database is re-scanned for due work, expired leases and old rows. */
  refreshMs: number;
}

interface Lane {
  id: string;
  queue: Array<{ row: DeliveryRow; webhook: WebhookRow }>;
  inflight: number;
  claiming: boolean;
  /** Requests in flight: their abort handles and delivery ids. */
  controllers: Map<AbortController, string>;
  /** Bumped by every notify, so a claim that raced with new work keeps the lane awake. */
  generation: number;
}

export interface Dispatcher {
  start(): void;
  stop(): Promise<void>;
  /** Work may be due for these webhooks at `at` (default now). */
  notify(webhookIds: Iterable<string>, at?: number): void;
  /** Stops a deleted webhook at once: drops queued work, aborts requests in flight. */
  cancel(webhookId: string): void;
  /** Resolves when nothing is in flight, queued or due now (tests, bench). */
  idle(): Promise<void>;
}

const CANCEL_CHANNEL = 'webhooks.cancel';
const DUE_CHANNEL = 'webhooks.due';

/**
 * Sends deliveries (webhooks.md §4): per webhook a lane with at most `maxInFlight` requests, fed
 * by leases on the delivery table, so a slow receiver only ever occupies its own lane. Results are
 * written back in small group commits; retries are rescheduled on the 17-step schedule.
 */
export function createDispatcher(p: Platform, repo: DeliveriesRepo, options: DispatcherOptions): Dispatcher {
  const { clock, ids, log, secrets, config } = p;
  const owner = `wh:${ids.uuid()}`;
  const timeoutMs = config.webhookTimeoutSeconds * 1000;
  const leaseMs = (Math.ceil(options.prefetch / options.maxInFlight) + 1) * timeoutMs + 30_000;
  const sender = createSender({ allowPrivate: config.allowPrivateWebhookTargets, allowHttp: config.allowHttpWebhooks });
  const lanes = new Map<string, Lane>();
  /** Webhook id → earliest time work may be due. */
  const hints = new Map<string, number>();
  const completions: Completion[] = [];
  let globalInflight = 0;
  let stopped = true;
  let pumpTimer: NodeJS.Timeout | undefined;
  let pumpQueued = false;
  let refreshTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let lastPurge = 0;
  const unsubscribers: Array<() => void> = [];
  const attemptsTotal = new Counter({ name: 'webhook_attempts_total', help: 'Webhook delivery attempts by outcome', labelNames: ['outcome'], registers: [p.metrics] });
  const attemptSeconds = new Histogram({ name: 'webhook_attempt_duration_seconds', help: 'Webhook request duration', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [p.metrics] });

  // Labelled children resolved once (a label lookup per attempt shows in profiles).
  const outcomeCounters = {
    succeeded: attemptsTotal.labels('succeeded'), dropped: attemptsTotal.labels('dropped'), dead: attemptsTotal.labels('dead'), pending: attemptsTotal.labels('retry'),
  };

  const lane = (id: string): Lane => {
    let l = lanes.get(id);
    if (!l) lanes.set(id, (l = { id, queue: [], inflight: 0, claiming: false, controllers: new Map(), generation: 0 }));
    return l;
  };

  function schedulePump(ms = 0): void {
    if (stopped) return;
    if (ms <= 0) {
      if (pumpQueued) return;
      pumpQueued = true;
      setImmediate(() => {
        pumpQueued = false;
        pump();
      });
      return;
    }
    if (pumpTimer) clearTimeout(pumpTimer);
    pumpTimer = setTimeout(() => {
      pumpTimer = undefined;
      pump();
    }, Math.min(ms, options.refreshMs));
  }

  function pump(): void {
    if (stopped) return;
    const now = clock.now();
    let next = Infinity;
    for (const [id, due] of hints) {
      if (due > now) {
        next = Math.min(next, due);
        continue;
      }
      const l = lane(id);
      // Re-fill at half the prefetch, so a lane never waits for its next claim.
      if (!l.claiming && l.queue.length <= options.prefetch / 2) void claim(l);
    }
    for (const l of lanes.values()) drain(l);
    if (next !== Infinity) schedulePump(next - now);
  }

  async function claim(l: Lane): Promise<void> {
    l.claiming = true;
    const generation = l.generation;
    const want = options.prefetch - l.queue.length - l.inflight;
    try {
      const got = want > 0 ? await repo.claim(l.id, owner, want, leaseMs, clock.now()) : { webhook: undefined, rows: [] };
      if (!got) {
        hints.delete(l.id);
        return;
      }
      if (stopped || !hints.has(l.id)) {
        await repo.release(owner, got.rows.map((r) => r.id));
        return;
      }
      for (const row of got.rows) l.queue.push({ row, webhook: got.webhook! });
      // Fewer than asked: nothing else is due now; later retries come back through notify/refresh.
      if (got.rows.length < want && l.generation === generation) hints.delete(l.id);
    } catch (err) {
      log.error({ err, webhookId: l.id }, 'webhook claim failed');
    } finally {
      l.claiming = false;
    }
    drain(l);
  }

  function drain(l: Lane): void {
    while (!stopped && l.inflight < options.maxInFlight && l.queue.length && globalInflight < options.globalConcurrency) {
      const item = l.queue.shift()!;
      l.inflight++;
      globalInflight++;
      void attempt(l, item.row, item.webhook).finally(() => {
        l.inflight--;
        globalInflight--;
        if (!l.claiming && !hints.has(l.id) && l.queue.length + l.inflight === 0) lanes.delete(l.id);
        drain(l);
        schedulePump();
      });
    }
  }

  /** Sealed → plain secrets (decrypting per request costs more than the HMACs). */
  const opened = new Map<string, string>();
  const open = (sealed: string): string => {
    let plain = opened.get(sealed);
    if (plain === undefined) {
      if (opened.size > 10_000) opened.clear();
      opened.set(sealed, (plain = secrets.open(sealed)));
    }
    return plain;
  };
  function secretsOf(w: WebhookRow, now: number): string[] {
    const out: string[] = [];
    if (w.secret) out.push(open(w.secret));
    if (w.previous_secret && Number(w.previous_secret_until ?? 0) > now) out.push(open(w.previous_secret));
    return out;
  }

  async function attempt(l: Lane, row: DeliveryRow, webhook: WebhookRow): Promise<void> {
    const ac = new AbortController();
    l.controllers.set(ac, row.id);
    const n = row.attempts + 1;
    const startedAt = clock.now();
    const t0 = performance.now();
    const body = Buffer.from(row.body, 'utf8');
    const headers = deliveryHeaders({ deliveryId: row.id, attempt: n, timestampSec: Math.floor(startedAt / 1000), body, secrets: secretsOf(webhook, startedAt) });
    const res = await sender.send(webhook.url, headers, body, timeoutMs, ac.signal);
    l.controllers.delete(ac);
    if (ac.signal.aborted) return; // cancelled (webhook deleted) or stopping: the row was released or cancelled
    const outcome = outcomeOf(res.status ?? undefined);
    const c: Completion = { delivery: row, attempt: n, startedAt, durationMs: Math.round(performance.now() - t0), status: res.status, error: res.error, state: 'succeeded' };
    if (outcome === 'dropped') c.state = 'dropped';
    else if (outcome === 'retry') {
      const delay = n >= row.max_attempts ? undefined : retryDelayMs(n, options.retryDelaysMs);
      if (delay === undefined) c.state = 'dead';
      else {
        c.state = 'pending';
        c.retryAt = clock.now() + delay;
      }
    }
    outcomeCounters[c.state].inc();
    attemptSeconds.observe(c.durationMs / 1000);
    completions.push(c);
    scheduleFlush();
  }

  function scheduleFlush(): void {
    // Group commit: request slots are freed at once; results reach the database within ~20 ms.
    if (completions.length >= 500) void flush();
    else if (!flushTimer) flushTimer = setTimeout(() => void flush(), 20);
  }

  async function flush(): Promise<void> {
    if (flushTimer) {
      clearTimeout(flushTimer);
      flushTimer = undefined;
    }
    while (flushing) await flushing;
    if (!completions.length) return;
    const items = completions.splice(0, completions.length);
    flushing = (async () => {
      try {
        await repo.complete(owner, items, clock.now());
        for (const c of items) if (c.state === 'pending') notify([c.delivery.webhook_id], c.retryAt);
      } catch (err) {
        // The leases expire and the deliveries are attempted again: at least once.
        log.error({ err, count: items.length }, 'could not record webhook attempts');
      } finally {
        flushing = undefined;
      }
    })();
    await flushing;
  }

  async function refresh(): Promise<void> {
    const now = clock.now();
    try {
      await repo.reclaimExpired(now);
      for (const { id, due } of await repo.dueByWebhook()) {
        const l = lanes.get(id);
        // A lane with leased work of its own re-claims when it runs low; do not disturb it.
        if (l && (l.queue.length || l.claiming)) continue;
        hints.set(id, Math.min(hints.get(id) ?? Infinity, due));
      }
      if (now - lastPurge > 3600_000) {
        lastPurge = now;
        await repo.purge(now);
      }
    } catch (err) {
      log.error({ err }, 'webhook refresh failed');
    }
    pump();
  }

  function notify(webhookIds: Iterable<string>, at = clock.now()): void {
    for (const id of webhookIds) {
      hints.set(id, Math.min(hints.get(id) ?? Infinity, at));
      const l = lanes.get(id);
      if (l) l.generation++;
    }
    schedulePump(at - clock.now());
  }

  function cancelLocal(webhookId: string): void {
    hints.delete(webhookId);
    const l = lanes.get(webhookId);
    if (!l) return;
    l.queue = [];
    for (const ac of l.controllers.keys()) ac.abort();
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      unsubscribers.push(p.bus.subscribe(CANCEL_CHANNEL, (m) => cancelLocal(String((m as { webhookId: string }).webhookId))));
      unsubscribers.push(p.bus.subscribe(DUE_CHANNEL, (m) => notify((m as { webhookIds: string[] }).webhookIds)));
      const loop = async () => {
        await refresh();
        if (!stopped) refreshTimer = setTimeout(() => void loop(), options.refreshMs);
      };
      void loop();
    },
    async stop() {
      stopped = true;
      for (const u of unsubscribers.splice(0)) u();
      if (refreshTimer) clearTimeout(refreshTimer);
      if (pumpTimer) clearTimeout(pumpTimer);
      // Requests in flight get a short grace, then are aborted; their leases are given back.
      const deadline = Date.now() + 2000;
      while (globalInflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const unsent: string[] = [];
      for (const l of lanes.values()) {
        for (const q of l.queue) unsent.push(q.row.id);
        l.queue = [];
        for (const [ac, id] of l.controllers) {
          unsent.push(id);
          ac.abort();
        }
      }
      await flush();
      await repo.release(owner, unsent).catch(() => {});
      sender.close();
    },
    notify(webhookIds, at) {
      const list = [...webhookIds];
      notify(list, at);
      // Other processes may hold the lanes of these webhooks (multi-process deployments).
      if (p.config.redisUrl) p.bus.publish(DUE_CHANNEL, { webhookIds: list });
    },
    cancel(webhookId) {
      p.bus.publish(CANCEL_CHANNEL, { webhookId });
      cancelLocal(webhookId);
    },
    async idle() {
      for (;;) {
        await flush();
        const now = clock.now();
        const due = [...hints.values()].some((t) => t <= now);
        const busy = globalInflight > 0 || completions.length > 0 || [...lanes.values()].some((l) => l.queue.length || l.claiming);
        if (!due && !busy) return;
        pump();
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}
