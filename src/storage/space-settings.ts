import type { Db, Tx } from './db.js';
import { iso, type Clock } from '../lib/clock.js';

export interface Setting<T> {
  value: T;
  revision: number;
  updatedOn: string;
  updatedBy: string;
}

/**
 * Small per-space JSON documents (auth config, push credentials, retention, opt-in defaults,
 * chat configuration…) keyed by name. Secrets inside values are sealed by the caller.
 */
export interface SpaceSettings {
  get<T>(apiSpaceId: string, key: string, ex?: Db | Tx): Promise<Setting<T> | undefined>;
  put<T>(apiSpaceId: string, key: string, value: T, actor: string, ex?: Db | Tx): Promise<Setting<T>>;
  delete(apiSpaceId: string, key: string, ex?: Db | Tx): Promise<boolean>;
  /**
   * Read-modify-write without lost updates: `fn` gets the current value (undefined when unset) and
   * returns the next one, or `undefined` to delete the document. Retried when another writer won.
   */
  update<T>(apiSpaceId: string, key: string, actor: string, fn: (current: T | undefined) => T | undefined): Promise<Setting<T> | undefined>;
}

export function createSpaceSettings(db: Db, clock: Clock): SpaceSettings {
  return {
    async get<T>(apiSpaceId: string, key: string, ex: Db | Tx = db) {
      const row = await ex.selectFrom('space_settings').selectAll().where('api_space_id', '=', apiSpaceId).where('key', '=', key).executeTakeFirst();
      return row ? { value: JSON.parse(row.value) as T, revision: row.revision, updatedOn: row.updated_on, updatedBy: row.updated_by } : undefined;
    },
    async put<T>(apiSpaceId: string, key: string, value: T, actor: string, ex: Db | Tx = db) {
      const updatedOn = iso(clock.now());
      const text = JSON.stringify(value);
      const row = await ex
        .insertInto('space_settings')
        .values({ api_space_id: apiSpaceId, key, value: text, revision: 1, updated_on: updatedOn, updated_by: actor })
        .onConflict((oc) =>
          oc.columns(['api_space_id', 'key']).doUpdateSet((eb) => ({ value: text, revision: eb(eb.ref('space_settings.revision'), '+', 1), updated_on: updatedOn, updated_by: actor })),
        )
        .returning('revision')
        .executeTakeFirstOrThrow();
      return { value, revision: row.revision, updatedOn, updatedBy: actor };
    },
    async delete(apiSpaceId, key, ex = db) {
      const res = await ex.deleteFrom('space_settings').where('api_space_id', '=', apiSpaceId).where('key', '=', key).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    },
    async update<T>(apiSpaceId: string, key: string, actor: string, fn: (current: T | undefined) => T | undefined) {
      for (let attempt = 0; ; attempt++) {
        if (attempt === 5) throw new Error(`space setting ${key} kept changing under concurrent writers`);
        const current = await this.get<T>(apiSpaceId, key);
        const next = fn(current?.value);
        if (next === undefined) {
          if (!current) return undefined;
          const res = await db.deleteFrom('space_settings').where('api_space_id', '=', apiSpaceId).where('key', '=', key)
            .where('revision', '=', current.revision).executeTakeFirst();
          if (Number(res.numDeletedRows) === 1) return undefined;
          continue;
        }
        const updatedOn = iso(clock.now());
        const text = JSON.stringify(next);
        if (!current) {
          const res = await db.insertInto('space_settings')
            .values({ api_space_id: apiSpaceId, key, value: text, revision: 1, updated_on: updatedOn, updated_by: actor })
            .onConflict((oc) => oc.columns(['api_space_id', 'key']).doNothing()).executeTakeFirst();
          if (Number(res.numInsertedOrUpdatedRows ?? 0) === 1) return { value: next, revision: 1, updatedOn, updatedBy: actor };
          continue;
        }
        const revision = current.revision + 1;
        const res = await db.updateTable('space_settings').set({ value: text, revision, updated_on: updatedOn, updated_by: actor })
          .where('api_space_id', '=', apiSpaceId).where('key', '=', key).where('revision', '=', current.revision).executeTakeFirst();
        if (Number(res.numUpdatedRows) === 1) return { value: next, revision, updatedOn, updatedBy: actor };
      }
    },
  };
}
