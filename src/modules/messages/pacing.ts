/**
 * Pacing of a channel's sends (`limits.messagesPerSecond`, one-api.md §4.3 item 4): every send
 * takes the next free slot of its (API space, channel) from one row that all worker processes on
 * the database share, the slots 1/rate apart. Sends that ask in the same turn take their slots
 * together, in one statement.
 */
import { CompiledQuery } from 'kysely';
import type { Clock } from '../../lib/clock.js';
import type { Db, DialectName } from '../../storage/db.js';

export interface Pacer {
  /**
   * When one send of the channel may go (milliseconds since the epoch), at most `perSecond` a
   * second: now, or later when earlier sends have taken the slots until then.
   */
  slot(apiSpaceId: string, channelId: string, perSecond: number): Promise<number>;
}

/** Slots are counted in microseconds, so that rates above 1,000 a second keep their spacing. */
const US_PER_SECOND = 1_000_000;

/**
 * Takes `count` slots in one statement and returns the first one's time (µs): the row's next free
 * time moves on by `span`, from now when it lies in the past.
 */
function takeStatement(dialect: DialectName, apiSpaceId: string, channelId: string, nowUs: number, spanUs: number): CompiledQuery {
  if (dialect === 'postgres') {
    return CompiledQuery.raw(
      'INSERT INTO channel_pacing (api_space_id, channel_id, next_at) VALUES ($1, $2, $3::bigint + $4::bigint) '
      + 'ON CONFLICT (api_space_id, channel_id) DO UPDATE SET next_at = greatest(channel_pacing.next_at, $3::bigint) + $4::bigint RETURNING next_at',
      [apiSpaceId, channelId, nowUs, spanUs],
    );
  }
  return CompiledQuery.raw(
    'INSERT INTO channel_pacing (api_space_id, channel_id, next_at) VALUES (?, ?, ? + ?) '
    + 'ON CONFLICT (api_space_id, channel_id) DO UPDATE SET next_at = max(channel_pacing.next_at, ?) + ? RETURNING next_at',
    [apiSpaceId, channelId, nowUs, spanUs, nowUs, spanUs],
  );
}

export function createPacer(db: Db, dialect: DialectName, clock: Clock): Pacer {
  interface Asking {
    apiSpaceId: string;
    channelId: string;
    perSecond: number;
    waiting: Array<{ resolve(at: number): void; reject(err: unknown): void }>;
  }
  const asking = new Map<string, Asking>();

  async function take(a: Asking): Promise<void> {
    const step = US_PER_SECOND / a.perSecond;
    const count = a.waiting.length;
    // Rounded up: the sends never go faster than the limit.
    const span = Math.ceil(count * step);
    try {
      const { rows } = await db.executeQuery<{ next_at: number | string }>(takeStatement(dialect, a.apiSpaceId, a.channelId, clock.now() * 1000, span));
      const start = Number(rows[0]!.next_at) - span;
      a.waiting.forEach((w, i) => w.resolve(Math.ceil((start + i * step) / 1000)));
    } catch (err) {
      for (const w of a.waiting) w.reject(err);
    }
  }

  return {
    slot(apiSpaceId, channelId, perSecond) {
      const key = `${apiSpaceId}\u0000${channelId}\u0000${perSecond}`;
      return new Promise<number>((resolve, reject) => {
        let a = asking.get(key);
        if (!a) {
          const mine: Asking = (a = { apiSpaceId, channelId, perSecond, waiting: [] });
          asking.set(key, mine);
          // The sends of one dispatch group ask in one synchronous stretch: a microtask sees them all.
          queueMicrotask(() => {
            asking.delete(key);
            void take(mine);
          });
        }
        a.waiting.push({ resolve, reject });
      });
    },
  };
}
