/**
 * Forgetting a profile (profiles.md §3.5, right to erasure): messages to or from it and inbound
 * messages from it are redacted (§3.4) and their identifiers removed. The profiles module's
 * `onDeleted` hook only enqueues a durable job; the job works through the messages in pages and
 * is idempotent (a processed message no longer names the profile).
 */
import type { JobHandler } from '../../delivery/worker.js';
import type { ModuleContext } from '../module.js';
import { iso } from '../../lib/clock.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import type { Ports } from './dispatch.js';
import type { Change, Message, Mutator } from './messages.repo.js';
import { redactCopies, redaction } from './messages.service.js';

export const FORGET_JOB = 'messages.forgetProfile';
const PAGE = 200;
// `NoAddress`: the stable codes are the §2.3 reasons; a forgotten profile has no address any more.
const FAILURE = 'The recipient profile was forgotten before the message was sent';

export function createForget(ctx: ModuleContext, mutator: Mutator, ports: Ports) {
  /** What forgetting `profileId` changes on one message; undefined when it no longer names it. */
  function erase(m: Message, profileId: string): Change | undefined {
    const to = m.row.profile_id === profileId;
    const from = m.row.sender_profile_id === profileId;
    if (!to && !from) return undefined;
    const now = ctx.clock.now();
    const r = m.details.redacted ? { request: { ...m.request }, details: { ...m.details } } : redaction(m, 'message', now);
    const change: Change = { ...r, ...(to ? { profileId: null } : {}), ...(from ? { senderProfileId: null } : {}) };
    // The recipient's identifiers go with the profile (the addressing of a message to it).
    if (to) change.request = { ...change.request, to: {} };
    // A message still waiting for a channel is not sent any more: it would recreate the profile.
    const pending = m.row.status === 'processing' || m.row.status === 'retrying';
    if (to && pending && !m.state.cancelled && !m.row.deleted) {
      change.state = { ...m.state, cancelled: true };
      change.status = 'failed';
      const { nextAttemptOn: _n, ...details } = change.details ?? m.details;
      change.details = { ...details, failureReason: FAILURE, errorCode: 'NoAddress' };
      change.events = [{ status: 'failed', channel: null, failureReason: FAILURE, errorCode: 'NoAddress' }];
    }
    return change;
  }

  async function forgetMessages(apiSpaceId: string, profileId: string, column: 'profile_id' | 'sender_profile_id'): Promise<void> {
    for (;;) {
      const ids = await ctx.db.selectFrom('messages').select('id').where('api_space_id', '=', apiSpaceId).where(column, '=', profileId).limit(PAGE).execute();
      if (!ids.length) return;
      for (const { id } of ids) {
        const res = await mutator.mutate(apiSpaceId, id, (m) => {
          const change = erase(m, profileId);
          return change ? { change, result: true } : { result: false };
        });
        if (res?.result) await redactCopies(ctx, ports, res.message);
      }
    }
  }

  /** Inbound messages from the profile: content and sender identifiers removed. */
  async function forgetInbound(apiSpaceId: string, profileId: string): Promise<void> {
    const stamp = iso(ctx.clock.now());
    for (;;) {
      const rows = await ctx.db.selectFrom('inbound_messages').selectAll().where('api_space_id', '=', apiSpaceId).where('profile_id', '=', profileId).limit(PAGE).execute();
      if (!rows.length) return;
      for (const row of rows) {
        const doc = fromJson<Record<string, any>>(row.doc);
        const { body: _b, title: _t, channelData: _c, channelStatus: _s, ...rest } = doc;
        const next = {
          ...rest,
          from: {},
          ...(doc.body !== undefined ? { body: '' } : {}),
          ...(doc.title !== undefined ? { title: '' } : {}),
          ...(Array.isArray(doc.messageParts) ? { messageParts: doc.messageParts.map((p: Record<string, unknown>) => ({ type: p.type, ...(p.name !== undefined ? { name: p.name } : {}), ...(p.size !== undefined ? { size: p.size } : {}) })) } : {}),
          redacted: true, redactedOn: stamp, _updatedOn: stamp, _updatedBy: 'system',
        };
        await ctx.db.updateTable('inbound_messages').set({ doc: toJson(next), profile_id: null, revision: row.revision + 1 })
          .where('api_space_id', '=', apiSpaceId).where('id', '=', row.id).execute();
      }
    }
  }

  const job: JobHandler = async ({ job: j }) => {
    const apiSpaceId = j.apiSpaceId!;
    const { profileId } = j.payload as unknown as { profileId: string };
    await ports.batches?.()?.ensureSpace(apiSpaceId);
    await forgetMessages(apiSpaceId, profileId, 'profile_id');
    await forgetMessages(apiSpaceId, profileId, 'sender_profile_id');
    await forgetInbound(apiSpaceId, profileId);
    await ctx.db.deleteFrom('channel_windows').where('api_space_id', '=', apiSpaceId).where('profile_id', '=', profileId).execute();
  };

  /** The profiles `onDeleted` hook: a forgotten profile's messages are erased by a durable job. */
  async function onDeleted(apiSpaceId: string, profileId: string, forget: boolean): Promise<void> {
    if (!forget) return;
    try {
      await ctx.transaction((uow) => ctx.queue.enqueue(uow, { kind: FORGET_JOB, apiSpaceId, payload: { v: 1, profileId } }));
    } catch (err) {
      ctx.log.error({ err, apiSpaceId, profileId }, 'queueing the erasure of a forgotten profile\'s messages failed');
    }
  }

  return { jobs: { [FORGET_JOB]: job }, onDeleted };
}
