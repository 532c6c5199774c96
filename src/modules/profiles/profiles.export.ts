import { Readable } from 'node:stream';
import { sql } from 'kysely';
import type { ModuleContext } from '../module.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import type { ProfileRow } from './profiles.repo.js';
import { representation, stateFromRow, toDocument, type ProfileState } from './profiles.document.js';
import { validPath, whereClause, type Filter } from './profiles.query.js';

export const MAX_EXPORT = 1_000_000;
const PAGE = 1000;

export interface ExportOptions {
  format: 'json' | 'csv';
  fields?: string[];
  fieldSeparator: string;
  includeHeaders: boolean;
}

/** Validates the optional export body (profiles.md §5). */
export function exportOptions(body: unknown): ExportOptions {
  if (body === undefined) return { format: 'json', fieldSeparator: ',', includeHeaders: true };
  const failures: ValidationFailure[] = [];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw errors.invalidField('body', 'Must be an object');
  const b = body as Record<string, unknown>;
  if (b.format !== 'json' && b.format !== 'csv') failures.push({ paramName: 'format', message: 'Must be "json" or "csv"' });
  if (b.fields !== undefined && (!Array.isArray(b.fields) || b.fields.some((f) => typeof f !== 'string' || !validPath(f)))) {
    failures.push({ paramName: 'fields', message: 'Must be an array of property paths' });
  }
  if (b.fieldSeparator !== undefined && (typeof b.fieldSeparator !== 'string' || [...b.fieldSeparator].length !== 1 || /["\r\n]/.test(b.fieldSeparator))) {
    failures.push({ paramName: 'fieldSeparator', message: 'Must be one character (not a quote or line break)' });
  }
  if (b.includeHeaders !== undefined && typeof b.includeHeaders !== 'boolean') failures.push({ paramName: 'includeHeaders', message: 'Must be a boolean' });
  if (failures.length) throw errors.validation(failures);
  return {
    format: b.format as 'json' | 'csv',
    fields: b.fields as string[] | undefined,
    fieldSeparator: (b.fieldSeparator as string | undefined) ?? ',',
    includeHeaders: (b.includeHeaders as boolean | undefined) ?? true,
  };
}

function valueAt(doc: Record<string, unknown>, path: string): unknown {
  let cur: unknown = doc;
  for (const p of path.split('.')) cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

function csvCell(v: unknown, sep: string): string {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'object' ? '--INVALID-TYPE--' : String(v);
  return s.includes(sep) || /["\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Streams matching profiles page by page (keyset on id), so memory stays bounded. */
export function createExporter(ctx: ModuleContext) {
  // The document column is read as text on both dialects, so JSON exports can splice it as is.
  const dataText = ctx.handle.dialect === 'postgres' ? sql`p.data::text AS data` : sql`p.data`;

  async function* rowPages(apiSpaceId: string, filters: readonly Filter[]): AsyncGenerator<ProfileRow[]> {
    const where = whereClause(apiSpaceId, filters, {});
    let after: string | undefined;
    for (;;) {
      const rows = await sql<ProfileRow>`SELECT p.api_space_id, p.id, ${dataText}, p.opt_in, p.rels, p.system, p.revision, p.etag, p.created_on, p.created_by,
        p.updated_on, p.updated_by, p.last_activity_on, p.deleted_on, p.deleted_by
        FROM profiles p WHERE ${where} ${after === undefined ? sql`` : sql`AND p.id > ${after}`} ORDER BY p.api_space_id, p.id LIMIT ${PAGE}`.execute(ctx.db);
      if (!rows.rows.length) return;
      yield rows.rows;
      if (rows.rows.length < PAGE) return;
      after = rows.rows[rows.rows.length - 1]!.id;
    }
  }

  async function* pages(apiSpaceId: string, filters: readonly Filter[]): AsyncGenerator<ProfileState[]> {
    for await (const rows of rowPages(apiSpaceId, filters)) yield rows.map(stateFromRow);
  }

  /** `toDocument` as JSON text without parsing and re-serialising the custom data. */
  function jsonText(r: ProfileRow): string {
    const data = String(r.data);
    const sys = JSON.stringify(representation(stateFromRow({ ...r, data: '{}' })));
    const inner = data.length > 2 ? `,${data.slice(1, -1)}` : '';
    const extra = r.last_activity_on ? `,"_lastActivityOn":${JSON.stringify(r.last_activity_on)}` : '';
    // sys is {"id":…,<system fields>}: custom data goes right after the id, as in toDocument.
    const head = `{"id":${JSON.stringify(r.id)}`;
    return `${head}${inner}${sys.slice(head.length, -1)}${extra}}`;
  }

  async function columns(apiSpaceId: string, filters: readonly Filter[]): Promise<string[]> {
    const keys = new Set<string>();
    for await (const page of pages(apiSpaceId, filters)) {
      for (const s of page) for (const [k, v] of Object.entries(s.data)) if (v !== null && typeof v !== 'object') keys.add(k);
    }
    keys.delete('id');
    return ['id', ...[...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))];
  }

  return {
    async count(apiSpaceId: string, filters: readonly Filter[]): Promise<number> {
      const r = await sql<{ c: number }>`SELECT count(*) AS c FROM profiles p WHERE ${whereClause(apiSpaceId, filters, {})}`.execute(ctx.db);
      return Number(r.rows[0]?.c ?? 0);
    },

    /** The export body as a stream of text chunks. */
    async stream(apiSpaceId: string, filters: readonly Filter[], opts: ExportOptions): Promise<Readable> {
      if ((await this.count(apiSpaceId, filters)) > MAX_EXPORT) throw errors.invalidField('query', `An export is limited to ${MAX_EXPORT} profiles`);
      if (opts.format === 'json') {
        return Readable.from((async function* () {
          let first = true;
          yield '[';
          for await (const rows of rowPages(apiSpaceId, filters)) {
            yield rows.map((r) => {
              const text = (first ? '' : ',') + jsonText(r);
              first = false;
              return text;
            }).join('');
          }
          yield ']';
        })());
      }
      const cols = opts.fields ?? (await columns(apiSpaceId, filters));
      const sep = opts.fieldSeparator;
      return Readable.from((async function* () {
        if (opts.includeHeaders) yield cols.map((c) => csvCell(c, sep)).join(sep) + '\r\n';
        for await (const page of pages(apiSpaceId, filters)) {
          yield page.map((s) => {
            const doc = toDocument(s);
            return cols.map((c) => csvCell(valueAt(doc, c), sep)).join(sep) + '\r\n';
          }).join('');
        }
      })());
    },
  };
}

export type Exporter = ReturnType<typeof createExporter>;
