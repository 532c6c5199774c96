/**
 * The one media attachment of an X direct message (channels.md §8). The bytes come from the
 * part's inline data, from this server's content store when the URL is one of its content-API
 * URLs, or else through the outbound guard with a size cap. They are uploaded with X's chunked
 * media upload (API v2): `POST /2/media/upload/initialize` (JSON `media_type`, `total_bytes`,
 * `media_category` `dm_image`/`dm_gif`/`dm_video`), one `POST /2/media/upload/{id}/append` per
 * segment (multipart `segment_index` and `media`), `POST /2/media/upload/{id}/finalize`, then
 * `GET /2/media/upload?command=STATUS&media_id=…` while X processes a GIF or a video.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdapterContext } from '../adapter.js';
import { downloadMedia } from '../http-guard.js';
import { asObject as obj, asString as str, parseJson } from '../meta/graph.js';
import { classifyX, idOf, isFailure, type Failed, type XAnswer, type XClient } from './client.js';

/** Where the attachment comes from: a part (URL or base64 `data`) or `customBody.twitterDm.mediaUrl`. */
export interface MediaSource { url?: string; data?: string; type?: string }

/** Largest attachment read: X's limit for GIFs (X itself refuses images over 5 MB). */
export const MAX_MEDIA_BYTES = 15 * 1024 * 1024;
const SEGMENT_BYTES = 4 * 1024 * 1024;
const APPEND_TIMEOUT_MS = 60_000;
/** How long a send waits for X to process a video or GIF before trying again later. */
const PROCESSING_WAIT_MS = 30_000;

type Media = { bytes: Buffer; type: string };

