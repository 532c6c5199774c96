/**
 * Inbound X direct messages (channels.md §8) as inbound reports, and polling for them where there
 * are no Account Activity webhooks. `GET /2/dm_events` lists the account's DM events, sent and
 * received, newest first, up to 100 a page (`meta.next_token` → `pagination_token`), over the last
 * 30 days; it has no `since_id`. A poll reads pages until it reaches the newest event the previous
 * poll saw (event ids grow with time) or, on the first poll, events from before polling was
 * switched on. It returns the messages of other users oldest first, and the newest id as cursor.
 * A backlog longer than one poll reads (MAX_PAGES) is not dropped: the cursor keeps the next page's
 * token and where to stop, and the following polls read on down to it before anything newer.
 */
import type { AdapterContext, InboundReport, PollFrom, PollResult } from '../adapter.js';
import { asArray as arr, asObject as obj, asString as str, parseJson } from '../meta/graph.js';
import { classifyX, idOf, isFailure, type Failed, type XClient } from './client.js';

type Json = Record<string, unknown>;

/** Inbound media kinds as X names them. */
const INBOUND_TYPES: Record<string, string> = { photo: 'image/jpeg', animated_gif: 'video/mp4', video: 'video/mp4' };
const QUERY = new URLSearchParams({
  'dm_event.fields': 'id,text,event_type,created_at,sender_id,dm_conversation_id,attachments',
  event_types: 'MessageCreate',
  expansions: 'sender_id,attachments.media_keys',
  'user.fields': 'username',
  'media.fields': 'type,url,variants',
  max_results: '100',
}).toString();
/** Pages one poll reads at most (1,000 events); a longer backlog is read on by the next polls. */
const MAX_PAGES = 10;

/**
 * The rest of a backlog one poll could not read: the token of its next (older) page, and where it
 * ends — the newest event seen before it (`until`), or, before any was, the time polling began.
 */
interface Resume {
  token: string;
  until?: string;
}

/** Whether event id `a` is newer than `b` (decimal snowflake ids: longer, or as long and greater). */
const newer = (a: string, b: string): boolean => (a.length !== b.length ? a.length > b.length : a > b);

/** A media part of an inbound DM, typed from X's media kind. */
export const mediaPart = (kind: unknown, url: string) => ({ type: INBOUND_TYPES[String(kind)] ?? 'application/octet-stream', url });

/** One inbound DM; undefined when it has neither text nor media. */
export function dmInbound(channelId: string, dm: { sender: string; text?: string; parts: Array<Record<string, unknown>>; id?: string; at: number; raw: unknown }): InboundReport | undefined {
  if (!dm.text && !dm.parts.length) return undefined;
  return {
    channelId, from: { twitterId: dm.sender },
    ...(dm.text ? { body: dm.text } : {}), ...(dm.parts.length ? { messageParts: dm.parts } : {}),
    ...(dm.id ? { providerMessageId: dm.id } : {}),
    ...(Number.isFinite(dm.at) && dm.at > 0 ? { sentOn: dm.at } : {}),
    raw: dm.raw,
  };
}

/** A `MessageCreate` event of `GET /2/dm_events`, with its expanded sender and media. */
function fromEvent(channelId: string, event: Json, users: Map<string, Json>, media: Map<string, Json>): InboundReport | undefined {
  const sender = idOf(event.sender_id);
  if (!sender) return undefined;
  const parts = arr(obj(event.attachments).media_keys).flatMap((key) => {
    const m = media.get(String(key)) ?? {};
    // A video or GIF has no `url`: its playable files are `variants`.
    const url = str(m.url) ?? str(obj(arr(m.variants).find((v) => obj(v).content_type === 'video/mp4')).url);
    return url ? [mediaPart(m.type, url)] : [];
  });
  // The username is not an identifier (it can change): it is kept with the raw event only.
  const username = str(users.get(sender)?.username);
  return dmInbound(channelId, {
    sender, text: typeof event.text === 'string' ? event.text : undefined, parts, id: idOf(event.id),
    at: Date.parse(String(event.created_at)), raw: username ? { ...event, sender_username: username } : event,
  });
}

