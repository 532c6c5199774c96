/**
 * Daily retention purges for the content and templates modules (spaces-and-billing.md §5): a
 * de-duplicated durable job per kind, enqueued every few hours by whichever process runs workers.
 */
import type { ModuleContext } from '../module.js';

const DAY_MS = 86_400_000;
const EVERY_MS = 6 * 3_600_000;

/** The space's retention in days for `key` (API-space retention settings), null = keep forever. */
export function retentionReader(ctx: ModuleContext, key: string, fallback: number) {
  return async (apiSpaceId: string): Promise<number | null> => {
    const stored = await ctx.services.settings.get<Record<string, number | null>>(apiSpaceId, 'retention');
    const v = stored?.value?.[key];
    return v === null ? null : typeof v === 'number' && v >= 1 ? v : fallback;
  };
}

/** Starts the periodic enqueue of `kind`; returns a stop function. */
export function schedulePurge(ctx: ModuleContext, kind: string): () => void {
  const enqueue = () => {
    // One live job per kind and day across all processes.
    const day = Math.floor(ctx.clock.now() / DAY_MS);
    void ctx.queue.enqueueNow({ kind, payload: { v: 1 }, dedupeKey: `${kind}:${day}`, maxAttempts: 3 }).catch((err) => ctx.log.warn({ err, kind }, 'could not schedule a purge'));
  };
  enqueue();
  const timer = setInterval(enqueue, EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
