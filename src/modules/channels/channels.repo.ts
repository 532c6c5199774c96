import type { Db, Tx } from '../../storage/db.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import type { ChannelLimits } from './channels.contract.js';

export interface ChannelConfigRow {
  api_space_id: string;
  channel_id: string;
  enabled: number;
  provider: string;
  /** Settings without the secret values (JSON object). */
  settings: unknown;
  /** Sealed JSON object `{ "<dot path>": value }` of the secret settings, or null. */
  secrets: string | null;
  /** Dispatch limits (JSON object text), or null. */
  limits: string | null;
  revision: number;
  created_on: string;
  created_by: string;
  updated_on: string;
  updated_by: string;
}

export interface TrackedLinkRow {
  token: string;
  api_space_id: string;
  message_id: string;
  channel_id: string;
  url: string;
  metadata: unknown;
  created_on: string;
}

declare module '../../storage/schema.js' {
  interface Database {
    channel_configs: ChannelConfigRow;
    tracked_links: TrackedLinkRow;
  }
}

export interface StoredConfig {
  apiSpaceId: string;
  channelId: string;
  enabled: boolean;
  provider: string;
  settings: Record<string, unknown>;
  secrets: string | null;
  limits?: ChannelLimits;
  revision: number;
  createdOn: string;
  createdBy: string;
  updatedOn: string;
  updatedBy: string;
}

const toStored = (r: ChannelConfigRow): StoredConfig => ({
  apiSpaceId: r.api_space_id, channelId: r.channel_id, enabled: r.enabled === 1, provider: r.provider,
  settings: fromJson<Record<string, unknown>>(r.settings) ?? {}, secrets: r.secrets, revision: r.revision,
  ...(r.limits ? { limits: fromJson<ChannelLimits>(r.limits) } : {}),
  createdOn: r.created_on, createdBy: r.created_by, updatedOn: r.updated_on, updatedBy: r.updated_by,
});

/** Channel configuration rows; every method takes the API space id first. */
export function createChannelsRepo(db: Db) {
  return {
    async list(apiSpaceId: string): Promise<StoredConfig[]> {
      const rows = await db.selectFrom('channel_configs').selectAll().where('api_space_id', '=', apiSpaceId).orderBy('channel_id').limit(5000).execute();
      return rows.map(toStored);
    },
    /** Enabled configurations of a provider across all spaces (optionally of one channel). */
    async enabledByProvider(provider: string, channelId?: string): Promise<Array<{ apiSpaceId: string; channelId: string }>> {
      let q = db.selectFrom('channel_configs').select(['api_space_id', 'channel_id']).where('provider', '=', provider).where('enabled', '=', 1);
      if (channelId !== undefined) q = q.where('channel_id', '=', channelId);
      const rows = await q.orderBy('api_space_id').orderBy('channel_id').execute();
      return rows.map((r) => ({ apiSpaceId: r.api_space_id, channelId: r.channel_id }));
    },
    async get(apiSpaceId: string, channelId: string, ex: Db | Tx = db): Promise<StoredConfig | undefined> {
      const row = await ex.selectFrom('channel_configs').selectAll().where('api_space_id', '=', apiSpaceId).where('channel_id', '=', channelId).executeTakeFirst();
      return row ? toStored(row) : undefined;
    },
    /** Inserts a new configuration; a concurrent insert surfaces as a unique violation. */
    async insert(ex: Db | Tx, c: StoredConfig): Promise<void> {
      await ex.insertInto('channel_configs').values({
        api_space_id: c.apiSpaceId, channel_id: c.channelId, enabled: c.enabled ? 1 : 0, provider: c.provider, settings: toJson(c.settings),
        secrets: c.secrets, limits: c.limits ? toJson(c.limits) : null, revision: c.revision, created_on: c.createdOn, created_by: c.createdBy, updated_on: c.updatedOn, updated_by: c.updatedBy,
      }).execute();
    },
    /** Replaces a configuration at `expectedRevision`; false when another write got there first. */
    async replace(ex: Db | Tx, c: StoredConfig, expectedRevision: number): Promise<boolean> {
      const res = await ex.updateTable('channel_configs').set({
        enabled: c.enabled ? 1 : 0, provider: c.provider, settings: toJson(c.settings), secrets: c.secrets, limits: c.limits ? toJson(c.limits) : null, revision: c.revision,
        updated_on: c.updatedOn, updated_by: c.updatedBy,
      }).where('api_space_id', '=', c.apiSpaceId).where('channel_id', '=', c.channelId).where('revision', '=', expectedRevision).executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    },
    async remove(ex: Db | Tx, apiSpaceId: string, channelId: string, expectedRevision: number): Promise<boolean> {
      const res = await ex.deleteFrom('channel_configs').where('api_space_id', '=', apiSpaceId).where('channel_id', '=', channelId).where('revision', '=', expectedRevision).executeTakeFirst();
      return Number(res.numDeletedRows) === 1;
    },
    async insertLink(row: TrackedLinkRow): Promise<void> {
      await db.insertInto('tracked_links').values(row).execute();
    },
    async getLink(token: string): Promise<TrackedLinkRow | undefined> {
      return db.selectFrom('tracked_links').selectAll().where('token', '=', token).executeTakeFirst();
    },
  };
}

export type ChannelsRepo = ReturnType<typeof createChannelsRepo>;
