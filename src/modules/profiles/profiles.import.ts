import { setImmediate as nextTurn } from 'node:timers/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import type { ModuleContext } from '../module.js';
import type { Actor } from '../../auth/actor.js';
import type { JobHandler } from '../../delivery/worker.js';
import { iso } from '../../lib/clock.js';
import { errors } from '../../http/errors.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import type { ProfileImportRow } from './profiles.repo.js';
import type { MergeItem, ProfileWriter } from './profiles.writer.js';
import type { Statistics } from '../../storage/statistics.js';
import { validPath } from './profiles.query.js';

export const IMPORT_JOB = 'profiles.import';
const STAGE_CHUNK = 500;
const MAX_INVALID_LISTED = 100;
const RETAIN_MS = 7 * 24 * 3600 * 1000;

export interface ImportUpload {
  kind: 'csv' | 'json';
  /** Raw file bytes, or an already parsed JSON array. */
  content: Buffer | unknown[];
  filename?: string;
  separator: string;
  mode: 'merge' | 'replace';
  start: boolean;
}

type RawRow = { row: number; value: unknown } | { row: number; error: string };

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = target;
  parts.forEach((p, i) => {
    if (i === parts.length - 1) cur[p] = value;
    else cur = (cur[p] !== null && typeof cur[p] === 'object' && !Array.isArray(cur[p]) ? cur[p] : (cur[p] = {})) as Record<string, unknown>;
  });
}

/** CSV rows: header names are dot paths with optional `:number`, `:boolean`, `:json` suffixes. */
function csvRows(content: Buffer, separator: string): RawRow[] {
  let records: string[][];
  try {
    records = parseCsv(content, { delimiter: separator, bom: true, relax_column_count: true, skip_empty_lines: true });
  } catch (err) {
    throw errors.invalidField('body', `The CSV file cannot be parsed: ${(err as Error).message}`);
  }
  const header = records[0];
  if (!header) throw errors.invalidField('body', 'The CSV file has no header row');
  const cols = header.map((h) => {
    const m = /^(.*?)(?::(number|boolean|json|string))?$/.exec(h.trim())!;
    return { path: m[1]!, type: m[2] ?? 'string' };
  });
  if (!cols.some((c) => c.path === 'id')) throw errors.invalidField('body', 'The CSV file has no id column');
  const bad = cols.find((c) => !validPath(c.path));
  if (bad) throw errors.invalidField('body', `Invalid column name "${bad.path}"`);
  return records.slice(1).map((cells, i) => {
    const row = i + 1;
    const obj: Record<string, unknown> = {};
    for (const [j, col] of cols.entries()) {
      const cell = cells[j];
      if (cell === undefined || cell === '') continue;
      let v: unknown = cell;
      if (col.type === 'number') {
        v = Number(cell);
        if (cell.trim() === '' || !Number.isFinite(v)) return { row, error: `${col.path}: "${cell}" is not a number` };
      } else if (col.type === 'boolean') {
        const b = cell.toLowerCase();
        if (!['true', 'false', '1', '0'].includes(b)) return { row, error: `${col.path}: "${cell}" is not a boolean` };
        v = b === 'true' || b === '1';
      } else if (col.type === 'json') {
        try {
          v = JSON.parse(cell);
        } catch {
          return { row, error: `${col.path}: not valid JSON` };
        }
      }
      setPath(obj, col.path, v);
    }
    return { row, value: obj };
  });
}

function jsonRows(content: Buffer | unknown[]): RawRow[] {
  let parsed: unknown = content;
  if (Buffer.isBuffer(content)) try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(content));
  } catch {
    throw errors.invalidField('body', 'The JSON file cannot be parsed');
  }
  if (!Array.isArray(parsed)) throw errors.invalidField('body', 'The JSON file must contain an array of profiles');
  return parsed.map((value, i) => ({ row: i + 1, value }));
}

const view = (r: ProfileImportRow) => ({
  id: r.id, status: r.status, mode: r.mode, filename: r.filename, rowCount: r.row_count, validRowCount: r.valid_row_count,
  invalidRows: fromJson<Array<{ row: number; message: string }>>(r.invalid_rows), duplicateCount: r.duplicate_count, existingCount: r.existing_count,
  processedCount: r.processed_count, createdCount: r.created_count, updatedCount: r.updated_count, failedCount: r.failed_count,
  _createdOn: r.created_on, _createdBy: r.created_by, _updatedOn: r.updated_on, _updatedBy: r.updated_by,
});
export type ImportView = ReturnType<typeof view>;