/** `ChannelAdapter.poll` for one account (`userId`). */
export function dmEventsPoller(ctx: AdapterContext, client: XClient, origin: string, userId: string) {
  return async function poll(from: PollFrom, signal?: AbortSignal): Promise<PollResult> {
    const c = from.cursor ?? {};
    // A cursor of another account (the configuration's userId changed) is no position in this one's.
    const own = c.userId === userId;
    const since = own && typeof c.since === 'number' ? c.since : from.since;
    const lastEventId = own ? idOf(c.lastEventId) : undefined;
    const resume = own ? resumeOf(c.resume) : undefined;
    // The rest of a backlog first, down to where it ends; anything newer waits for the next poll.
    const seen = resume ? resume.until : lastEventId;
    const events: Json[] = [];
    const users = new Map<string, Json>();
    const media = new Map<string, Json>();
    let newest = lastEventId;
    let token = resume?.token;
    let rest: Resume | undefined;
    for (let page = 1; ; page++) {
      const answer = await client.call({ method: 'GET', url: `${origin}/2/dm_events?${QUERY}${token ? `&pagination_token=${encodeURIComponent(token)}` : ''}`, signal });
      if (isFailure(answer) || answer.status < 200 || answer.status >= 300) {
        const outcome = isFailure(answer) ? answer : (classifyX(answer.status, answer.headers, answer.text) as Failed);
        if (resume && !isFailure(answer) && answer.status === 400) {
          // X no longer takes the backlog's page token: its events cannot be reached any more.
          ctx.log.warn({ reason: outcome.reason }, 'the rest of an X direct message backlog could not be read: its oldest events are not taken');
          return { inbounds: [], cursor: cursorOf(userId, since, lastEventId) };
        }
        // Nothing is taken from a partial read: the next poll starts again from the same cursor.
        ctx.log.warn({ reason: outcome.reason }, 'polling X for direct messages failed; the next poll tries again');
        return { inbounds: [], ...(outcome.kind === 'transient' && outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}) };
      }
      const body = obj(parseJson(answer.text));
      for (const u of arr(obj(body.includes).users)) if (idOf(obj(u).id)) users.set(idOf(obj(u).id)!, obj(u));
      for (const m of arr(obj(body.includes).media)) if (str(obj(m).media_key)) media.set(str(obj(m).media_key)!, obj(m));
      let reached = false;
      for (const e of arr(body.data)) {
        const event = obj(e);
        const id = idOf(event.id);
        if (!id) continue;
        if (!newest || newer(id, newest)) newest = id;
        if (seen ? !newer(id, seen) : Date.parse(String(event.created_at)) < since) {
          reached = true;
          break;
        }
        events.push(event);
      }
      token = str(obj(body.meta).next_token);
      if (reached || !token) break;
      if (page === MAX_PAGES) {
        rest = { token, ...(seen ? { until: seen } : {}) };
        ctx.log.info({ pages: MAX_PAGES }, 'more new X direct message events than one poll reads: the next poll reads on');
        break;
      }
    }
    // The account's own messages (sent here or from X itself) are listed too.
    const inbounds = events.reverse().filter((e) => e.event_type === 'MessageCreate' && idOf(e.sender_id) !== userId)
      .flatMap((e) => fromEvent(ctx.channelId, e, users, media) ?? []);
    return { inbounds, cursor: cursorOf(userId, since, newest, rest) };
  };
}

const cursorOf = (userId: string, since: number, lastEventId: string | undefined, resume?: Resume): Record<string, unknown> =>
  ({ userId, since, ...(lastEventId ? { lastEventId } : {}), ...(resume ? { resume } : {}) });

function resumeOf(v: unknown): Resume | undefined {
  const r = obj(v);
  const token = str(r.token);
  return token ? { token, ...(idOf(r.until) ? { until: idOf(r.until)! } : {}) } : undefined;
}
