import type { Db } from '../../storage/db.js';
import type { PartStore, SenderStore } from '../../channels/sms/sms-common.js';

export interface SmsPartRow {
  api_space_id: string;
  provider_id: string;
  message_id: string;
  /** JSON array of every part's provider id, in order. */
  part_ids: string;
  state: string;
  created_at: number;
}

export interface SmsSenderRow {
  api_space_id: string;
  recipient: string;
  sender: string;
  used_at: number;
}

declare module '../../storage/schema.js' {
  interface Database {
    sms_parts: SmsPartRow;
    sms_senders: SmsSenderRow;
  }
}

/** Multi-part receipt tracking on the database (survives restarts and other processes). */
export function dbPartStore(db: Db, now: () => number): PartStore {
  return {
    async record(apiSpaceId, messageId, ids) {
      const partIds = JSON.stringify(ids);
      const at = now();
      await db.insertInto('sms_parts')
        .values(ids.map((id) => ({ api_space_id: apiSpaceId, provider_id: id, message_id: messageId, part_ids: partIds, state: 'pending', created_at: at })))
        .onConflict((oc) => oc.columns(['api_space_id', 'provider_id']).doUpdateSet({ message_id: messageId, part_ids: partIds, state: 'pending', created_at: at }))
        .execute();
    },
    async settle(apiSpaceId, providerId, state) {
      const row = await db.selectFrom('sms_parts').select(['message_id', 'part_ids']).where('api_space_id', '=', apiSpaceId).where('provider_id', '=', providerId).executeTakeFirst();
      if (!row) return undefined;
      await db.updateTable('sms_parts').set({ state }).where('api_space_id', '=', apiSpaceId).where('provider_id', '=', providerId).execute();
      const ids = JSON.parse(row.part_ids) as string[];
      if (ids.length === 1) return { messageId: row.message_id, states: [state] };
      const rows = await db.selectFrom('sms_parts').select(['provider_id', 'state']).where('api_space_id', '=', apiSpaceId).where('provider_id', 'in', ids).execute();
      const by = new Map(rows.map((r) => [r.provider_id, r.state]));
      return { messageId: row.message_id, states: ids.map((id) => by.get(id) ?? 'pending') };
    },
  };
}

export function dbSenderStore(db: Db): SenderStore {
  return {
    async get(apiSpaceId, to, notBefore) {
      const row = await db.selectFrom('sms_senders').select(['sender', 'used_at']).where('api_space_id', '=', apiSpaceId).where('recipient', '=', to).executeTakeFirst();
      return row && Number(row.used_at) >= notBefore ? row.sender : undefined;
    },
    async put(apiSpaceId, to, from, at) {
      await db.insertInto('sms_senders').values({ api_space_id: apiSpaceId, recipient: to, sender: from, used_at: at })
        .onConflict((oc) => oc.columns(['api_space_id', 'recipient']).doUpdateSet({ sender: from, used_at: at })).execute();
    },
  };
}
