/** Message history of a profile (one-api.md §3.9): outbound and inbound, newest first. */
import { errors } from '../../http/errors.js';
import { iso, parseDateTime } from '../../lib/clock.js';
import { fromJson } from '../../storage/dialect.js';
import type { ModuleContext } from '../module.js';
import type { Ports } from './dispatch.js';
import { historyStatus } from './lifecycle.js';

export interface HistoryQuery {
  from?: string;
  limit?: number;
  channelId?: string;
  direction?: string;
  conversationId?: string;
}

export type HistoryEntry = {
  messageId: string;
  submittedOn: string;
  profileId: string | null;
  channelId: string | null;
  direction: 'inbound' | 'outbound';
  status: string;
  message: { title?: string; body?: string; channelData?: Record<string, unknown> };
};

export function createHistory(ctx: ModuleContext, ports: Ports) {
  const { db } = ctx;
  return async function history(apiSpaceId: string, profileId: string, q: HistoryQuery): Promise<HistoryEntry[]> {
    const limit = q.limit ?? 20;
    const before = q.from === undefined ? Number.MAX_SAFE_INTEGER : parseDateTime(q.from);
    if (before === undefined) throw errors.invalidField('query.from', 'Must be an RFC 3339 date-time');
    // Pending batch envelopes first: expanding them may create the profile (a send to it).
    await ports.batches?.()?.ensureSpace(apiSpaceId);
    const profiles = ports.profiles();
    let ids = [profileId];
    if (profiles) {
      if (!(await profiles.get(apiSpaceId, profileId))) throw errors.notFound('Profile');
      ids = [profileId, ...(await profiles.childrenOf(apiSpaceId, profileId))];
    }
    // With a conversation filter on inbound entries (stored in the document) read a wider window.
    const fetch = q.conversationId ? 1000 : limit;
    const out: HistoryEntry[] = [];
    if (q.direction !== 'inbound') {
      let sel = db.selectFrom('messages').select(['id', 'submitted_at', 'profile_id', 'channel_id', 'status', 'request', 'rendered', 'status_details'])
        .where('api_space_id', '=', apiSpaceId).where('profile_id', 'in', ids).where('deleted', '=', 0).where('submitted_at', '<', before);
      if (q.channelId) sel = sel.where('channel_id', '=', q.channelId);
      if (q.conversationId) sel = sel.where('conversation_id', '=', q.conversationId);
      for (const r of await sel.orderBy('submitted_at', 'desc').limit(limit).execute()) {
        const rendered = fromJson<{ title?: string; body?: string; redacted?: boolean } | null>(r.rendered);
        const req = fromJson<Record<string, any>>(r.request);
        const details = fromJson<Record<string, unknown>>(r.status_details) ?? {};
        const src = rendered?.redacted ? { title: req.title, body: req.body } : rendered ?? { title: req.title, body: req.body };
        out.push({
          messageId: r.id, submittedOn: iso(Number(r.submitted_at)), profileId: r.profile_id, channelId: r.channel_id,
          direction: 'outbound', status: historyStatus(r.status),
          message: { ...(src.title !== undefined ? { title: src.title } : {}), ...(src.body !== undefined ? { body: src.body } : {}), channelData: typeof details.segmentCount === 'number' ? { segmentCount: details.segmentCount } : {} },
        });
      }
    }
    if (q.direction !== 'outbound') {
      let sel = db.selectFrom('inbound_messages').select(['id', 'received_at', 'profile_id', 'channel', 'status', 'doc'])
        .where('api_space_id', '=', apiSpaceId).where('profile_id', 'in', ids).where('received_at', '<', before);
      if (q.channelId) sel = sel.where('channel', '=', q.channelId);
      for (const r of await sel.orderBy('received_at', 'desc').limit(fetch).execute()) {
        const doc = fromJson<Record<string, any>>(r.doc);
        if (q.conversationId && doc.conversationId !== q.conversationId) continue;
        const from = doc.from ?? {};
        const addr = from.phoneNumber ?? from.email ?? from.fbMessengerId ?? from.twitterId ?? from.profileId;
        out.push({
          messageId: r.id, submittedOn: iso(Number(r.received_at)), profileId: r.profile_id, channelId: r.channel,
          direction: 'inbound', status: historyStatus(r.status),
          message: { ...(doc.title !== undefined ? { title: doc.title } : {}), body: doc.body ?? '', channelData: addr ? { from: addr } : {} },
        });
      }
    }
    out.sort((a, b) => (a.submittedOn < b.submittedOn ? 1 : a.submittedOn > b.submittedOn ? -1 : 0));
    return out.slice(0, limit);
  };
}