/**
 * Imports (profiles.md §7): upload → staged rows plus a duplicates report; start → a durable job
 * that applies the rows in chunks. Each chunk commits its profile writes together with the import's
 * cursor and counters, so a crash resumes after the last committed chunk and never applies a row
 * twice.
 */
export function createImports(ctx: ModuleContext, writer: ProfileWriter, statistics: Pick<Statistics, 'refresh'>, opts: { chunkSize?: number } = {}) {
  const { db, clock } = ctx;
  const chunkSize = opts.chunkSize ?? 500;

  async function load(apiSpaceId: string, id: string): Promise<ProfileImportRow> {
    const r = await db.selectFrom('profile_imports').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
    if (!r) throw errors.notFound(`Import ${id}`);
    return r;
  }

  async function start(actor: Actor, apiSpaceId: string, id: string): Promise<ImportView> {
    await ctx.transaction(async (uow) => {
      const now = iso(clock.now());
      const res = await uow.tx.updateTable('profile_imports').set({ status: 'running', updated_on: now, updated_by: actor.actor })
        .where('api_space_id', '=', apiSpaceId).where('id', '=', id).where('status', '=', 'ready').executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) {
        const exists = await uow.tx.selectFrom('profile_imports').select('id').where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
        if (!exists) throw errors.notFound(`Import ${id}`);
        throw errors.conflict(`Import ${id} is not ready to start`, 'InvalidState');
      }
      await ctx.queue.enqueue(uow, { kind: IMPORT_JOB, apiSpaceId, payload: { v: 1, apiSpaceId, importId: id }, dedupeKey: id, maxAttempts: 20 });
    });
    return view(await load(apiSpaceId, id));
  }

  const handler: JobHandler = async (jobCtx) => {
    const { apiSpaceId, importId } = jobCtx.job.payload as { v: number; apiSpaceId: string; importId: string };
    try {
      await run(jobCtx, apiSpaceId, importId);
    } catch (err) {
      // Last attempt: the import is reported as failed instead of staying "running" for ever.
      if (jobCtx.job.attempts >= jobCtx.job.maxAttempts && !jobCtx.signal.aborted) {
        await db.updateTable('profile_imports').set({ status: 'failed', updated_on: iso(clock.now()) })
          .where('api_space_id', '=', apiSpaceId).where('id', '=', importId).where('status', '=', 'running').execute();
      }
      throw err;
    }
  };

  async function run(jobCtx: Parameters<JobHandler>[0], apiSpaceId: string, importId: string): Promise<void> {
    for (;;) {
      if (jobCtx.signal.aborted) throw new Error('import interrupted');
      const imp = await db.selectFrom('profile_imports').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', importId).executeTakeFirst();
      if (!imp || imp.status !== 'running') return;
      const rows = await db.selectFrom('profile_import_rows').selectAll().where('import_id', '=', importId).where('row_no', '>', imp.cursor).orderBy('row_no').limit(chunkSize).execute();
      if (!rows.length) {
        await ctx.transaction(async (uow) => {
          const now = iso(clock.now());
          await uow.tx.updateTable('profile_imports').set({ status: 'completed', completed_on: now, updated_on: now }).where('api_space_id', '=', apiSpaceId).where('id', '=', importId).execute();
          // Staged data is kept 7 days after completion.
          const old = uow.tx.selectFrom('profile_imports').select('id').where('api_space_id', '=', apiSpaceId).where('completed_on', '<', iso(clock.now() - RETAIN_MS));
          await uow.tx.deleteFrom('profile_import_rows').where('import_id', 'in', old).execute();
          await jobCtx.completeIn(uow.tx);
        });
        // A large import changes the data distribution at once: refresh the planner's statistics
        // now rather than when autovacuum next gets to it (in the background).
        if (imp.processed_count >= 10_000) statistics.refresh();
        return;
      }
      await ctx.transaction(async (uow) => {
        const items: MergeItem[] = rows.map((r) => ({ id: r.profile_id, data: fromJson(r.data), mode: imp.mode as 'merge' | 'replace' }));
        const results = await writer.applyMany(uow, apiSpaceId, imp.created_by, items);
        const count = (k: string) => results.filter((r) => r.result === k).length;
        const res = await uow.tx.updateTable('profile_imports').set({
          cursor: rows[rows.length - 1]!.row_no,
          processed_count: imp.processed_count + rows.length,
          created_count: imp.created_count + count('created'),
          updated_count: imp.updated_count + count('updated'),
          failed_count: imp.failed_count + count('failed'),
          updated_on: iso(clock.now()),
        }).where('api_space_id', '=', apiSpaceId).where('id', '=', importId).where('cursor', '=', imp.cursor).executeTakeFirst();
        // Another worker applied this chunk first: roll ours back.
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('Import chunk applied concurrently');
      });
      await jobCtx.heartbeat();
      // Let waiting I/O in between chunks: on SQLite every statement completes synchronously, so
      // without a macrotask here the loop would run only on promise continuations and keep the
      // event loop from reading requests until the whole import is done.
      await nextTurn();
    }
  }

  return {
    handler,
    start,
    async get(apiSpaceId: string, id: string): Promise<ImportView> {
      return view(await load(apiSpaceId, id));
    },
    async duplicates(apiSpaceId: string, id: string) {
      return fromJson<Array<{ id: string; rows: number[]; existsInSpace: boolean }>>((await load(apiSpaceId, id)).duplicates);
    },

    async upload(actor: Actor, apiSpaceId: string, upload: ImportUpload): Promise<ImportView> {
      const raw = upload.kind === 'csv' && Buffer.isBuffer(upload.content) ? csvRows(upload.content, upload.separator) : jsonRows(upload.content);
      const invalid: Array<{ row: number; message: string }> = [];
      const valid: Array<{ row: number; item: MergeItem }> = [];
      for (const r of raw) {
        const item = 'error' in r ? r.error : writer.itemFrom(r.value, upload.mode);
        if (typeof item === 'string') invalid.push({ row: r.row, message: item });
        else valid.push({ row: r.row, item });
      }
      const byId = new Map<string, number[]>();
      for (const v of valid) byId.set(v.item.id, [...(byId.get(v.item.id) ?? []), v.row]);
      const existing = new Set<string>();
      const ids = [...byId.keys()];
      for (let i = 0; i < ids.length; i += STAGE_CHUNK) {
        const found = await db.selectFrom('profiles').select('id').where('api_space_id', '=', apiSpaceId).where('id', 'in', ids.slice(i, i + STAGE_CHUNK)).execute();
        for (const f of found) existing.add(f.id);
      }
      const duplicates = [...byId.entries()].filter(([pid, rows]) => rows.length > 1 || existing.has(pid)).map(([pid, rows]) => ({ id: pid, rows, existsInSpace: existing.has(pid) }));
      const now = iso(clock.now());
      const id = ctx.ids.uuid();
      const row: ProfileImportRow = {
        api_space_id: apiSpaceId, id, status: 'ready', mode: upload.mode, filename: upload.filename ?? null,
        row_count: raw.length, valid_row_count: valid.length, invalid_rows: toJson(invalid.slice(0, MAX_INVALID_LISTED)), duplicates: toJson(duplicates),
        duplicate_count: valid.length - byId.size, existing_count: existing.size, processed_count: 0, created_count: 0, updated_count: 0,
        failed_count: 0, cursor: 0, created_on: now, created_by: actor.actor, updated_on: now, updated_by: actor.actor, completed_on: null,
      };
      await ctx.transaction(async (uow) => {
        await uow.tx.insertInto('profile_imports').values(row).execute();
        for (let i = 0; i < valid.length; i += STAGE_CHUNK) {
          await uow.tx.insertInto('profile_import_rows').values(valid.slice(i, i + STAGE_CHUNK).map((v) => ({
            import_id: id, row_no: v.row, profile_id: v.item.id, data: toJson(v.item.data),
          }))).execute();
        }
      });
      return upload.start ? start(actor, apiSpaceId, id) : view(row);
    },
  };
}

export type Imports = ReturnType<typeof createImports>;
