import type { Db } from '../storage/db.js';
import type { EventBus } from '../events/bus.js';
import { TtlCache } from '../lib/cache.js';

export interface SpaceRef {
  id: string;
  accountId: number;
  name: string;
}

/** Cached look-up of live API spaces for the per-request auth check. */
export interface SpaceDirectory {
  get(id: string): Promise<SpaceRef | undefined>;
  invalidate(id: string): void;
}

const CHANNEL = 'spaces.invalidate';

export function createSpaceDirectory(deps: { db: Db; bus: EventBus; now: () => number }): SpaceDirectory {
  const cache = new TtlCache<string, SpaceRef | null>(5_000, 20_000, deps.now);
  deps.bus.subscribe(CHANNEL, (id) => cache.delete(String(id)));
  return {
    async get(id) {
      const hit = cache.get(id);
      if (hit !== undefined) return hit ?? undefined;
      const row = await deps.db
        .selectFrom('api_spaces')
        .select(['id', 'account_id', 'name'])
        .where('id', '=', id)
        .where('deleted_on', 'is', null)
        .executeTakeFirst();
      const ref = row ? { id: row.id, accountId: row.account_id, name: row.name } : null;
      cache.set(id, ref);
      return ref ?? undefined;
    },
    invalidate(id) {
      cache.delete(id);
      deps.bus.publish(CHANNEL, id);
    },
  };
}
