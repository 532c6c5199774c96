/** MIME allow-list for uploads (spaces-and-billing.md §10.4) and extension fallbacks. */

const BY_EXTENSION: Readonly<Record<string, string>> = {
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp',
  aac: 'audio/aac', m4a: 'audio/mp4', mp3: 'audio/mpeg', amr: 'audio/amr', ogg: 'audio/ogg', oga: 'audio/ogg', opus: 'audio/ogg', wav: 'audio/wav', weba: 'audio/webm',
  mp4: 'video/mp4', m4v: 'video/mp4', '3gp': 'video/3gpp', mov: 'video/quicktime', webm: 'video/webm',
  pdf: 'application/pdf', doc: 'application/msword', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ppt: 'application/vnd.ms-powerpoint', pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text', ods: 'application/vnd.oasis.opendocument.spreadsheet', rtf: 'application/rtf',
  txt: 'text/plain', csv: 'text/csv', ics: 'text/calendar', vcf: 'text/vcard', vcard: 'text/vcard', json: 'application/json', zip: 'application/zip',
};

const DEFAULT_TYPES: ReadonlySet<string> = new Set([...Object.values(BY_EXTENSION), 'text/x-vcard']);

/**
 * Whether uploads may have a type (§10.4): the installation's list (`CONTENT_TYPES`, entries
 * `type/subtype` or `type/*`) or the built-in one.
 */
export function allowedTypes(configured: readonly string[] | undefined): (type: string) => boolean {
  if (!configured) return (type) => DEFAULT_TYPES.has(type);
  const exact = new Set(configured.filter((t) => !t.endsWith('/*')));
  const groups = configured.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1));
  return (type) => exact.has(type) || groups.some((g) => type.startsWith(g));
}

/** Types a browser could execute: served as attachments in a sandbox if ever stored. */
export const ACTIVE_TYPES: ReadonlySet<string> = new Set(['text/html', 'image/svg+xml', 'application/xhtml+xml']);

/** `type/subtype` in lower case without parameters. */
export const essence = (type: string): string => type.split(';')[0]!.trim().toLowerCase();

/** The type for a file name's extension, if known. */
export function typeFromName(name: string): string | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  return m ? BY_EXTENSION[m[1]!.toLowerCase()] : undefined;
}
