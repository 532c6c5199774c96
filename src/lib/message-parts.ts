/**
 * The rules of one message part (one-api.md §2.4.2, §2.6 item 7), shared by sends and by stored
 * templates, whose parts become a send's parts.
 */

/** `type/subtype` of a part. */
export const PART_TYPE = /^[\w.+-]+\/[\w.+-]+$/;
/** Most parts in a send or a template. */
export const MAX_PARTS = 20;

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Reports each problem of the part at `p` (e.g. `messageParts[2]`) to `fail`. */
export function checkPart(part: unknown, p: string, fail: (paramName: string, message: string) => void): void {
  if (!isObj(part)) return fail(p, 'Must be an object');
  if (typeof part.type !== 'string' || !PART_TYPE.test(part.type)) fail(`${p}.type`, 'Required MIME type such as text/plain');
  if (part.url !== undefined && part.data !== undefined) fail(p, 'A part has url or data, not both');
  if (part.url !== undefined && (typeof part.url !== 'string' || !/^https?:\/\/[^\s]+$/i.test(part.url))) fail(`${p}.url`, 'Must be an absolute http(s) URL');
  if (part.data !== undefined && typeof part.data !== 'string' && !isObj(part.data)) fail(`${p}.data`, 'Must be a string or an object');
  if (typeof part.data === 'string' && typeof part.type === 'string' && !/^text\//.test(part.type) && part.data.length > Math.ceil((5 * 1024 * 1024 * 4) / 3) + 4) fail(`${p}.data`, 'Inline data is limited to 5 MiB; upload larger files to the Content API');
  if (part.name !== undefined && typeof part.name !== 'string') fail(`${p}.name`, 'Must be a string');
  if (part.size !== undefined && (!Number.isInteger(part.size) || (part.size as number) < 0)) fail(`${p}.size`, 'Must be a non-negative integer');
  if (part.channels !== undefined && (!Array.isArray(part.channels) || part.channels.some((c) => typeof c !== 'string'))) fail(`${p}.channels`, 'Must be an array of channel ids');
  if (part.type === 'whatsapp/template' && !(Array.isArray(part.channels) && part.channels.length === 1 && part.channels[0] === 'whatsApp')) fail(`${p}.channels`, 'A whatsapp/template part must carry "channels": ["whatsApp"]');
}