/** The DM media category for a MIME type, or undefined when X takes no such attachment. */
function categoryOf(type: string): string | undefined {
  if (/^image\/gif$/i.test(type)) return 'dm_gif';
  if (/^image\//i.test(type)) return 'dm_image';
  if (/^video\//i.test(type)) return 'dm_video';
  return undefined;
}

const unavailable = (reason: string): Failed => ({ kind: 'rejected', code: 'MediaUnavailable', reason });

/** An external URL's bytes; a refused target or a missing file is the message's fault, a timeout worth retrying. */
async function fetchMedia(ctx: AdapterContext, url: string, signal: AbortSignal | undefined): Promise<{ bytes: Buffer; type?: string } | Failed> {
  const got = await downloadMedia({ url, allowPrivate: ctx.allowPrivateTargets, maxBytes: MAX_MEDIA_BYTES, signal });
  if (got.kind === 'fetched') return { bytes: got.bytes, type: got.type?.split(';')[0]?.trim() };
  if (got.kind === 'transient') return { ...got, code: 'MediaUnavailable', reason: `Media ${url}: ${got.reason}` };
  return got.code === 'MediaTooLarge' ? got : unavailable(`Media ${url}: ${got.reason}`);
}

/** The attachment's bytes and type, or why it cannot be sent. */
export async function readMedia(ctx: AdapterContext, source: MediaSource, signal: AbortSignal | undefined): Promise<Media | Failed> {
  let got: { bytes: Buffer; type?: string };
  if (source.data !== undefined) got = { bytes: Buffer.from(source.data, 'base64') };
  else {
    const url = source.url ?? '';
    const local = await ctx.readContent?.(url);
    if (local === null) return unavailable(`Media ${url} is not in the content store`);
    const fetched = local ?? (await fetchMedia(ctx, url, signal));
    if ('kind' in fetched) return fetched;
    got = fetched;
  }
  const type = source.type ?? got.type ?? '';
  if (!categoryOf(type)) return { kind: 'rejected', code: 'MediaNotSupported', reason: `X direct messages take images, GIFs and videos, not "${type || 'unknown type'}"` };
  if (got.bytes.length === 0) return unavailable('The media is empty');
  if (got.bytes.length > MAX_MEDIA_BYTES) return { kind: 'rejected', code: 'MediaTooLarge', reason: `The media is larger than ${MAX_MEDIA_BYTES / 1024 / 1024} MiB` };
  return { bytes: got.bytes, type };
}

/** One multipart APPEND body: the segment index and the segment's bytes. */
function segment(index: number, chunk: Buffer): { type: string; data: Buffer } {
  const boundary = `switchboard-${randomBytes(12).toString('hex')}`;
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="segment_index"\r\n\r\n${index}\r\n`
    + `--${boundary}\r\nContent-Disposition: form-data; name="media"; filename="media"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  return { type: `multipart/form-data; boundary=${boundary}`, data: Buffer.concat([Buffer.from(head), chunk, Buffer.from(`\r\n--${boundary}--\r\n`)]) };
}

/**
 * An upload step's answer: its `data` object, or the send's outcome. X refusing the media (a 4xx
 * other than 401/403) is `MediaRejected`; throttling and 5xx stay transient.
 */
function stepData(answer: XAnswer | Failed): { ok: true; data: Record<string, unknown> } | { ok: false; outcome: Failed } {
  if (isFailure(answer)) return { ok: false, outcome: answer };
  if (answer.status >= 200 && answer.status < 300) return { ok: true, data: obj(obj(parseJson(answer.text)).data) };
  const outcome = classifyX(answer.status, answer.headers, answer.text) as Failed;
  const reason = `Media upload: ${outcome.reason}`;
  return { ok: false, outcome: outcome.kind === 'rejected' && outcome.code?.startsWith('HTTP') ? { kind: 'rejected', code: 'MediaRejected', reason } : { ...outcome, reason } };
}

/** Uploads the media for a DM; resolves to X's media id, or the send's outcome. */
export async function uploadMedia(client: XClient, origin: string, media: Media, signal: AbortSignal | undefined): Promise<string | Failed> {
  const init = stepData(await client.call({
    method: 'POST', url: `${origin}/2/media/upload/initialize`, signal,
    body: JSON.stringify({ media_type: media.type, total_bytes: media.bytes.length, media_category: categoryOf(media.type) }),
  }));
  if (!init.ok) return init.outcome;
  const id = idOf(init.data.id);
  if (!id) return { kind: 'transient', code: 'ProviderUnavailable', reason: 'Media upload: X answered without a media id' };
  for (let offset = 0, index = 0; offset < media.bytes.length; offset += SEGMENT_BYTES, index++) {
    const body = segment(index, media.bytes.subarray(offset, offset + SEGMENT_BYTES));
    const appended = stepData(await client.call({ method: 'POST', url: `${origin}/2/media/upload/${id}/append`, signal, body, timeoutMs: APPEND_TIMEOUT_MS }));
    if (!appended.ok) return appended.outcome;
  }
  let step = stepData(await client.call({ method: 'POST', url: `${origin}/2/media/upload/${id}/finalize`, signal }));
  const deadline = Date.now() + PROCESSING_WAIT_MS;
  for (;;) {
    if (!step.ok) return step.outcome;
    const info = obj(step.data.processing_info);
    if (info.state === 'failed') return { kind: 'rejected', code: 'MediaRejected', reason: `X could not process the media: ${str(obj(info.error).message) ?? 'no reason given'}` };
    // No processing_info (images), or `succeeded`: the id can be attached now.
    if (info.state !== 'pending' && info.state !== 'in_progress') return id;
    const wait = Math.min(Math.max(Number(info.check_after_secs) || 0, 0), 10) * 1000;
    if (Date.now() + wait > deadline) return { kind: 'transient', code: 'MediaProcessing', reason: 'X is still processing the media' };
    try {
      await sleep(wait, undefined, { signal });
    } catch {
      return { kind: 'transient', code: 'Timeout', reason: 'Stopped while X processed the media' };
    }
    step = stepData(await client.call({ method: 'GET', url: `${origin}/2/media/upload?command=STATUS&media_id=${id}`, signal }));
  }
}
