import { setImmediate as nextTurn } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { Platform } from '../../platform.js';
import type { Tx } from '../../storage/db.js';
import type { StoredEvent } from '../../events/log.js';
import { EVENTS_CHANNEL } from '../../events/log.js';
import { fromJson } from '../../storage/dialect.js';
import { iso } from '../../lib/clock.js';
import { eventType, toWebhookEnvelope } from '../../events/catalogue.js';
import type { WebhookRow } from './webhooks.migrations.js';
import type { DeliveriesRepo, NewDelivery } from './deliveries.repo.js';
import { matches, type Subscription } from './subscriptions.js';

/** Appends in this process wake the fan-out this much later, so a burst is consumed in one step. */
const GATHER_MS = 5;
/** How often a cursor moved without a transaction (`skip`) is stored. */
const SAVE_SKIPPED_MS = 1000;

export const CONSUMER = 'webhooks';

export interface FanoutOptions {
  /** Events read per transaction. */
  batchSize: number;
  /** How long an id gap must persist before the fan-out moves past it (see ADR 0004). */
  gapWaitMs: number;
  /** How long a skipped id is re-checked for a late commit before it is forgotten. */
  holeTtlMs: number;
  /**
   * How often the log is read with nothing waking the fan-out. Appends in another process wake it
   * through Redis, or on SQLite as that process's commits to the file (`onCommitElsewhere`);
   * without either (several processes on PostgreSQL without Redis) this poll is what finds them.
   */
  idlePollMs: number;
}

export interface Fanout {
  start(): void;
  stop(): Promise<void>;
  kick(): void;
  /** Runs until the log is consumed as far as it can be now (tests, bench). */
  drain(): Promise<void>;
}

/**
 * The durable consumer of the event log (webhooks.md §4.5): reads events by increasing id with a
 * stored cursor and, in the same transaction that advances the cursor, persists one delivery per
 * matching (event, webhook) — or a batch item for batching webhooks — so nothing is lost or
 * doubled across restarts. Batches are cut here too, under the same cursor lock.
 */
export function createFanout(p: Platform, repo: DeliveriesRepo, onQueued: (webhookIds: Iterable<string>) => void, options: FanoutOptions): Fanout {
  const { clock, ids, log, events } = p;
  let stopped = true;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  /** First time (monotonic ms) the fan-out saw a gap starting at this id. */
  const gaps = new Map<number, number>();
  let nextBatchDue: number | undefined;
  let lastHoleCheck = 0;
  /** Whether `webhook_fanout_holes` may hold ids still to watch (true at start: unknown). */
  let holesKnown = true;
  let timerDue = Infinity;
  let cursorRowReady = false;
  /**
   * How far `skip` has read past the stored cursor: events no webhook can want, consumed without
   * a write transaction. Stored at most every SAVE_SKIPPED_MS (a restart re-reads the rest, which
   * the same rules skip again or deliver to a webhook created since).
   */
  let skipped = 0;
  let skipSave: NodeJS.Timeout | undefined;

  type Live = WebhookRow & { subs: Subscription[]; previous: Subscription[] | null };
  async function loadWebhooks(tx: Tx, spaces: string[]): Promise<Map<string, Live[]>> {
    const out = new Map<string, Live[]>();
    if (!spaces.length) return out;
    const rows = await tx.selectFrom('webhooks').selectAll().where('api_space_id', 'in', spaces).where('deleted_on', 'is', null).execute();
    for (const r of rows) {
      const live: Live = { ...r, subs: fromJson<Subscription[]>(r.subscriptions), previous: r.previous_subscriptions === null ? null : fromJson<Subscription[]>(r.previous_subscriptions) };
      out.set(r.api_space_id, [...(out.get(r.api_space_id) ?? []), live]);
    }
    return out;
  }

  /** The prefix of `batch` that can be consumed now; records holes for gaps that aged out. */
  async function consumable(tx: Tx, position: number, batch: StoredEvent[], now: number): Promise<StoredEvent[]> {
    // Every gap in the batch starts ageing when first seen, so several gaps wait concurrently.
    const t = performance.now();
    let prev = position;
    for (const e of batch) {
      if (e.id > prev + 1 && !gaps.has(prev + 1)) gaps.set(prev + 1, t);
      prev = e.id;
    }
    const out: StoredEvent[] = [];
    let expected = position + 1;
    for (const e of batch) {
      if (e.id > expected) {
        const age = t - (gaps.get(expected) ?? t);
        if (age < options.gapWaitMs) {
          schedule(options.gapWaitMs - age);
          break;
        }
        const missing = Math.min(e.id - expected, 10_000);
        if (e.id - expected > missing) log.warn({ from: expected, to: e.id - 1 }, 'webhook fan-out: very large id gap; only the first 10000 ids are watched for late commits');
        const holes = Array.from({ length: missing }, (_, i) => ({ seq: expected + i, seen_at: now }));
        for (let i = 0; i < holes.length; i += 500) await tx.insertInto('webhook_fanout_holes').values(holes.slice(i, i + 500)).onConflict((oc) => oc.doNothing()).execute();
        holesKnown = true;
        schedule(500);
      }
      out.push(e);
      expected = e.id + 1;
    }
    for (const k of gaps.keys()) if (k < expected) gaps.delete(k);
    return out;
  }

  /** Events that committed after the fan-out moved past their id (checked at most twice a second). */
  async function lateEvents(tx: Tx, now: number): Promise<StoredEvent[]> {
    const since = performance.now() - lastHoleCheck;
    if (since < 500) {
      if (holesKnown) schedule(500 - since);
      return [];
    }
    lastHoleCheck = performance.now();
    const holes = await tx.selectFrom('webhook_fanout_holes').selectAll().orderBy('seq').limit(1000).execute();
    holesKnown = holes.length > 0;
    if (!holes.length) return [];
    const rows = await tx.selectFrom('events').selectAll().where('id', 'in', holes.map((h) => Number(h.seq))).orderBy('id').execute();
    const found = rows.map((r): StoredEvent => ({
      id: Number(r.id), apiSpaceId: r.api_space_id, accountId: r.account_id, name: r.name, payload: fromJson(r.payload),
      meta: fromJson<Record<string, unknown>>(r.meta) ?? {}, createdOn: r.created_on,
    }));
    const done = [...found.map((e) => e.id), ...holes.filter((h) => Number(h.seen_at) < now - options.holeTtlMs).map((h) => Number(h.seq))];
    if (done.length) await tx.deleteFrom('webhook_fanout_holes').where('seq', 'in', done).execute();
    holesKnown = done.length < holes.length;
    // Keep looking while holes are open: a late commit in another process may not wake us.
    if (holesKnown) schedule(500);
    if (found.length) log.info({ count: found.length }, 'webhook fan-out: events committed out of order picked up late');
    return found;
  }

  async function cutBatches(tx: Tx, now: number, touched: Set<string>): Promise<void> {
    const pending = await tx.selectFrom('webhook_batch_items')
      .select(['webhook_id', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.min('created_at').as('oldest')])
      .groupBy('webhook_id').execute();
    if (!pending.length) return;
    const hooks = await tx.selectFrom('webhooks').select(['id', 'max_batch_size', 'batch_timeout_ms']).where('id', 'in', pending.map((r) => r.webhook_id)).execute();
    const byId = new Map(hooks.map((h) => [h.id, h]));
    for (const r of pending) {
      const h = byId.get(r.webhook_id);
      if (!h) continue;
      let left = Number(r.n);
      const dueAt = Number(r.oldest) + Number(h.batch_timeout_ms);
      while (left >= h.max_batch_size || (left > 0 && dueAt <= now)) {
        const items = await tx.selectFrom('webhook_batch_items').selectAll().where('webhook_id', '=', h.id).orderBy('id').limit(h.max_batch_size).execute();
        if (!items.length) break;
        const first = items[0]!;
        await repo.insert(tx, [{
          id: ids.uuid(), apiSpaceId: first.api_space_id, webhookId: h.id, seq: Number(first.seq), now,
          events: items.map((i) => ({ eventId: i.event_id, name: i.name })), body: `[${items.map((i) => i.envelope).join(',')}]`,
        }]);
        await tx.deleteFrom('webhook_batch_items').where('webhook_id', '=', h.id).where('id', '<=', items[items.length - 1]!.id).execute();
        touched.add(h.id);
        left -= items.length;
      }
      if (left > 0) nextBatchDue = Math.min(nextBatchDue ?? Infinity, dueAt);
    }
  }

  /**
   * The common case without a transaction: the next events belong to spaces without webhooks, no
   * id gap is open among them and nothing else is pending (late events, batches to cut). Then
   * nothing is written but the cursor, later. Returns whether more events may be waiting, or
   * undefined when the full step must run. On SQLite this keeps the fan-out from taking the
   * write lock after every burst of appends, which other writers (an API process) waited for.
   */
  async function skip(): Promise<boolean | undefined> {
    if (holesKnown || nextBatchDue !== undefined) return undefined;
    const stored = await p.events.cursor(CONSUMER);
    const position = Math.max(stored, skipped);
    const batch = await events.readAfter(position, options.batchSize, p.db, { payloads: false });
    let expected = position + 1;
    for (const e of batch) {
      if (e.id !== expected) return undefined;
      expected++;
    }
    // Batch items left by any process are cut by the full step.
    if ((await p.db.selectFrom('webhook_batch_items').select('id').limit(1).execute()).length) return undefined;
    if (!batch.length) return false;
    const spaces = [...new Set(batch.map((e) => e.apiSpaceId))];
    if ((await p.db.selectFrom('webhooks').select('id').where('api_space_id', 'in', spaces).where('deleted_on', 'is', null).limit(1).execute()).length) return undefined;
    skipped = batch[batch.length - 1]!.id;
    skipSave ??= setTimeout(() => {
      skipSave = undefined;
      void saveSkipped().catch((err) => log.warn({ err }, 'webhook fan-out: could not store its cursor'));
    }, SAVE_SKIPPED_MS);
    return batch.length === options.batchSize;
  }

  /** Stores how far `skip` read (never moving the cursor back: another process may be further). */
  async function saveSkipped(): Promise<void> {
    const position = skipped;
    await p.db.updateTable('event_cursors').set({ position, updated_on: iso(clock.now()) })
      .where('consumer', '=', CONSUMER).where('position', '<', position).execute();
  }

  /** One transaction: returns whether more events may be waiting. */
  async function step(): Promise<boolean> {
    const touched = new Set<string>();
    let more = false;
    if (!cursorRowReady) {
      await p.db.insertInto('event_cursors').values({ consumer: CONSUMER, position: 0, updated_on: iso(clock.now()) }).onConflict((oc) => oc.doNothing()).execute();
      cursorRowReady = true;
    }
    const fast = await skip();
    if (fast !== undefined) return fast;
    const locked = await p.transaction(async (uow) => {
      const tx = uow.tx;
      const stored = await repo.lockCursor(tx, CONSUMER);
      if (stored === undefined) return false;
      const position = Math.max(stored, skipped);
      const now = clock.now();
      const late = await lateEvents(tx, now);
      // Payloads are read only for events a webhook of their space may want: most spaces have
      // none, and parsing every payload was a large share of the fan-out's work.
      const batch = await events.readAfter(position, options.batchSize, tx, { payloads: false });
      const take = await consumable(tx, position, batch, now);
      more = take.length === options.batchSize;
      const hooks = await loadWebhooks(tx, [...new Set([...late, ...take].map((e) => e.apiSpaceId))]);
      await events.loadPayloads(take.filter((e) => hooks.has(e.apiSpaceId) && eventType(e.name)), tx);
      const all = [...late, ...take];
      const deliveries: NewDelivery[] = [];
      const items: Array<{ api_space_id: string; webhook_id: string; seq: number; event_id: string; name: string; envelope: string; created_at: number }> = [];
      for (const e of all) {
        const candidates = hooks.get(e.apiSpaceId);
        // Only catalogue events leave the server (typing and other internal events never do).
        if (!candidates || !eventType(e.name)) continue;
        const envelope = toWebhookEnvelope(e);
        let body: string | undefined;
        for (const w of candidates) {
          // Webhooks see the events raised after they were created, with the subscriptions in force
          // when the event was raised (webhooks.md §2; one change of history is kept).
          if (w.created_on > e.createdOn) continue;
          const subs = w.previous && w.subscriptions_changed_on && e.createdOn < w.subscriptions_changed_on ? w.previous : w.subs;
          if (!matches(subs, envelope)) continue;
          body ??= JSON.stringify(envelope);
          touched.add(w.id);
          if (w.batch) items.push({ api_space_id: e.apiSpaceId, webhook_id: w.id, seq: e.id, event_id: envelope.eventId, name: e.name, envelope: body, created_at: now });
          else deliveries.push({ id: ids.uuid(), apiSpaceId: e.apiSpaceId, webhookId: w.id, seq: e.id, events: [{ eventId: envelope.eventId, name: e.name }], body, now });
        }
      }
      await repo.insert(tx, deliveries);
      for (let i = 0; i < items.length; i += 500) await tx.insertInto('webhook_batch_items').values(items.slice(i, i + 500)).execute();
      nextBatchDue = undefined;
      await cutBatches(tx, now, touched);
      const last = take[take.length - 1];
      if (last) await events.saveCursor(CONSUMER, last.id, tx);
      return true;
    });
    if (!locked) {
      schedule(200);
      return false;
    }
    if (touched.size) onQueued(touched);
    if (nextBatchDue !== undefined) schedule(Math.max(0, nextBatchDue - clock.now()));
    return more;
  }

  /** Wakes the fan-out in `ms` unless an earlier wake-up is already set. */
  function schedule(ms: number): void {
    if (stopped) return;
    const due = performance.now() + ms;
    if (timer && timerDue <= due) return;
    if (timer) clearTimeout(timer);
    timerDue = due;
    timer = setTimeout(() => {
      timer = undefined;
      timerDue = Infinity;
      kick();
    }, ms);
  }

  function kick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      try {
        do {
          again = false;
          // One step per event-loop turn: on SQLite a step completes without waiting for I/O,
          // so a backlog consumed step after step would keep requests from being read.
          while (!stopped && (await step())) await nextTurn();
        } while (again && !stopped);
      } catch (err) {
        log.error({ err }, 'webhook fan-out failed');
        schedule(1000);
      } finally {
        running = undefined;
        schedule(options.idlePollMs);
      }
    })();
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      // Appends wake it within GATHER_MS, so a burst of commits is read in one step. The bus
      // carries this process's appends (at once, one message per event) and other processes'
      // (through Redis); a step per message would re-read the log only to find it consumed.
      const fromBus = p.bus.subscribe(EVENTS_CHANNEL, () => schedule(GATHER_MS));
      // On SQLite without Redis, another process's appends show as its commits to the file.
      const fromFile = p.handle.onCommitElsewhere?.(() => schedule(GATHER_MS));
      unsubscribe = () => {
        fromBus();
        fromFile?.();
      };
      kick();
    },
    async stop() {
      stopped = true;
      unsubscribe?.();
      if (timer) clearTimeout(timer);
      timer = undefined;
      timerDue = Infinity;
      await running;
      if (skipSave) {
        clearTimeout(skipSave);
        skipSave = undefined;
        await saveSkipped().catch((err) => log.warn({ err }, 'webhook fan-out: could not store its cursor'));
      }
    },
    kick,
    async drain() {
      while (running) await running;
      while (await step());
    },
  };
}
